// PPO end to end on toy rewards, execution grading in the sandbox, safety rules, resume.
#include "rl/ppo.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "eval/sandbox.h"
#include "helpers.h"
#include "rl/rewards.h"
#include "train/finetune_fixture.h"

using namespace codex;
using codex::test::read_text;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<json> metrics(const fs::path& run) { return codex::test::metrics_of(run); }

double mean_of(const std::vector<json>& m, const char* key, size_t lo, size_t hi) {
  double s = 0;
  for (size_t i = lo; i < hi; ++i) s += m[i][key].get<double>();
  return s / static_cast<double>(hi - lo);
}

Config toy_config(const fs::path& dir, const std::string& m0, const std::string& run, std::vector<std::string> extra) {
  std::string prompts;
  for (int i = 0; i < 8; ++i) prompts += json{{"prompt", "def f" + std::to_string(i) + "(x):\n"}}.dump() + "\n";
  codex::test::write_text(dir / "prompts.jsonl", prompts);
  std::vector<std::string> o = {"ppo.init=" + m0, "ppo.prompts=" + (dir / "prompts.jsonl").string(), "run.dir=" + run,
                                "run.threads=1", "train.log_every=1", "train.eval_every=0", "train.checkpoint_every=0",
                                "optim.lr=1e-2", "optim.warmup_steps=0", "optim.min_lr_ratio=1",
                                "ppo.rollout.prompts_per_step=4", "ppo.rollout.samples_per_prompt=4",
                                "ppo.rollout.max_new_tokens=8", "ppo.w_rm=0", "ppo.w_exec=0", "generate.stop=[]"};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_config("", o);
}

double space_share(const std::string&, const std::string& r) {
  if (r.empty()) return 0;
  return static_cast<double>(std::count(r.begin(), r.end(), ' ')) / static_cast<double>(r.size());
}

}  // namespace

TEST_CASE("ppo: the reward rises on a toy task while the KL to the reference stays bounded", "[ppo]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  for (const char* adv : {"gae", "grpo", "rloo"}) {
    INFO(adv);
    const fs::path run = t / (std::string("run-") + adv);
    Config cfg = toy_config(t.path, m0, run.string(),
                            {"train.max_steps=14", std::string("ppo.advantage=") + adv, "ppo.kl.coef=0.05"});
    json out = ppo(cfg, space_share);
    auto m = metrics(run);
    REQUIRE(m.size() == 14);
    for (auto k : {"reward", "kl", "kl_coef", "entropy", "policy_loss", "clipfrac", "approx_kl", "response_length",
                   "rollout_tokens_per_s", "update_tokens_per_s", "safety_violations", "reward_custom"})
      REQUIRE(m.back().contains(k));
    const double early = mean_of(m, "reward", 0, 3), late = mean_of(m, "reward", 11, 14);
    INFO("reward " << early << " -> " << late);
    REQUIRE(late > early + 0.1);
    for (auto& j : m) REQUIRE(j["kl"].get<double>() < 8.0);
    if (std::string(adv) == "gae") REQUIRE(m.back().contains("value_loss"));
  }
}

TEST_CASE("ppo: the safety penalty lowers the rate of a disallowed pattern, resume is bit-exact", "[ppo][checkpoint]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  auto zero = [](const std::string&, const std::string&) { return 0.0; };
  const std::vector<std::string> extra = {"train.max_steps=12", "ppo.gamma=1.0", "ppo.safety.patterns=[' ']",
                                          "ppo.safety.no_eos_penalty=0", "train.checkpoint_every=4",
                                          "train.keep_checkpoints=5"};
  json out = ppo(toy_config(t.path, m0, (t / "a").string(), extra), zero);
  auto m = metrics(t / "a");
  const double early = mean_of(m, "safety_violations", 0, 3), late = mean_of(m, "safety_violations", 9, 12);
  INFO("violations " << early << " -> " << late);
  REQUIRE(early > 0.3);
  REQUIRE(late < 0.6 * early);
  REQUIRE(m.back()["safety_penalty"].get<double>() == Approx(m.back()["safety_violations"].get<double>()));
  // interrupted after iteration 8: resume reproduces iterations 9..12 bit for bit
  fs::copy(t / "a", t / "b", fs::copy_options::recursive);
  fs::remove_all(t / "b" / "checkpoints" / checkpoint_name(12));
  codex::test::write_text(t / "b" / "checkpoints" / "latest", checkpoint_name(8) + "\n");
  std::vector<std::string> resumed = extra;
  resumed.push_back("resume=true");
  ppo(toy_config(t.path, m0, (t / "b").string(), resumed), zero);
  auto mb = metrics(t / "b");
  REQUIRE(mb.size() == m.size());
  for (size_t i = 0; i < m.size(); ++i)
    for (auto k : {"loss", "reward", "kl", "kl_coef", "entropy", "policy_loss", "value_loss", "safety_violations"}) {
      INFO("step " << i + 1 << " " << k);
      REQUIRE(mb[i][k].get<double>() == m[i][k].get<double>());
    }
}

TEST_CASE("ppo: bad inputs are refused before anything is written", "[ppo]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {})), Catch::Contains("no reward"));
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {"ppo.safety.patterns=['(']"}), space_share),
                      Catch::Contains("not a valid regular expression"));
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {"ppo.advantage=grpo",
                                                                      "ppo.rollout.samples_per_prompt=1"}),
                          space_share),
                      Catch::Contains("samples_per_prompt >= 2"));
  REQUIRE(!fs::exists(t / "r"));
}

TEST_CASE("rewards: execution outcomes graded in the sandbox, safety rules count matches", "[ppo][eval]") {
  eval::SandboxOptions o;
  o.timeout_s = 3.0;
  o.workers = 2;
  eval::Sandbox sb(o);
  const std::vector<std::string> programs = {
      "def f(x):\n    return x + 1\nassert f(1) == 2\n",               // passes
      "def f(x):\n    return x\nassert f(1) == 2\n",                   // wrong answer
      "def f(x):\n    return x.nope\nassert f(1) == 2\n",              // raises
      "def f(x)\n    return x\n",                                      // does not parse
      "import sys\nsys.exit(0)\nassert False\n"};                      // ends early: not a pass
  std::vector<std::string> wrapped;
  for (auto& p : programs) wrapped.push_back(rl::graded_program(p));
  auto res = sb.run_programs(wrapped);
  REQUIRE(rl::outcome_of(res[0]) == rl::Outcome::passed);
  REQUIRE(rl::outcome_of(res[1]) == rl::Outcome::wrong);
  REQUIRE(rl::outcome_of(res[2]) == rl::Outcome::error);
  REQUIRE(rl::outcome_of(res[3]) == rl::Outcome::syntax);
  REQUIRE(rl::outcome_of(res[4]) == rl::Outcome::error);
  REQUIRE(rl::execution_reward(rl::Outcome::passed) > rl::execution_reward(rl::Outcome::wrong));
  REQUIRE(rl::execution_reward(rl::Outcome::wrong) > rl::execution_reward(rl::Outcome::error));
  REQUIRE(rl::execution_reward(rl::Outcome::error) > rl::execution_reward(rl::Outcome::syntax));
  rl::SafetyRules rules({"os\\.system", "eval("[0] == 'e' ? "eval\\(" : "", "rm -rf"});
  REQUIRE(rules.violations("import os\nos.system('rm -rf /')\nx = eval('1') + eval('2')\n") == 4);
  REQUIRE(rules.violations("return x\n") == 0);
  REQUIRE_THROWS(rl::SafetyRules({"[unclosed"}));
}
