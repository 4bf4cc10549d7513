// The pipeline end to end on a tiny config: every stage, summary.json, rerun skips, a changed
// stage config invalidates it and the later stages; bad input refused before anything is written.
#include "pipeline/pipeline.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "data/practice.h"
#include "helpers.h"
#include "tokenizer/tiny_tokenizer.h"
#include "util/fs.h"

using namespace codex;
using codex::test::read_text;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::string tiny_cmd(const fs::path& corpus, const fs::path& out) {
  return "pipeline --corpus " + corpus.string() + " --output-dir " + out.string() + " --config " +
         std::string(CODEX_SOURCE_DIR) + "/configs/pipeline/tiny.yaml";
}
// A corpus of a few synthetic Python files.
fs::path small_corpus(const TempDir& t) {
  for (int i = 0; i < 2; ++i)
    codex::test::write_text(t / "c" / ("a" + std::to_string(i) + ".py"), codex::test::synthetic_python(5, 1 + i));
  return t / "c";
}
}  // namespace

// The checks below all stop before the first stage: each is refused with exit 2 and one line, and
// the output folder is left as it was.
TEST_CASE("pipeline: a foreign --output-dir is refused naming what is there; --force uses it", "[pipeline]") {
  TempDir t;
  const fs::path c = small_corpus(t);
  codex::test::write_text(t / "o" / "report.html", "my report\n");
  codex::test::write_text(t / "o" / "summary.json", "{}\n");
  fs::create_directories(t / "o" / "01-tokenizer");
  auto r = run_cli(tiny_cmd(c, t / "o"));
  INFO(r.err);
  REQUIRE(r.code == 2);
  CHECK(r.err.find("is not empty and is not a pipeline run") != std::string::npos);
  CHECK(r.err.find("01-tokenizer/, report.html, summary.json") != std::string::npos);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(read_text(t / "o" / "report.html") == "my report\n");
  CHECK(!fs::exists(t / "o" / "pipeline.json"));
  CHECK(!fs::exists(t / "o" / ".lock"));
  // --force: past that check (stopped here by the next one, which proves it)
  r = run_cli(tiny_cmd(c, t / "o") + " --force pipeline.practice=false");
  REQUIRE(r.code == 2);
  CHECK(r.err.find("sft stage has no data") != std::string::npos);
  // an empty folder, or one holding a pipeline run, is fine
  fs::create_directories(t / "empty");
  r = run_cli(tiny_cmd(c, t / "empty") + " pipeline.practice=false");
  CHECK(r.err.find("sft stage has no data") != std::string::npos);
  codex::test::write_text(t / "run" / "pipeline.json", "{}\n");
  codex::test::write_text(t / "run" / "report.html", "the pipeline's\n");
  r = run_cli(tiny_cmd(c, t / "run") + " pipeline.practice=false");
  CHECK(r.err.find("sft stage has no data") != std::string::npos);
}

TEST_CASE("pipeline: one pipeline per output folder, the second exits 2 naming the holder's pid", "[pipeline]") {
  TempDir t;
  const fs::path c = small_corpus(t);
  codex::test::write_text(t / "o" / "pipeline.json", "{\"command\": \"x\"}\n");
  const std::string before = read_text(t / "o" / "pipeline.json");
  {
    DirLock held(t / "o", "--output-dir");  // this process is the running pipeline
    auto r = run_cli(tiny_cmd(c, t / "o"));
    INFO(r.err);
    REQUIRE(r.code == 2);
    CHECK(r.err.find("in use by another run (pid " + std::to_string(::getpid()) + ")") != std::string::npos);
    CHECK(r.err.find("another --output-dir") != std::string::npos);
    CHECK(read_text(t / "o" / "pipeline.json") == before);  // nothing written
    CHECK(!fs::exists(t / "o" / "01-tokenizer"));
  }
}

TEST_CASE("pipeline: eval sets, step counts, repeated flags and keys it sets itself are refused before any stage",
          "[pipeline]") {
  TempDir t;
  const fs::path c = small_corpus(t);
  auto refused = [&](const std::string& extra, const std::string& says) {
    auto r = run_cli(tiny_cmd(c, t / "o") + " " + extra);
    INFO(extra << " -> " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(says) != std::string::npos);
    CHECK(!fs::exists(t / "o"));
  };
  refused("pipeline.eval_sets=[practise]", "'practise' is not practice, humaneval or an existing problems file (did you mean 'practice'?)");
  refused("pipeline.eval_sets=[practice:0]", "asks for no samples");
  refused("ppo.train.max_steps=0", "ppo.train.max_steps=0: the ppo stage needs at least one step");
  refused("train.max_steps=0 ppo.train.max_steps=2", "train.max_steps=0: the pretrain stage needs at least one step");
  refused("--demos a.jsonl --demos b.jsonl", "--demos given twice ('a.jsonl' and 'b.jsonl')");
  refused("--output-dir " + (t / "o2").string(), "--output-dir given twice");
  refused("run.dir=x", "run.dir: the pipeline sets this key itself");
  refused("data.input=[x]", "data.input: the pipeline sets this key itself (the corpus is --corpus)");
  refused("sft.data=x", "sft.data: the pipeline sets this key itself");
  refused("ppo.run.dir=x", "ppo.run.dir: the pipeline sets this key itself");
  refused("eval.limit=3", "eval.limit: the pipeline sets this key itself (the pipeline evaluates every problem");
  codex::test::write_text(t / "own.yaml", "base: " + std::string(CODEX_SOURCE_DIR) + "/configs/pipeline/tiny.yaml\n"
                                          "run:\n  dir: somewhere\n");
  refused("--config " + (t / "own.yaml").string() + " ", "given twice");  // tiny_cmd has --config already
  auto r = run_cli("pipeline --corpus " + c.string() + " --output-dir " + (t / "o").string() + " --config " +
                   (t / "own.yaml").string());
  CHECK(r.code == 2);
  CHECK(r.err.find("own.yaml:3: run.dir: the pipeline sets this key itself") != std::string::npos);
  CHECK(!fs::exists(t / "o"));
}

TEST_CASE("pipeline: config errors name the YAML file and line, and the key as written with its stage", "[pipeline][config]") {
  TempDir t;
  const fs::path c = small_corpus(t);
  const std::string base = "base: " + std::string(CODEX_SOURCE_DIR) + "/configs/pipeline/tiny.yaml\n";
  auto run_with = [&](const std::string& yaml, const std::string& extra = "") {
    codex::test::write_text(t / "bad.yaml", base + yaml);
    return run_cli("pipeline --corpus " + c.string() + " --output-dir " + (t / "o").string() + " --config " +
                   (t / "bad.yaml").string() + extra);
  };
  auto r = run_with("ppo:\n  train:\n    max_stepz: 3\n");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.yaml:4: unknown key 'ppo.train.max_stepz' (did you mean 'ppo.train.max_steps'?)") !=
        std::string::npos);
  CHECK(r.err.find("override") == std::string::npos);
  r = run_with("train:\n  max_stepz: 3\n");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.yaml:3: unknown key 'train.max_stepz' (did you mean 'train.max_steps'?)") != std::string::npos);
  r = run_with("sft:\n  optim:\n    lr: fast\n");
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.yaml:4: sft.optim.lr: expected a number") != std::string::npos);
  r = run_with("", " ppo.train.max_stepz=3");
  CHECK(r.code == 2);
  CHECK(r.err.find("override 'ppo.train.max_stepz=3': unknown key 'ppo.train.max_stepz' (did you mean "
                   "'ppo.train.max_steps'?)") != std::string::npos);
  CHECK(!fs::exists(t / "o"));
}

TEST_CASE("pipeline: --help lists each flag's note once and no key the pipeline sets itself", "[pipeline][cli]") {
  auto r = run_cli("pipeline --help");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("(repeatable) (repeatable)") == std::string::npos);
  CHECK(r.out.find("(repeatable)") != std::string::npos);
  CHECK(r.out.find("--force") != std::string::npos);
  for (auto k : {"  run.dir ", "  sft.data ", "  data.input ", "  ppo.init ", "  resume ", "  eval.limit "}) {
    INFO(k);
    CHECK(r.out.find(k) == std::string::npos);
  }
  CHECK(r.out.find("  sft.epochs ") != std::string::npos);
}

TEST_CASE("pipeline: binary files named *.py in the corpus are counted and said", "[pipeline][data]") {
  TempDir t;
  codex::test::write_text(t / "bin" / "blob.py", std::string("\x7f" "ELF\0\0\x01" "binary", 13));
  auto r = run_cli(tiny_cmd(t / "bin", t / "o"));
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("no documents") != std::string::npos);
  CHECK(r.err.find("1 binary files skipped: they contain NUL bytes") != std::string::npos);
  codex::test::write_text(t / "bin" / "good.py", codex::test::synthetic_python(5, 1));
  codex::test::write_text(t / "bin" / "sub" / "other.py", std::string("a\0b", 3));
  r = run_cli(tiny_cmd(t / "bin", t / "o") + " pipeline.practice=false");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("corpus: skipped 2 binary files named *.py (NUL bytes: not Python source)") != std::string::npos);
  CHECK(!fs::exists(t / "o"));
}

TEST_CASE("pipeline: SIGINT in any stage says to rerun the same command", "[pipeline]") {
  TempDir t;
  for (int i = 0; i < 6; ++i)
    codex::test::write_text(t / "corpus" / ("m" + std::to_string(i) + ".py"), codex::test::synthetic_python(40, 200 + i));
  // Started from here (not from a shell's background job, which would inherit an ignored SIGINT).
  const std::string cmd = "exec " + codex::test::shell_quote(CODEX_BINARY) + " " + tiny_cmd(t / "corpus", t / "o") +
                          " >/dev/null 2>" + (t / "err").string();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 3000; ++i) {
    if (fs::exists(t / "err") && read_text(t / "err").find("---- 01-tokenizer") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string err = read_text(t / "err");
  INFO(err);
  CHECK(err.find("---- 01-tokenizer") != std::string::npos);
  CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(err.find("rerun the same command") != std::string::npos);
}

TEST_CASE("practice set: held-out pairs never in train, every canonical solution passes its test", "[pipeline][eval]") {
  PracticeSet a = make_practice_set(0), b = make_practice_set(0);
  REQUIRE(a.train.size() + a.heldout.size() == 12 * 29);
  REQUIRE(a.heldout.size() > 50);
  for (size_t i = 0; i < a.train.size(); ++i) REQUIRE(a.train[i].prompt == b.train[i].prompt);  // deterministic
  std::set<std::string> train_ids;
  for (auto& p : a.train) train_ids.insert(p.task_id);
  for (auto& p : a.heldout) REQUIRE(!train_ids.count(p.task_id));
  // extra instances for RL: 9 numeric families (not repeat) x 5 (k 31..35); train and held-out unchanged
  REQUIRE(a.rl.empty());
  PracticeSet x = make_practice_set(0, 5);
  REQUIRE(x.rl.size() == 9 * 5);
  REQUIRE(x.train.size() == a.train.size());
  REQUIRE(x.heldout.size() == a.heldout.size());
  for (size_t i = 0; i < a.train.size(); ++i) REQUIRE(x.train[i].test == a.train[i].test);
  for (size_t i = 0; i < a.heldout.size(); ++i) REQUIRE(x.heldout[i].test == a.heldout[i].test);
  std::set<std::string> x_ids;
  for (auto& p : x.rl) x_ids.insert(p.task_id);
  REQUIRE(x_ids.size() == x.rl.size());
  for (auto* set : {&x.train, &x.heldout})
    for (auto& p : *set) REQUIRE(!x_ids.count(p.task_id));
  REQUIRE(x_ids.count("Practice/add_35"));
  REQUIRE(!x_ids.count("Practice/add_36"));
  REQUIRE(!x_ids.count("Practice/repeat_31"));
  // rl_split: the 69 pairs with (family + k) % 5 == 1 (counted by hand over 12 families x k 2..30)
  // move from train to rl; held-out unchanged; nothing lost, nothing in two sets
  PracticeSet rs = make_practice_set(0, 0, true);
  REQUIRE(rs.rl.size() == 69);
  REQUIRE(rs.train.size() + rs.rl.size() == a.train.size());
  REQUIRE(rs.heldout.size() == a.heldout.size());
  for (size_t i = 0; i < a.heldout.size(); ++i) REQUIRE(rs.heldout[i].task_id == a.heldout[i].task_id);
  std::set<std::string> r_train;
  for (auto& p : rs.train) r_train.insert(p.task_id);
  for (auto& p : rs.rl) {
    REQUIRE(train_ids.count(p.task_id));
    REQUIRE(!r_train.count(p.task_id));
  }
  REQUIRE(std::any_of(rs.rl.begin(), rs.rl.end(), [](const Problem& p) { return p.task_id == "Practice/add_6"; }));
  TempDir t;
  std::string probs;
  for (auto* set : {&a.train, &a.heldout, &x.rl})
    for (auto& p : *set) probs += problem_to_json(p).dump() + "\n";
  codex::test::write_text(t / "p.jsonl", probs);
  std::string samples;
  for (auto* set : {&a.train, &a.heldout, &x.rl})
    for (auto& p : *set) samples += json{{"task_id", p.task_id}, {"completion", p.canonical_solution}}.dump() + "\n";
  codex::test::write_text(t / "s.jsonl", samples);
  auto r = run_cli("eval samples --problems " + (t / "p.jsonl").string() + " --samples " + (t / "s.jsonl").string() +
                   " --k 1");
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(json::parse(r.out)["pass@1"].get<double>() == 1.0);
}

TEST_CASE("pipeline: bad input exits 2 before anything is written", "[pipeline]") {
  TempDir t;
  fs::create_directories(t / "empty");
  auto r = run_cli(tiny_cmd(t / "empty", t / "o"));
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("no documents") != std::string::npos);
  REQUIRE(!fs::exists(t / "o"));
  codex::test::write_text(t / "c" / "a.py", codex::test::synthetic_python(5, 1));
  codex::test::write_text(t / "demos.jsonl", "{\"prompt\": \"x\", \"completion\": \"y\"}\nnot json\n");
  r = run_cli(tiny_cmd(t / "c", t / "o") + " --demos " + (t / "demos.jsonl").string());
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("demos.jsonl:2") != std::string::npos);
  REQUIRE(!fs::exists(t / "o"));
  r = run_cli(tiny_cmd(t / "c", t / "o") + " sft.optim.lrr=1");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("optim.lrr") != std::string::npos);
  REQUIRE(!fs::exists(t / "o"));
  r = run_cli(tiny_cmd(t / "c", t / "o") + " pipeline.practice=false");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("sft stage has no data") != std::string::npos);
  REQUIRE(!fs::exists(t / "o"));
}

TEST_CASE("pipeline: every stage end to end, a rerun skips, a changed stage is redone with the later ones",
          "[pipeline][checkpoint]") {
  TempDir t;
  for (int i = 0; i < 6; ++i)
    codex::test::write_text(t / "corpus" / ("m" + std::to_string(i) + ".py"), codex::test::synthetic_python(40, 200 + i));
  codex::test::write_text(t / "prefs.jsonl", json{{"prompt", "def f(x):\n"}, {"chosen", "    return x\n"},
                                                  {"rejected", "    raise X\n"}}.dump() + "\n");
  const std::string cmd = tiny_cmd(t / "corpus", t / "o") + " --prefs " + (t / "prefs.jsonl").string();
  auto r = run_cli(cmd);
  INFO(r.err);
  REQUIRE(r.code == 0);
  for (auto s : {"01-tokenizer", "02-data", "03-pretrain", "04-problems", "05-sft", "06-prefs", "07-reward", "08-ppo",
                 "09-eval"})
    REQUIRE(fs::exists(t / "o" / s / "DONE"));
  auto summary = json::parse(read_text(t / "o" / "summary.json"));
  for (auto m : {"M0", "M1", "M2"}) REQUIRE(summary["models"][m]["practice_heldout"].contains("pass@1"));
  // the paired difference of consecutive models is the difference of their pass@1 (same problems, same n)
  for (auto [a, b] : {std::pair<const char*, const char*>{"M0", "M1"}, {"M1", "M2"}}) {
    const json& d = summary["paired"]["practice_heldout"][std::string(b) + "-" + a];
    CHECK(d["problems"] == 70);
    CHECK(d["pass@1"].get<double>() == Approx(summary["models"][b]["practice_heldout"]["pass@1"].get<double>() -
                                              summary["models"][a]["practice_heldout"]["pass@1"].get<double>())
                                           .margin(1e-12));
    CHECK(d["ci95"].get<double>() >= 0);
  }
  REQUIRE(json::parse(read_text(t / "o" / "06-prefs" / "DONE"))["given"] == 1);
  REQUIRE(fs::exists(t / "o" / "08-ppo" / "metrics.jsonl"));
  // every rollout row has a test here: a prompt's pass fraction lies between "all passed" and "any passed"
  std::istringstream ppo_metrics(read_text(t / "o" / "08-ppo" / "metrics.jsonl"));
  for (std::string line; std::getline(ppo_metrics, line);) {
    const json j = json::parse(line);
    if (!j.contains("pass_rate")) continue;
    CHECK(j["prompts_all_passed"].get<double>() <= j["pass_rate"].get<double>() + 1e-12);
    CHECK(j["pass_rate"].get<double>() <= j["prompts_solved"].get<double>() + 1e-12);
  }
  // keys added later stay out of the fingerprints at their defaults (older runs are not redone)
  CHECK(!json::parse(read_text(t / "o" / "04-problems" / "stage.json"))["config"].contains("pipeline.practice_extra"));
  CHECK(json::parse(read_text(t / "o" / "04-problems" / "stage.json"))["config"].contains("pipeline.practice_seed"));
  CHECK(!json::parse(read_text(t / "o" / "08-ppo" / "stage.json"))["config"].contains("ppo.exec_reward"));
  CHECK(json::parse(read_text(t / "o" / "08-ppo" / "stage.json"))["config"].contains("ppo.w_exec"));
  // wall time per stage: each DONE's seconds, and their total
  double total = 0;
  for (auto s : {"01-tokenizer", "02-data", "03-pretrain", "04-problems", "05-sft", "06-prefs", "07-reward", "08-ppo",
                 "09-eval"}) {
    const double secs = json::parse(read_text(t / "o" / s / "DONE"))["seconds"].get<double>();
    CHECK(secs > 0);
    CHECK(summary["stage_seconds"][s].get<double>() == secs);
    total += secs;
  }
  CHECK(summary["stage_seconds"]["total"].get<double>() == Approx(total).epsilon(1e-12));
  // rerun: nothing to do
  auto again = run_cli(cmd);
  INFO(again.err);
  REQUIRE(again.code == 0);
  CHECK(json::parse(read_text(t / "o" / "summary.json"))["stage_seconds"] == summary["stage_seconds"]);
  REQUIRE(again.err.find("05-sft done earlier; skipped") != std::string::npos);
  REQUIRE(again.err.find("---- ") == std::string::npos);
  // the same inputs spelled otherwise, from another working directory: still nothing to do; the
  // reproduce command (pipeline.json, the report) holds absolute paths
  fs::create_directories(t / "elsewhere");
  auto spelled = codex::test::run_shell(
      "cd " + (t / "elsewhere").string() + " && " + codex::test::shell_quote(CODEX_BINARY) +
      " pipeline --corpus ../corpus/ --output-dir ../o/. --config " + std::string(CODEX_SOURCE_DIR) +
      "/configs/pipeline/../pipeline/tiny.yaml --prefs ./../prefs.jsonl");
  INFO(spelled.err);
  REQUIRE(spelled.code == 0);
  CHECK(spelled.err.find("09-eval done earlier; skipped") != std::string::npos);
  CHECK(spelled.err.find("---- ") == std::string::npos);
  CHECK(spelled.err.find("no longer matches") == std::string::npos);
  const std::string command = json::parse(read_text(t / "o" / "pipeline.json"))["command"];
  CHECK(command.find("--corpus " + (t / "corpus").string()) != std::string::npos);
  CHECK(command.find("--prefs " + (t / "prefs.jsonl").string()) != std::string::npos);
  CHECK(command.find(" ..") == std::string::npos);
  // a changed sft setting and other preferences: sft and everything after it are redone, the old
  // ones kept aside, each with what changed
  codex::test::write_text(t / "prefs.jsonl", json{{"prompt", "def g(x):\n"}, {"chosen", "    return x\n"},
                                                  {"rejected", "    raise Y\n"}}.dump() + "\n");
  auto changed = run_cli(cmd + " sft.optim.lr=5e-4");
  INFO(changed.err);
  REQUIRE(changed.code == 0);
  REQUIRE(changed.err.find("03-pretrain done earlier; skipped") != std::string::npos);
  REQUIRE(changed.err.find("05-sft no longer matches the config or its inputs (sft.optim.lr: 0.001 -> 0.0005)") !=
          std::string::npos);
  REQUIRE(changed.err.find("06-prefs no longer matches the config or its inputs (--prefs content changed)") !=
          std::string::npos);
  REQUIRE(changed.err.find("08-ppo no longer matches the config or its inputs (it follows 05-sft, which is redone)") !=
          std::string::npos);
  REQUIRE(fs::exists(t / "o" / ".invalidated"));
  REQUIRE(fs::exists(t / "o" / "09-eval" / "DONE"));
  // a PPO-only change keeps everything before PPO
  auto ppo_only = run_cli(cmd + " sft.optim.lr=5e-4 ppo.train.max_steps=2");
  INFO(ppo_only.err);
  REQUIRE(ppo_only.code == 0);
  REQUIRE(ppo_only.err.find("07-reward done earlier; skipped") != std::string::npos);
  REQUIRE(ppo_only.err.find("08-ppo no longer matches the config or its inputs (ppo.train.max_steps: 3 -> 2)") !=
          std::string::npos);
  REQUIRE(json::parse(read_text(t / "o" / "08-ppo" / "DONE"))["steps"] == 2);
  // a damaged per-problem file costs the paired figure (one warning), never the finished run
  for (const auto& e : fs::directory_iterator(t / "o" / "09-eval" / "M1" / "practice_heldout"))
    if (e.path().string().find("_summary.jsonl") != std::string::npos) codex::test::write_text(e.path(), "{\"task_id\":1}\n");
  auto damaged = run_cli(cmd + " sft.optim.lr=5e-4 ppo.train.max_steps=2");
  INFO(damaged.err);
  REQUIRE(damaged.code == 0);
  CHECK(damaged.err.find("no paired M1-M0 difference on practice_heldout") != std::string::npos);
}
