// score (batched equals one by one, against a hand formulation), eval problems with reranking,
// the round trip, and pairs by execution outcome.
#include "eval/evaluate.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "data/practice.h"
#include "helpers.h"
#include "rl/prefs.h"
#include "tokenizer/tokenizer.h"
#include "train/finetune_fixture.h"
#include "train/sft.h"
#include "util/error.h"

using namespace codex;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// log P(completion | prompt) by hand: one forward pass over the tokens (no batching, no padding),
// log_softmax in float64, summed at the completion's positions. An empty prompt reads the
// end-of-text token as its context; a sequence longer than the block loses its prompt's left end.
double hand_logprob(GPT& model, const Tokenizer& tok, const std::string& prompt, const std::string& completion) {
  auto p = tok.encode(prompt), c = tok.encode(completion);
  if (p.empty()) p.push_back(tok.eot_id());
  std::vector<int64_t> all(p.begin(), p.end());
  all.insert(all.end(), c.begin(), c.end());
  const size_t keep = static_cast<size_t>(model->cfg.block_size) + 1;
  const size_t drop = all.size() > keep ? all.size() - keep : 0;
  REQUIRE(drop < p.size());  // only prompt tokens are dropped
  all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(drop));
  const size_t first = p.size() - drop;  // position of the first completion token in `all`
  torch::NoGradGuard ng;
  const bool was = model->is_training();
  model->eval();
  auto in = torch::tensor(std::vector<int64_t>(all.begin(), all.end() - 1), torch::kLong).unsqueeze(0);
  auto lsm = torch::log_softmax(model->forward(in).to(torch::kFloat64), -1);  // (1, T - 1, V)
  if (was) model->train();
  double sum = 0;
  for (size_t j = 0; j < c.size(); ++j) sum += lsm[0][static_cast<int64_t>(first + j - 1)][c[j]].item<double>();
  return sum;
}

}  // namespace

TEST_CASE("score: an empty completion keeps its place in a batch, later results are not shifted", "[eval]") {
  TempDir t;
  LoadedModel lm = load_model(codex::test::make_lm_checkpoint(t.path));
  Tokenizer tok(lm.tokenizer_path);
  const std::vector<std::pair<std::string, std::string>> items = {
      {"def f(x):\n", "    return x\n"}, {"import os\n", ""}, {"a = 1\n", "b = a + 2\n"}, {"x = 0\n", ""}};
  auto out = score_completions(lm.model, tok, items, 16);
  REQUIRE(out.size() == 4);
  CHECK(out[1].tokens == 0);
  CHECK(out[1].logprob == 0.0);
  CHECK(out[3].tokens == 0);
  CHECK(out[0].tokens == static_cast<int64_t>(tok.encode(items[0].second).size()));
  CHECK(out[2].tokens == static_cast<int64_t>(tok.encode(items[2].second).size()));
  CHECK(out[0].logprob == Approx(hand_logprob(lm.model, tok, items[0].first, items[0].second)).epsilon(1e-6));
  CHECK(out[2].logprob == Approx(hand_logprob(lm.model, tok, items[2].first, items[2].second)).epsilon(1e-6));
}

TEST_CASE("score: batched log-probs equal one by one and a hand log_softmax", "[eval][sft]") {
  TempDir t;
  LoadedModel lm = load_model(codex::test::make_lm_checkpoint(t.path));
  Tokenizer tok(lm.tokenizer_path);
  std::vector<std::pair<std::string, std::string>> items = {
      {"def f(x):\n", "    return x + 1\n"}, {"import os\n", "x = 1"}, {"", "pass"}, {"a = [1, 2, 3]\n", "b = a[0]\n"}};
  auto batched = score_completions(lm.model, tok, items, 16);
  REQUIRE(batched.size() == items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto solo = score_completions(lm.model, tok, {items[i]}, 1);
    REQUIRE(batched[i].tokens == solo[0].tokens);
    REQUIRE(batched[i].logprob == Approx(solo[0].logprob).epsilon(1e-6));  // float32 model: padding changes rounding only
  }
  // By hand for the first: sum of log softmax at each completion token given everything before it.
  auto p = tok.encode(items[0].first), c = tok.encode(items[0].second);
  std::vector<int64_t> all(p.begin(), p.end());
  all.insert(all.end(), c.begin(), c.end());
  torch::NoGradGuard ng;
  auto logits = lm.model->forward(torch::tensor(all, torch::kLong).unsqueeze(0)).to(torch::kFloat64);  // (1, T, V)
  auto lsm = torch::log_softmax(logits, -1);
  double want = 0;
  for (size_t j = 0; j < c.size(); ++j) want += lsm[0][static_cast<int64_t>(p.size() + j - 1)][c[j]].item<double>();
  REQUIRE(batched[0].tokens == static_cast<int64_t>(c.size()));
  REQUIRE(batched[0].logprob == Approx(want).epsilon(1e-6));
  // The command prints the same numbers.
  codex::test::write_text(t / "in.jsonl", json{{"prompt", items[0].first}, {"completion", items[0].second}}.dump() + "\n");
  auto r = run_cli("score --checkpoint " + (t / "m0").string() + " --input " + (t / "in.jsonl").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json::parse(r.out);
  REQUIRE(j["logprob"].get<double>() == Approx(want).epsilon(1e-6));
  REQUIRE(j["mean_logprob"].get<double>() == Approx(want / static_cast<double>(c.size())).epsilon(1e-6));
}

TEST_CASE("prefs: pairs by execution outcome, better first, deterministic, capped", "[eval][reward]") {
  using rl::Outcome;
  std::vector<Outcome> oc = {Outcome::wrong, Outcome::passed, Outcome::syntax, Outcome::passed, Outcome::error};
  std::vector<std::string> tx = {"w", "p1", "s", "p1", "e"};  // two identical passing texts
  auto pairs = pair_by_outcome(oc, tx, 100);
  // passed vs syntax, error, wrong (for both passing samples), wrong vs syntax / error, error vs syntax
  std::vector<std::pair<size_t, size_t>> want = {{1, 2}, {3, 2}, {1, 4}, {3, 4}, {1, 0}, {3, 0},
                                                 {0, 2}, {0, 4}, {4, 2}};
  REQUIRE(pairs == want);
  REQUIRE(pair_by_outcome(oc, tx, 2) == std::vector<std::pair<size_t, size_t>>{{1, 2}, {3, 2}});
  REQUIRE(pair_by_outcome({Outcome::passed, Outcome::passed}, {"a", "b"}, 4).empty());
}

TEST_CASE("eval problems with reranking and eval roundtrip run end to end", "[eval][sft]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path, 128);
  PracticeSet ps = make_practice_set(0);
  std::string probs;
  for (size_t i = 0; i < 6; ++i) probs += problem_to_json(ps.heldout[i]).dump() + "\n";
  codex::test::write_text(t / "p.jsonl", probs);
  auto r = run_cli("eval problems --checkpoint " + m0 + " --problems " + (t / "p.jsonl").string() +
                   " --n 3 --k 1,3 --max-new-tokens 16 --rerank mean-logprob --out " + (t / "ev").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json::parse(r.out);
  REQUIRE(j.contains("pass@1"));
  REQUIRE(j.contains("pass@3"));
  REQUIRE(j.contains("rerank@1"));
  REQUIRE(fs::exists(t / "ev" / "m0_t0.2_n3_summary.jsonl"));
  auto bad = run_cli("eval problems --checkpoint " + m0 + " --problems " + (t / "p.jsonl").string() + " --rerank best");
  REQUIRE(bad.code == 2);
  auto rt = run_cli("eval roundtrip --codex-d " + m0 + " --codex-s " + m0 + " --problems " + (t / "p.jsonl").string() +
                    " --n 1 --k 1 --max-new-tokens 12 --out " + (t / "rt").string());
  INFO(rt.err);
  REQUIRE(rt.code == 0);
  auto k = json::parse(rt.out);
  REQUIRE(k["problems"] == 6);
  REQUIRE(k.contains("pass@1"));
  REQUIRE(k.contains("roundtrip_pass@1"));
}

TEST_CASE("eval problems: back-translation reranking scores samples by Codex-D log P(docstring | sample)",
          "[eval][sft]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path, 128);
  LoadedModel lm = load_model(m0);
  Tokenizer tok(lm.tokenizer_path);
  PracticeSet ps = make_practice_set(0);
  // Scores: log P(the problem's own docstring | prompt without it + the sample), per sample.
  std::vector<eval::Problem> one = {ps.heldout[0]};
  std::vector<std::string> samples = {ps.heldout[0].canonical_solution, "    return None\n"};
  auto sc = back_translation_scores(lm.model, tok, one, samples, 2);
  REQUIRE(sc.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    eval::Problem q = one[0];
    q.canonical_solution = samples[i];
    auto [dp, dc] = docstring_task(q);
    REQUIRE(dp.find(samples[i]) != std::string::npos);  // the sample is what Codex-D reads
    REQUIRE(!dc.empty());
    REQUIRE(dp.find(dc.substr(0, dc.find('\n'))) == std::string::npos);  // ... and not the docstring it scores
    REQUIRE(sc[i] == Approx(hand_logprob(lm.model, tok, dp, dc)).epsilon(1e-6));  // independent of score_completions
  }
  eval::Problem bare = one[0];
  bare.prompt = "def f(x):\n";
  REQUIRE(std::isinf(back_translation_scores(lm.model, tok, {bare}, {"    return x\n"}, 1)[0]));

  // End to end: the command reranks with Codex-D and reports rerank@1 = the share of problems
  // whose picked sample passed. (Which sample scores highest cannot be recomputed from the samples
  // file here: it stores a tiny model's invalid UTF-8 as U+FFFD.)
  std::string probs;
  for (size_t i = 0; i < 4; ++i) probs += problem_to_json(ps.heldout[i]).dump() + "\n";
  codex::test::write_text(t / "p.jsonl", probs);
  const std::string base = "eval problems --checkpoint " + m0 + " --problems " + (t / "p.jsonl").string() +
                           " --n 3 --k 1 --max-new-tokens 12 --temperature 1.0 --out " + (t / "ev").string();
  auto r = run_cli(base + " --rerank back-translation --codex-d " + m0);
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json::parse(r.out);
  REQUIRE(j.contains("rerank@1"));
  std::istringstream summary(codex::test::read_text(t / "ev" / "m0_t1_n3_summary.jsonl"));
  int rows = 0, passed = 0;
  for (std::string line; std::getline(summary, line); ++rows) {
    auto row = json::parse(line);
    REQUIRE(row["picked"].get<int>() >= 0);
    REQUIRE(row["picked"].get<int>() < 3);
    passed += row["picked_passed"].get<bool>();
  }
  REQUIRE(rows == 4);
  CHECK(j["rerank@1"].get<double>() == Approx(passed / 4.0));
  CHECK(run_cli(base + " --rerank back-translation").code == 2);                 // no Codex-D given
  CHECK(run_cli(base + " --rerank mean-logprob --codex-d " + m0).code == 2);    // a Codex-D that nothing uses
}

TEST_CASE("paired pass@1: per-problem differences on the problems both runs hold, hand-computed", "[eval]") {
  TempDir t;
  codex::test::write_text(t / "a.jsonl", "{\"task_id\":\"p1\",\"n\":10,\"passed\":1}\n"
                                         "{\"task_id\":\"p2\",\"n\":10,\"passed\":5}\n"
                                         "{\"task_id\":\"p3\",\"n\":10,\"passed\":0}\n"
                                         "{\"task_id\":\"only_a\",\"n\":10,\"passed\":9}\n");
  codex::test::write_text(t / "b.jsonl", "{\"task_id\":\"p3\",\"n\":10,\"passed\":4}\n"
                                         "{\"task_id\":\"p1\",\"n\":10,\"passed\":2}\n"
                                         "{\"task_id\":\"p2\",\"n\":10,\"passed\":5}\n");
  auto d = codex::paired_pass_at_1((t / "a.jsonl").string(), (t / "b.jsonl").string());
  // differences by task id {+0.1, 0, +0.4}: mean 1/6, sample variance ((0.1-1/6)^2 + (1/6)^2 + (0.4-1/6)^2) / 2
  const double m = 0.5 / 3.0;
  const double var = ((0.1 - m) * (0.1 - m) + m * m + (0.4 - m) * (0.4 - m)) / 2.0;
  CHECK(d["problems"] == 3);
  CHECK(d["pass@1"].get<double>() == Approx(m).epsilon(1e-12));
  CHECK(d["ci95"].get<double>() == Approx(1.96 * std::sqrt(var / 3.0)).epsilon(1e-12));
  codex::test::write_text(t / "bad.jsonl", "{\"task_id\":\"p1\",\"n\":10,\"passed\":11}\n");
  try {
    codex::paired_pass_at_1((t / "a.jsonl").string(), (t / "bad.jsonl").string());
    FAIL("no error");
  } catch (const codex::UsageError& e) {
    CHECK(std::string(e.what()).find("bad.jsonl:1") != std::string::npos);
  }
}
