#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "helpers.h"
#include "train/engine.h"
#include "train/pretrain.h"
#include "train/train_fixture.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using codex::test::read_text;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

static std::vector<json> metrics_of(const fs::path& run_dir) {
  std::vector<json> out;
  std::istringstream in(read_text(run_dir / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// Metrics without the wall-clock field: what must be bit-identical between runs.
static std::string comparable(const std::vector<json>& m) {
  std::string s;
  for (auto j : m) {
    j.erase("tokens_per_s");
    s += j.dump() + "\n";
  }
  return s;
}

TEST_CASE("pretrain: loss falls, metrics, config and checkpoints are written", "[train]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  auto r = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                   " train.max_steps=60 train.log_every=10 train.eval_every=30 train.checkpoint_every=20");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto m = metrics_of(t / "run");
  REQUIRE(m.size() >= 6);
  for (auto& j : m)
    for (auto k : {"step", "loss", "lr", "tokens_per_s", "grad_norm"}) REQUIRE(j.contains(k));
  const double first = m.front()["loss"], last = m.back()["loss"];
  REQUIRE(first == Approx(std::log(64.0)).epsilon(0.1));  // GPT-2 init predicts ~uniformly
  REQUIRE(last < 0.6 * first);
  REQUIRE(m.back()["step"] == 60);
  REQUIRE(m.back().contains("val_loss"));
  REQUIRE(m.back()["val_loss"].get<double>() < 0.7 * first);
  REQUIRE(fs::exists(t / "run" / "config.yaml"));
  REQUIRE(read_text(t / "run" / "checkpoints" / "latest") == "step_00000060\n");
  // keep_checkpoints=2 (default): steps 40 and 60 remain.
  REQUIRE(!fs::exists(t / "run" / "checkpoints" / "step_00000020"));
  REQUIRE(fs::exists(t / "run" / "checkpoints" / "step_00000040"));
  REQUIRE_NOTHROW(verify_checkpoint((t / "run" / "checkpoints" / "step_00000060").string()));
  auto summary = json::parse(r.out);
  REQUIRE(summary["steps"] == 60);
}

TEST_CASE("pretrain: resumed run's metrics are bit-identical to an uninterrupted run", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string args = " train.max_steps=30 train.log_every=1 train.eval_every=10 train.checkpoint_every=10"
                           " train.keep_checkpoints=5 model.dropout=0.1";  // dropout: the torch RNG matters too
  auto a = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "a").string()) + args);
  REQUIRE(a.code == 0);
  // Simulate an interruption right after step 10: later checkpoints gone, latest at step 10,
  // the interrupted run's metrics running on past the checkpoint (to step 30).
  fs::copy(t / "a", t / "b", fs::copy_options::recursive);
  fs::remove_all(t / "b" / "checkpoints" / "step_00000020");
  fs::remove_all(t / "b" / "checkpoints" / "step_00000030");
  codex::test::write_text(t / "b" / "checkpoints" / "latest", "step_00000010\n");
  auto b = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "b").string()) + args + " resume=true");
  INFO(b.err);
  REQUIRE(b.code == 0);
  REQUIRE(b.err.find("step 10") != std::string::npos);
  REQUIRE(metrics_of(t / "b").size() == 30);
  REQUIRE(comparable(metrics_of(t / "b")) == comparable(metrics_of(t / "a")));
}

TEST_CASE("pretrain: killed with SIGKILL, a resumed run reaches the same final losses", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string args = " train.max_steps=300 train.log_every=5 train.eval_every=100 train.checkpoint_every=10";
  auto full = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "full").string()) + args);
  REQUIRE(full.code == 0);

  const fs::path run = t / "killed";
  const std::string cmd = std::string(CODEX_BINARY) + " " +
                          codex::test::tiny_run_args((t / "data").string(), run.string()) + args + " >" +
                          (t / "out.txt").string() + " 2>&1 & echo $!";
  auto started = codex::test::run_shell(cmd);
  const int pid = std::stoi(started.out);
  for (int i = 0; i < 6000 && !fs::exists(run / "checkpoints" / "latest"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGKILL);
  codex::test::run_shell("while kill -0 " + std::to_string(pid) + " 2>/dev/null; do sleep 0.01; done");
  REQUIRE(fs::exists(run / "checkpoints" / "latest"));
  const int64_t killed_at = metrics_of(run).back()["step"];
  REQUIRE(killed_at < 300);  // it really was interrupted

  auto res = run_cli(codex::test::tiny_run_args((t / "data").string(), run.string()) + args + " resume=true");
  INFO(res.err);
  REQUIRE(res.code == 0);
  CHECK(res.err.find("pretrain: resuming from step ") != std::string::npos);
  REQUIRE(comparable(metrics_of(run)) == comparable(metrics_of(t / "full")));
}

TEST_CASE("pretrain: SIGTERM / SIGINT checkpoint the current step and exit 1, resume=true finishes identically",
          "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string args = " train.max_steps=400 train.log_every=1 train.eval_every=0 train.checkpoint_every=0";
  auto full = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "full").string()) + args);
  REQUIRE(full.code == 0);

  const int sig = GENERATE(SIGTERM, SIGINT);
  const fs::path run = t / ("stopped-" + std::to_string(sig));
  const std::string cmd = "exec " + std::string(CODEX_BINARY) + " " +
                          codex::test::tiny_run_args((t / "data").string(), run.string()) + args + " >" +
                          (t / "out.txt").string() + " 2>" + (t / "err.txt").string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until it is training (a few metrics lines), then ask it to stop.
  for (int i = 0; i < 6000 && (!fs::exists(run / "metrics.jsonl") || metrics_of(run).size() < 5); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, sig);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 3000 && (done = ::waitpid(pid, &status, WNOHANG)) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  REQUIRE(done == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 1);
  const std::string err = read_text(t / "err.txt");
  INFO(err);
  REQUIRE(err.find("interrupted") != std::string::npos);
  REQUIRE(err.find("rerun the same command with resume=true to continue") != std::string::npos);
  const int64_t stopped_at = metrics_of(run).back()["step"];
  REQUIRE(stopped_at < 400);
  // checkpoint_every=0: the only checkpoint is the one the signal made, at the last finished step.
  REQUIRE(read_text(run / "checkpoints" / "latest") == fmt::format("step_{:08d}\n", stopped_at));

  auto res = run_cli(codex::test::tiny_run_args((t / "data").string(), run.string()) + args + " resume=true");
  INFO(res.err);
  REQUIRE(res.code == 0);
  CHECK(res.err.find(fmt::format("pretrain: resuming from step {}", stopped_at)) != std::string::npos);
  REQUIRE(comparable(metrics_of(run)) == comparable(metrics_of(t / "full")));
}

TEST_CASE("pretrain: the fused LM-head loss trains like the unfused one", "[train]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string args = " train.max_steps=12 train.log_every=1 train.eval_every=6";
  auto f = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "f").string()) + args);
  auto u = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "u").string()) + args +
                   " train.fused_loss=false");
  INFO(f.err << u.err);
  REQUIRE(f.code == 0);
  REQUIRE(u.code == 0);
  auto mf = metrics_of(t / "f"), mu = metrics_of(t / "u");
  REQUIRE(mf.size() == 12);
  REQUIRE(mu.size() == 12);
  for (size_t i = 0; i < mf.size(); ++i) {
    for (auto k : {"loss", "grad_norm"})
      REQUIRE(mf[i][k].get<double>() == Approx(mu[i][k].get<double>()).epsilon(1e-4));
    if (mu[i].contains("val_loss"))
      REQUIRE(mf[i]["val_loss"].get<double>() == Approx(mu[i]["val_loss"].get<double>()).epsilon(1e-4));
  }
}

TEST_CASE("pretrain: resume with no checkpoint starts at step 0 and says so", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  auto r = run_cli(codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                   " train.max_steps=3 resume=true");
  REQUIRE(r.code == 0);
  REQUIRE(r.err.find("no checkpoint") != std::string::npos);
  REQUIRE(metrics_of(t / "run").front()["step"] == 1);
}

TEST_CASE("pretrain: resume=must refuses a run.dir without a checkpoint, continues one that has it", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string base = codex::test::tiny_run_args((t / "data").string(), (t / "run").string());
  auto r = run_cli(base + " train.max_steps=2 resume=must");
  CHECK(r.code == 2);
  CHECK(r.err.find("resume=must: no checkpoint to continue") != std::string::npos);
  CHECK(!std::filesystem::exists(t / "run" / "metrics.jsonl"));  // nothing trained
  // A refused run leaves nothing behind: no run.dir/.lock, no empty checkpoints/ (the folder it made is gone).
  CHECK(!std::filesystem::exists(t / "run" / ".lock"));
  CHECK(!std::filesystem::exists(t / "run" / "checkpoints"));
  CHECK(!std::filesystem::exists(t / "run"));
  r = run_cli(base + " train.max_steps=2 train.checkpoint_every=2");
  REQUIRE(r.code == 0);
  r = run_cli(base + " train.max_steps=4 train.checkpoint_every=2 resume=must");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(metrics_of(t / "run").back()["step"] == 4);
  r = run_cli(base + " train.max_steps=4 resume=maybe");
  CHECK(r.code == 2);  // neither true, false nor must
}

TEST_CASE("pretrain: a finished run, an occupied run.dir, a too-small val split", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  auto args_for = [&](const std::string& run) {
    return codex::test::tiny_run_args((t / "data").string(), (t / run).string()) + " train.max_steps=4";
  };
  const std::string base = args_for("run") + " train.checkpoint_every=2 train.eval_every=0";
  REQUIRE(run_cli(base).code == 0);
  const std::string metrics = read_text(t / "run" / "metrics.jsonl");
  // Again without resume=true: refused, nothing touched.
  auto again = run_cli(base);
  REQUIRE(again.code == 2);
  REQUIRE(again.err.find("resume=true") != std::string::npos);
  REQUIRE(read_text(t / "run" / "metrics.jsonl") == metrics);
  // Resuming a run that is already at train.max_steps: says so, exit 0, nothing rewritten.
  auto done = run_cli(base + " resume=true");
  INFO(done.err);
  REQUIRE(done.code == 0);
  REQUIRE(done.err.find("already complete") != std::string::npos);
  REQUIRE(json::parse(done.out)["steps"] == 4);
  REQUIRE(read_text(t / "run" / "metrics.jsonl") == metrics);
  // A val split shorter than one window fails before training, naming the way out.
  write_token_shard((t / "data" / "val_00000.bin").string(), {1, 2, 3}, 64);
  auto small = run_cli(args_for("run2") + " train.eval_every=2");
  REQUIRE(small.code == 2);
  REQUIRE(small.err.find("data.val_fraction") != std::string::npos);
  REQUIRE(!fs::exists(t / "run2" / "metrics.jsonl"));
  // Output paths taken by the wrong kind of file: refused before training.
  fs::create_directories(t / "run3" / "metrics.jsonl");
  auto in_way = run_cli(args_for("run3") + " train.eval_every=0");
  REQUIRE(in_way.code == 2);
  REQUIRE(in_way.err.find("a folder is in the way") != std::string::npos);
  codex::test::write_text(t / "run4" / "checkpoints", "");
  auto ck_file = run_cli(args_for("run4") + " train.eval_every=0");
  REQUIRE(ck_file.code == 2);
  REQUIRE(ck_file.err.find("is not a folder") != std::string::npos);
}

TEST_CASE("pretrain: a run.dir another process is using is refused", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string base = codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                           " train.max_steps=2 train.eval_every=0";
  fs::create_directories(t / "run");
  {
    DirLock held(t / "run");  // as a running pretrain holds it
    auto r = run_cli(base);
    REQUIRE(r.code == 2);
    REQUIRE(r.err.find("in use by another run (pid " + std::to_string(::getpid()) + ")") != std::string::npos);
    REQUIRE(!fs::exists(t / "run" / "metrics.jsonl"));
  }
  auto r = run_cli(base);  // released: runs
  INFO(r.err);
  REQUIRE(r.code == 0);
}

TEST_CASE("pretrain: corrupt newest checkpoint falls back, none valid exits 2", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string base = codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                           " train.max_steps=20 train.checkpoint_every=10 train.eval_every=0";
  REQUIRE(run_cli(base).code == 0);
  auto flip = [](const fs::path& p) {  // one flipped byte in the middle of the weights
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(p) / 2));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(fs::file_size(p) / 2));
    f.put(static_cast<char>(c ^ 0x5a));
  };
  flip(t / "run" / "checkpoints" / "step_00000020" / "model.pt");
  auto r = run_cli(base + " resume=true");
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(r.err.find("checksum") != std::string::npos);
  REQUIRE(r.err.find("continuing from") != std::string::npos);
  REQUIRE(r.err.find("step_00000010") != std::string::npos);
  // The resumed run rewrote step 20; now break every checkpoint.
  flip(t / "run" / "checkpoints" / "step_00000010" / "optim.pt");
  flip(t / "run" / "checkpoints" / "step_00000020" / "model.pt");
  auto bad = run_cli(base + " resume=true");
  REQUIRE(bad.code == 2);
  REQUIRE(bad.err.find("none is valid") != std::string::npos);
}

TEST_CASE("pretrain: resume refuses a changed config key by key, allows the step count", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string base = codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                           " train.eval_every=0";
  REQUIRE(run_cli(base + " train.max_steps=2").code == 0);
  auto r = run_cli(base + " train.max_steps=2 resume=true model.n_embd=48 optim.lr=0.5");
  REQUIRE(r.code == 2);
  INFO(r.err);
  REQUIRE(r.err.find("model.n_embd: ") != std::string::npos);
  REQUIRE(r.err.find(" -> 48") != std::string::npos);
  REQUIRE(r.err.find("optim.lr: ") != std::string::npos);
  auto more = run_cli(base + " train.max_steps=3 resume=true");
  INFO(more.err);
  REQUIRE(more.code == 0);
  REQUIRE(more.err.find("train.max_steps: 2 -> 3") != std::string::npos);
}

TEST_CASE("pretrain: resume refuses data re-prepared with other content", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string base = codex::test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                           " train.eval_every=0 train.max_steps=2";
  REQUIRE(run_cli(base).code == 0);
  codex::test::write_prepared_folder(t / "data", /*seed=*/7);
  auto r = run_cli(base + " resume=true");
  INFO(r.err);
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("data changed") != std::string::npos);
}

TEST_CASE("pretrain: train.init_from starts from a checkpoint's weights", "[train][checkpoint]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "data");
  const std::string data = (t / "data").string();
  REQUIRE(run_cli(codex::test::tiny_run_args(data, (t / "a").string()) + " train.max_steps=60 train.eval_every=0").code == 0);
  auto r = run_cli(codex::test::tiny_run_args(data, (t / "b").string()) + " train.max_steps=1 train.eval_every=0" +
                   " train.init_from=" + (t / "a").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const double a_first = metrics_of(t / "a").front()["loss"], a_last = metrics_of(t / "a").back()["loss"];
  const double b_first = metrics_of(t / "b").front()["loss"];
  REQUIRE(b_first < 0.7 * a_first);
  REQUIRE(b_first == Approx(a_last).epsilon(0.25));
}

TEST_CASE("engine: a non-finite loss stops before the optimizer step and saves nothing", "[train]") {
  GPTConfig g;
  g.vocab_size = 16;
  g.n_layer = 1;
  g.n_embd = 8;
  g.block_size = 8;
  GPT m(g);
  Config cfg;
  cfg.train.max_steps = 5;
  auto opt = make_adamw(*m, cfg.optim);
  auto dist = single_process_context();
  auto before = m->wte->weight.clone();
  bool saved = false;
  std::vector<Trainable> tr = {{"", m->parameters(), opt.get()}};
  DriverSpec s;
  s.cfg = &cfg;
  s.dist = dist.get();
  s.trainables = &tr;
  s.max_steps = 5;
  s.step = [&](int64_t step, double) {
    auto u = update(tr, *dist, 1, [&](int64_t) {
      auto logits = m->forward(torch::zeros({1, 8}, torch::kLong));
      return MicroOut{logits.sum() * std::numeric_limits<double>::quiet_NaN(), 8, {}};
    }, 1.0, step);
    return StepOut{u.loss, 8, {}};
  };
  s.save = [&](int64_t) { saved = true; };
  REQUIRE_THROWS_AS(run_steps(s), RunError);
  REQUIRE_THROWS_WITH(run_steps(s), Catch::Contains("step 1: non-finite loss"));
  REQUIRE(torch::equal(m->wte->weight, before));
  REQUIRE(!saved);
}
