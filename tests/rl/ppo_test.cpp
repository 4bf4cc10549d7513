// PPO end to end on toy rewards, execution grading in the sandbox, safety rules, resume.
#include "rl/ppo.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "eval/sandbox.h"
#include "helpers.h"
#include "rl/rewards.h"
#include "tokenizer/tiny_tokenizer.h"
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

eval::SandboxOptions two_workers(double timeout_s) {
  eval::SandboxOptions o;
  o.timeout_s = timeout_s;
  o.workers = 2;
  return o;
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
    // 8 prompts, 4 an iteration, epochs of permutations: all 8 seen after 2 iterations, each 14*4/8 times
    CHECK(m[0]["problems_seen"] == 4.0);
    CHECK(m[1]["problems_seen"] == 8.0);
    CHECK(m.back()["problems_seen"] == 8.0);
    CHECK(m.back()["visits_per_problem"].get<double>() == 7.0);
    for (auto& j : m) {  // distinct texts among a prompt's 4 samples: 1/4 .. 4/4, in quarters
      const double d = j["distinct_completions"].get<double>();
      CHECK(d >= 0.25);
      CHECK(d <= 1.0);
      CHECK(!j.contains("prompts_solved"));  // no tests: nothing to solve
    }
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
    for (auto k : {"loss", "reward", "kl", "kl_coef", "entropy", "policy_loss", "value_loss", "safety_violations",
                   "problems_seen", "visits_per_problem", "distinct_completions"}) {
      INFO("step " << i + 1 << " " << k);
      REQUIRE(mb[i][k].get<double>() == m[i][k].get<double>());
    }
}

TEST_CASE("ppo: bad inputs are refused before anything is written", "[ppo]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {})), Catch::Contains("no reward"));
  // safety patterns count as a reward only with a weight: gamma = 0 leaves no reward
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {"ppo.gamma=0", "ppo.safety.patterns=[' ']"})),
                      Catch::Contains("no reward"));
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {"ppo.safety.patterns=['(']"}), space_share),
                      Catch::Contains("not a valid regular expression"));
  REQUIRE_THROWS_WITH(ppo(toy_config(t.path, m0, (t / "r").string(), {"ppo.advantage=grpo",
                                                                      "ppo.rollout.samples_per_prompt=1"}),
                          space_share),
                      Catch::Contains("samples_per_prompt >= 2"));
  REQUIRE(!fs::exists(t / "r"));
}

TEST_CASE("rewards: execution outcomes graded in the sandbox, safety rules count matches", "[ppo][eval]") {
  eval::Sandbox sb(two_workers(3.0));
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

TEST_CASE("ppo: a safety rule alone is a reward (gamma != 0, patterns set, no other reward)", "[ppo]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  // No reward model, no tests, no custom reward: only U's gamma * Omega term.
  json out = ppo(toy_config(t.path, m0, (t / "r").string(),
                            {"train.max_steps=2", "ppo.gamma=0.5", "ppo.safety.patterns=[' ']",
                             "ppo.safety.no_eos_penalty=0"}));
  REQUIRE(out["steps"] == 2);
  auto m = metrics(t / "r");
  REQUIRE(m.size() == 2);
  for (auto& j : m) {
    // the sequence reward is -gamma x violations (per response, averaged)
    CHECK(j["reward"].get<double>() == Approx(-0.5 * j["safety_violations"].get<double>()).margin(1e-9));
    CHECK(j["reward_rm"].get<double>() == 0.0);
    CHECK(j["reward_exec"].get<double>() == 0.0);
  }
}

TEST_CASE("ppo: dropout is off in PPO, so the first ratio of an iteration is exactly 1", "[ppo]") {
  TempDir t;
  // An M1 trained with dropout 0.5 (its config says so; PPO must not sample masks).
  const std::string tok_path = codex::test::train_tiny_tokenizer(t.path, true, 400);
  Tokenizer tok(tok_path);
  Config mc = load_config("", {"model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=64",
                               "model.dropout=0.5", "optim.lr=0.1"});
  torch::manual_seed(5);
  GPT net(GPTConfig::from(mc.model, tok.vocab_size()));
  const std::string m1 = (t / "m1").string();
  save_model_checkpoint(m1, net, mc, tok_path);
  // One epoch, one minibatch: the only update sees pi == pi_old, so approx_kl = 0 and nothing clips.
  for (const char* adv : {"gae", "grpo"}) {
    INFO(adv);
    const fs::path run = t / (std::string("run-") + adv);
    ppo(toy_config(t.path, m1, run.string(),
                   {"train.max_steps=1", "ppo.epochs=1", "ppo.minibatches=1", std::string("ppo.advantage=") + adv}),
        space_share);
    auto m = metrics(run);
    REQUIRE(m.size() == 1);
    CHECK(std::abs(m[0]["approx_kl"].get<double>()) < 1e-6);
    CHECK(m[0]["clipfrac"].get<double>() == 0.0);
  }
}

TEST_CASE("rewards: a correct solution with an emoji and CJK text passes in the PPO / prefs grading path", "[ppo][eval]") {
  eval::Sandbox sb(two_workers(5.0));
  eval::Problem p;
  p.task_id = "t/emoji";
  p.prompt = "def greet(name):\n    \"\"\"Greets in two scripts \U0001F600.\"\"\"\n";
  p.entry_point = "greet";
  p.test = "def check(candidate):\n    assert candidate('\u4e16\u754c') == '\u4f60\u597d, \u4e16\u754c \U0001F680'\n";
  // UTF-8 in the completion: an emoji (above U+FFFF) in a comment and in a string, CJK text.
  const std::string right = "    # \xF0\x9F\x9A\x80 rocket\n    return '\xE4\xBD\xA0\xE5\xA5\xBD, ' + name + ' \xF0\x9F\x9A\x80'\n";
  const std::string wrong = "    # \xF0\x9F\x9A\x80 rocket\n    return '\xE4\xBD\xA0\xE5\xA5\xBD ' + name\n";
  // The eval path (the program as written) passes the right one ...
  auto plain = sb.run_programs({eval::check_program(p, right)});
  REQUIRE(plain[0].passed);
  // ... and so does the grading path of PPO's execution reward and prefs from-execution.
  auto oc = rl::grade_completions(sb, {p, p}, {right, wrong});
  REQUIRE(oc.size() == 2);
  CHECK(oc[0] == rl::Outcome::passed);
  CHECK(rl::execution_reward(oc[0]) == 1.0);
  CHECK(oc[1] == rl::Outcome::wrong);
}

TEST_CASE("rewards: partial credit counts the test's asserts one by one", "[ppo][eval]") {
  eval::Sandbox sb(two_workers(5.0));
  eval::Problem p;
  p.task_id = "t/partial";
  p.prompt = "def f(x):\n";
  p.entry_point = "f";
  // three asserts, the second inside a loop of two: four asserts run
  p.test = "def check(candidate):\n    assert candidate(1) == 2\n    for v in (2, 3):\n        assert candidate(v) == v + 1, 'msg'\n"
           "    assert candidate(0) == 1\n";
  const std::vector<std::string> completions = {
      "    return x + 1\n",                          // 4 of 4: passed
      "    return 2 if x == 1 else x\n",             // only candidate(1) holds: 1 of 4
      "    return x + 1 if x < 3 else x.nope\n",     // candidate(3) raises inside an assert: 3 of 4
      "    return 1\n",                              // only candidate(0): 1 of 4
      "    assert False\n",                          // the completion's own assert fails in every call: 0 of 4
      "    return x +\n",                            // does not parse
      "    return x + 1\nraise ValueError('x')\n",  // raises at module level before check runs
      "    return x + 1\nimport sys\nsys.exit(0)\n"};  // ends before check: not a pass
  const std::vector<eval::Problem> ps(completions.size(), p);
  auto g = rl::grade_completions_partial(sb, ps, completions);
  REQUIRE(g.size() == completions.size());
  CHECK(g[0].outcome == rl::Outcome::passed);
  CHECK(g[0].share == 1.0);
  CHECK(g[1].outcome == rl::Outcome::wrong);
  CHECK(g[1].share == Approx(0.25));
  CHECK(g[2].outcome == rl::Outcome::wrong);
  CHECK(g[2].share == Approx(0.75));
  CHECK(g[3].share == Approx(0.25));
  CHECK(g[4].outcome == rl::Outcome::wrong);
  CHECK(g[4].share == 0.0);
  CHECK(g[5].outcome == rl::Outcome::syntax);
  CHECK(g[6].outcome == rl::Outcome::error);
  CHECK(g[7].outcome == rl::Outcome::error);
  // rewards: passed 1; wrong -0.3 + 0.6 x share; error -0.6; syntax -1
  CHECK(rl::partial_execution_reward(g[0]) == 1.0);
  CHECK(rl::partial_execution_reward(g[1]) == Approx(-0.15));
  CHECK(rl::partial_execution_reward(g[2]) == Approx(0.15));
  CHECK(rl::partial_execution_reward(g[4]) == Approx(-0.3));
  CHECK(rl::partial_execution_reward(g[5]) == -1.0);
  CHECK(rl::partial_execution_reward(g[6]) == -0.6);
  // the pass / fail grading of the same programs agrees on what passes
  auto oc = rl::grade_completions(sb, ps, completions);
  for (size_t i = 0; i < oc.size(); ++i) CHECK((oc[i] == rl::Outcome::passed) == (g[i].outcome == rl::Outcome::passed));
}

TEST_CASE("ppo: 2 ranks whiten advantages over the whole rollout and match 1 process step by step", "[ppo][dist]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  std::string prompts;
  for (int i = 0; i < 8; ++i) prompts += json{{"prompt", "def f" + std::to_string(i) + "(x):\n"}}.dump() + "\n";
  codex::test::write_text(t / "prompts.jsonl", prompts);
  // A safety-only reward (no custom reward on the command line); GAE with whitening; one update
  // per iteration so only the advantages can tell the two runs apart.
  auto args = [&](const std::string& run) {
    std::string a = "ppo";
    for (const std::string& o : std::vector<std::string>{"ppo.init=" + m0, "ppo.prompts=" + (t / "prompts.jsonl").string(), "run.dir=" + run, "run.threads=1",
          std::string("train.max_steps=3"), std::string("train.log_every=1"), std::string("train.eval_every=0"),
          std::string("train.checkpoint_every=0"), std::string("optim.lr=1e-2"), std::string("optim.warmup_steps=0"),
          std::string("optim.min_lr_ratio=1"), std::string("ppo.rollout.prompts_per_step=4"),
          std::string("ppo.rollout.samples_per_prompt=2"), std::string("ppo.rollout.max_new_tokens=8"),
          std::string("ppo.w_rm=0"), std::string("ppo.w_exec=0"), std::string("generate.stop=[]"),
          std::string("ppo.gamma=1"), std::string("ppo.safety.patterns=[' ']"),
          std::string("ppo.safety.no_eos_penalty=0"), std::string("ppo.epochs=1"), std::string("ppo.minibatches=1"),
          std::string("ppo.advantage=gae"), std::string("ppo.whiten=true"), std::string("dist.timeout_s=30")})
      a += " " + codex::test::shell_quote(o);
    return a;
  };
  auto one = codex::test::run_cli(args((t / "one").string()));
  INFO(one.err);
  REQUIRE(one.code == 0);
  auto two = codex::test::run_shell(codex::test::shell_quote(std::string(CODEX_SOURCE_DIR) + "/scripts/launch.sh") +
                                    " --nproc-per-node 2 --grace 2 --master-port " + std::to_string(codex::test::free_port()) +
                                    " -- " + codex::test::shell_quote(CODEX_BINARY) + " " + args((t / "two").string()));
  INFO(two.err);
  REQUIRE(two.code == 0);
  auto a = metrics(t / "one"), b = metrics(t / "two");
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == 3);
  for (size_t i = 0; i < a.size(); ++i)
    for (auto k : {"loss", "kl", "entropy", "policy_loss", "value_loss", "reward", "response_length"}) {
      INFO("step " << i + 1 << " " << k);
      const double x = a[i][k].get<double>(), y = b[i][k].get<double>();
      CHECK(std::abs(x - y) <= 1e-4 * std::max(1.0, std::abs(x)));
    }
}
