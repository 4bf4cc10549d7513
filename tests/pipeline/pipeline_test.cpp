// The pipeline end to end on a tiny config: every stage, summary.json, rerun skips, a changed
// stage config invalidates it and the later stages; bad input refused before anything is written.
#include "pipeline/pipeline.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "data/practice.h"
#include "helpers.h"
#include "tokenizer/tiny_tokenizer.h"

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
}  // namespace

TEST_CASE("practice set: held-out pairs never in train, every canonical solution passes its test", "[pipeline][eval]") {
  PracticeSet a = make_practice_set(0), b = make_practice_set(0);
  REQUIRE(a.train.size() + a.heldout.size() == 12 * 29);
  REQUIRE(a.heldout.size() > 50);
  for (size_t i = 0; i < a.train.size(); ++i) REQUIRE(a.train[i].prompt == b.train[i].prompt);  // deterministic
  std::set<std::string> train_ids;
  for (auto& p : a.train) train_ids.insert(p.task_id);
  for (auto& p : a.heldout) REQUIRE(!train_ids.count(p.task_id));
  TempDir t;
  std::string probs;
  for (auto* set : {&a.train, &a.heldout})
    for (auto& p : *set) probs += problem_to_json(p).dump() + "\n";
  codex::test::write_text(t / "p.jsonl", probs);
  std::string samples;
  for (auto* set : {&a.train, &a.heldout})
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
  // rerun: nothing to do
  auto again = run_cli(cmd);
  INFO(again.err);
  REQUIRE(again.code == 0);
  REQUIRE(again.err.find("05-sft done earlier; skipped") != std::string::npos);
  REQUIRE(again.err.find("---- ") == std::string::npos);
  // a changed sft setting: sft and everything after it are redone, the old ones kept aside
  auto changed = run_cli(cmd + " sft.optim.lr=5e-4");
  INFO(changed.err);
  REQUIRE(changed.code == 0);
  REQUIRE(changed.err.find("03-pretrain done earlier; skipped") != std::string::npos);
  REQUIRE(changed.err.find("05-sft no longer matches") != std::string::npos);
  REQUIRE(changed.err.find("08-ppo no longer matches") != std::string::npos);
  REQUIRE(fs::exists(t / "o" / ".invalidated"));
  REQUIRE(fs::exists(t / "o" / "09-eval" / "DONE"));
  // a PPO-only change keeps everything before PPO
  auto ppo_only = run_cli(cmd + " sft.optim.lr=5e-4 ppo.train.max_steps=2");
  INFO(ppo_only.err);
  REQUIRE(ppo_only.code == 0);
  REQUIRE(ppo_only.err.find("07-reward done earlier; skipped") != std::string::npos);
  REQUIRE(ppo_only.err.find("08-ppo no longer matches") != std::string::npos);
  REQUIRE(json::parse(read_text(t / "o" / "08-ppo" / "DONE"))["steps"] == 2);
  // a damaged per-problem file costs the paired figure (one warning), never the finished run
  for (const auto& e : fs::directory_iterator(t / "o" / "09-eval" / "M1" / "practice_heldout"))
    if (e.path().string().find("_summary.jsonl") != std::string::npos) codex::test::write_text(e.path(), "{\"task_id\":1}\n");
  auto damaged = run_cli(cmd + " sft.optim.lr=5e-4 ppo.train.max_steps=2");
  INFO(damaged.err);
  REQUIRE(damaged.code == 0);
  CHECK(damaged.err.find("no paired M1-M0 difference on practice_heldout") != std::string::npos);
}
