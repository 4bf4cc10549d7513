// Pruning keeps the newest N *valid* checkpoints; a full disk loses nothing that was complete.
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "helpers.h"
#include "tokenizer/tiny_tokenizer.h"
#include "train/train_fixture.h"
#include "util/error.h"

using namespace codex;
using codex::test::TempDir;
namespace fs = std::filesystem;

namespace {

GPT tiny_gpt() {
  GPTConfig g;
  g.vocab_size = 40;
  g.n_layer = 1;
  g.n_head = 2;
  g.n_embd = 8;
  g.block_size = 8;
  return GPT(g);
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("pruning after a corrupt-checkpoint fallback keeps the valid ones and moves the corrupt aside",
          "[checkpoint]") {
  TempDir t;
  GPT m = tiny_gpt();
  Config cfg;
  cfg.train.keep_checkpoints = 2;
  auto opt = torch::optim::AdamW(m->parameters());
  const std::string run = t.str();
  const fs::path ck = t / "checkpoints";
  for (int64_t s : {10, 20, 30}) save_training_checkpoint(run, s, m, &opt, cfg, "", nlohmann::json{});
  // The newest is damaged; a resumed run falls back to step 20 and saves step 25 (the issue's
  // reproduction: the old pruning kept 30 (corrupt) and 25, deleting the good 20).
  std::ofstream(ck / "step_00000030" / "optim.pt", std::ios::app) << 'x';
  REQUIRE(*find_resume_checkpoint(run) == (ck / "step_00000020").string());
  save_training_checkpoint(run, 25, m, &opt, cfg, "", nlohmann::json{});
  REQUIRE(entries(ck) == std::vector<std::string>{"corrupt-step_00000030", "latest", "step_00000020", "step_00000025"});
  REQUIRE_NOTHROW(verify_checkpoint((ck / "step_00000020").string()));
  REQUIRE(*find_resume_checkpoint(run) == (ck / "step_00000025").string());
  // Later saves prune as usual; the corrupt folder stays aside for inspection, never counted.
  save_training_checkpoint(run, 35, m, &opt, cfg, "", nlohmann::json{});
  REQUIRE(entries(ck) == std::vector<std::string>{"corrupt-step_00000030", "latest", "step_00000025", "step_00000035"});
  // keep_checkpoints=1: only the one just written.
  cfg.train.keep_checkpoints = 1;
  save_training_checkpoint(run, 40, m, &opt, cfg, "", nlohmann::json{});
  REQUIRE(entries(ck) == std::vector<std::string>{"corrupt-step_00000030", "latest", "step_00000040"});
}

TEST_CASE("checkpoint space pre-flight: twice the last checkpoint must be free", "[checkpoint]") {
  TempDir t;
  // No checkpoint yet: the estimate decides. An absurd one (an exabyte) is refused in one line.
  REQUIRE_NOTHROW(check_checkpoint_space(t.str(), 1000));
  try {
    check_checkpoint_space(t.str(), int64_t{1} << 60);
    FAIL("no error");
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    INFO(msg);
    REQUIRE(msg.find("not enough free disk space for checkpoints in '" + (t / "checkpoints").string() + "'") == 0);
    REQUIRE(msg.find("an estimated 1.2 EB") == std::string::npos);  // units stop at TB
    REQUIRE(msg.find("TB per checkpoint, so") != std::string::npos);
  }
  // With a checkpoint, its size decides (the estimate is ignored).
  GPT m = tiny_gpt();
  Config cfg;
  save_training_checkpoint(t.str(), 5, m, nullptr, cfg, "", nlohmann::json{});
  REQUIRE_NOTHROW(check_checkpoint_space(t.str(), int64_t{1} << 60));
}

// The run's files after a failed save: no temporary folder holds the space.
static void require_no_temporaries(const fs::path& run) {
  for (auto& e : fs::recursive_directory_iterator(run)) {
    const std::string n = e.path().filename().string();
    INFO(e.path().string());
    REQUIRE(n.find(".tmp") == std::string::npos);
  }
}

TEST_CASE("disk full while checkpointing: the OS reason, no temporary left, resume afterwards works",
          "[checkpoint][slow]") {
  TempDir t;
  const fs::path data = t / "data";
  test::write_prepared_folder(data);
  const std::string args = test::tiny_run_args(data.string(), (t / "run").string()) +
                           " train.max_steps=4 train.checkpoint_every=2 train.eval_every=0 train.log_every=1";
  const std::string bin = test::shell_quote(CODEX_BINARY);
  // An injected write failure: files over 40 KiB cannot be written (write() fails with EFBIG;
  // SIGXFSZ ignored), so optim.pt of the first checkpoint fails as on a full disk.
  auto r = test::run_shell("trap '' XFSZ; ulimit -f 40; " + bin + " " + args);
  INFO(r.err);
  REQUIRE(r.code == 1);
  REQUIRE(r.err.find("codex-train: failed: checkpoint ") != std::string::npos);
  REQUIRE(r.err.find(std::string(": ") + std::strerror(EFBIG)) != std::string::npos);  // "File too large"
  REQUIRE(r.err.find("continue with resume=true") != std::string::npos);
  require_no_temporaries(t / "run");
  REQUIRE(!fs::exists(t / "run" / "checkpoints" / "latest"));
  // Space freed (no limit): resume=true runs to the end.
  auto ok = test::run_cli(args + " resume=true");
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  REQUIRE(fs::exists(t / "run" / "checkpoints" / "step_00000004"));
  require_no_temporaries(t / "run");
}

TEST_CASE("disk full on a small tmpfs: pre-flight refusal, resume after freeing space, ENOSPC named",
          "[checkpoint][slow]") {
  // A private mount namespace (unprivileged user namespace) holds a small tmpfs.
  if (test::run_shell("unshare -rm sh -c 'mount -t tmpfs -o size=64k tmpfs /mnt'").code != 0) {
    WARN("skipped: no unprivileged mount namespaces here (unshare -rm); the injected-failure test covers the path");
    return;
  }
  TempDir t;
  const fs::path data = t / "data";
  test::write_prepared_folder(data);
  const std::string tok = test::train_tiny_tokenizer(t.path);
  for (int i = 0; i < 3; ++i) test::write_text(t / "corpus" / ("f" + std::to_string(i) + ".py"), test::synthetic_python(8, i));
  fs::create_directories(t / "mnt");
  const std::string mnt = test::shell_quote((t / "mnt").string());
  const std::string run = (t / "mnt" / "run").string();
  const std::string args = test::tiny_run_args(data.string(), run) +
                           " train.checkpoint_every=2 train.eval_every=0 train.log_every=1 train.keep_checkpoints=2";
  const std::string bin = test::shell_quote(CODEX_BINARY);
  test::write_text(
      t / "full.sh",
      // 1: 200 KB cannot hold two checkpoints of this model (~190 KB each, estimated): refused.
      "mount -t tmpfs -o size=200k tmpfs " + mnt + " || exit 99\n" +
      bin + " " + args + " train.max_steps=2; echo r1=$? >&2\n" +
      // 2: room made: trains and saves step 2.
      "mount -o remount,size=4m tmpfs " + mnt + " || exit 98\n" +
      bin + " " + args + " train.max_steps=2; echo r2=$? >&2\n" +
      // 3: the disk fills up (less than twice the last checkpoint left): resume is refused.
      "free=$(df -k " + mnt + " | awk 'NR==2 {print $4}')\n"
      "ck=$(du -sk " + test::shell_quote(run + "/checkpoints/step_00000002") + " | cut -f1)\n"
      "dd if=/dev/zero of=" + mnt + "/filler bs=1k count=$((free - ck)) 2>/dev/null\n" +
      bin + " " + args + " train.max_steps=4 resume=true; echo r3=$? >&2\n" +
      // 4: space freed: resume continues from step 2 to 4.
      "rm " + mnt + "/filler\n" +
      bin + " " + args + " train.max_steps=4 resume=true; echo r4=$? >&2\n" +
      "ls -a " + test::shell_quote(run + "/checkpoints") + " >&2; echo listed >&2\n" +
      // 5: a completely full disk under data prepare: ENOSPC named, nothing left behind.
      "dd if=/dev/zero of=" + mnt + "/filler bs=4k 2>/dev/null\n" +
      bin + " data prepare run.dir=" + test::shell_quote(run + "2") + " --tokenizer " + test::shell_quote(tok) +
      " --input " + test::shell_quote((t / "corpus").string()) + "; echo r5=$? >&2\n" +
      "ls -a " + test::shell_quote(run + "2") + " >&2; echo end >&2\n");
  auto r = test::run_shell("unshare -rm sh " + test::shell_quote((t / "full.sh").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto between = [&](const std::string& a, const std::string& b) {
    const auto i = r.err.find(a), j = r.err.find(b);
    REQUIRE(i != std::string::npos);
    REQUIRE(j != std::string::npos);
    return r.err.substr(i, j - i);
  };
  const std::string before_r1 = r.err.substr(0, r.err.find("r1="));
  REQUIRE(before_r1.find("codex-train: error: not enough free disk space for checkpoints in '" + run +
                         "/checkpoints': an estimated ") != std::string::npos);
  REQUIRE(r.err.find("r1=2") != std::string::npos);
  REQUIRE(r.err.find("r2=0") != std::string::npos);
  const std::string third = between("r2=0", "r3=");
  REQUIRE(third.find("not enough free disk space for checkpoints") != std::string::npos);
  REQUIRE(third.find("the last (step_00000002) is ") != std::string::npos);
  REQUIRE(r.err.find("r3=2") != std::string::npos);
  REQUIRE(r.err.find("r4=0") != std::string::npos);
  const std::string listing = between("r4=0", "listed");
  REQUIRE(listing.find("step_00000002") != std::string::npos);
  REQUIRE(listing.find("step_00000004") != std::string::npos);
  REQUIRE(listing.find(".tmp") == std::string::npos);
  const std::string fifth = between("r4=0", "end");
  REQUIRE(fifth.find("codex-train: failed: cannot write '") != std::string::npos);
  REQUIRE(fifth.find(std::string("': ") + std::strerror(ENOSPC)) != std::string::npos);  // No space left on device
  REQUIRE(r.err.find("r5=1") != std::string::npos);
  REQUIRE(between("r5=1", "end").find(".data") == std::string::npos);  // no staging folder left
}
