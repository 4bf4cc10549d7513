// `eval problems` and `score`, over the library functions the pipeline uses too.
#include "eval/evaluate.h"

#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <optional>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "data/jsonl.h"
#include "eval/passk.h"
#include "eval/sampling.h"
#include "generate/generate.h"
#include "tokenizer/tokenizer.h"
#include "train/sequences.h"
#include "train/sft.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

EvalSpec EvalSpec::from(const Config& cfg) {
  EvalSpec s;
  s.n = cfg.eval.n;
  s.temperature = cfg.eval.temperature;
  s.top_p = cfg.eval.top_p;
  s.max_new_tokens = cfg.eval.max_new_tokens;
  s.k = cfg.eval.k;
  s.seed = static_cast<uint64_t>(cfg.run.seed);
  return s;
}

GradedSamples grade_samples(const std::vector<eval::Problem>& problems, const std::vector<Sample>& samples,
                            const eval::Sandbox& sandbox, const std::vector<int64_t>& ks,
                            const std::string& samples_path, bool with_sum_logprob) {
  GradedSamples g;
  std::string samples_text;
  for (auto& s : samples) {
    eval::Sample e;
    e.task_id = problems[s.prompt_index].task_id;
    e.completion = s.text;
    e.line = {{"task_id", e.task_id}, {"completion", s.text}, {"sample", s.sample_index},
              {"mean_logprob", s.mean_logprob()}};
    if (with_sum_logprob) {
      double sum = 0;
      for (float lp : s.logprobs) sum += lp;
      e.line["sum_logprob"] = sum;
    }
    e.line["finish_reason"] = s.finish_reason;
    samples_text += e.line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    g.samples.push_back(std::move(e));
  }
  write_file_atomic(samples_path, samples_text);
  g.report = eval::evaluate(problems, g.samples, sandbox, ks);
  eval::write_results(eval::results_path_for(samples_path), g.samples, g.report.results);
  return g;
}

namespace {

void check_rerank(const EvalSpec& spec) {
  if (spec.rerank != "none" && spec.rerank != "mean-logprob" && spec.rerank != "sum-logprob" &&
      spec.rerank != "back-translation")
    throw UsageError("--rerank: expected none, mean-logprob, sum-logprob or back-translation, got '" + spec.rerank + "'");
  if (spec.rerank == "back-translation" && !(spec.codex_d && spec.codex_d_tok))
    throw UsageError("--rerank back-translation needs --codex-d CKPT (a Codex-D model: sft.task=docstring)");
}

// The rerank score of every sample: back-translation, sum or mean of its own log-probs.
std::vector<double> rerank_scores(const EvalSpec& spec, const std::vector<eval::Problem>& problems,
                                  const std::vector<eval::Sample>& evs) {
  std::vector<double> scores;
  if (spec.rerank == "back-translation") {
    std::vector<std::string> texts;
    for (auto& e : evs) texts.push_back(e.completion);
    return back_translation_scores(*spec.codex_d, *spec.codex_d_tok, problems, texts, spec.n);
  }
  for (auto& e : evs)
    scores.push_back(spec.rerank == "sum-logprob" ? e.line["sum_logprob"].get<double>()
                                                  : e.line["mean_logprob"].get<double>());
  return scores;
}

// Per-problem lines {task_id, n, passed[, picked, picked_passed]}; fills each problem's share of
// passing samples and the number of problems whose picked sample passes.
std::string problem_summary(const EvalSpec& spec, const std::vector<eval::Problem>& problems,
                            const std::vector<eval::ProgramResult>& results, const std::vector<double>& scores,
                            std::vector<double>& rate, double& picked_pass) {
  const int64_t n = spec.n;
  std::string summary;
  for (size_t p = 0; p < problems.size(); ++p) {
    int64_t c = 0, best = 0;  // no usable score at all (e.g. no docstring): the first sample
    double best_score = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) {
      const size_t at = p * static_cast<size_t>(n) + static_cast<size_t>(i);
      c += results[at].passed ? 1 : 0;
      if (spec.rerank != "none" && scores[at] > best_score) best_score = scores[at], best = i;
    }
    rate.push_back(static_cast<double>(c) / static_cast<double>(n));
    json j = {{"task_id", problems[p].task_id}, {"n", n}, {"passed", c}};
    if (spec.rerank != "none") {
      const bool ok = results[p * static_cast<size_t>(n) + static_cast<size_t>(best)].passed;
      j["picked"] = best;
      j["picked_passed"] = ok;
      picked_pass += ok;
    }
    summary += j.dump() + "\n";
  }
  return summary;
}

}  // namespace

json evaluate_problems(GPT& model, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                       const eval::Sandbox& sandbox, const EvalSpec& spec, const Config& cfg) {
  check_rerank(spec);
  make_output_dir(spec.out_dir, "evaluation output folder");
  const int64_t n = spec.n;
  auto samples = sample_problems(model, tok, problems, n, cfg.generate,
                                 {spec.temperature, spec.top_p, spec.max_new_tokens, spec.seed, false});
  const fs::path out(spec.out_dir);
  const std::string samples_path = (out / (spec.tag + "_samples.jsonl")).string();
  GradedSamples g = grade_samples(problems, samples, sandbox, spec.k, samples_path, true);
  const eval::EvalReport& rep = g.report;
  std::vector<double> scores;
  if (spec.rerank != "none") scores = rerank_scores(spec, problems, g.samples);
  double picked_pass = 0;
  std::vector<double> rate;  // per-problem share of passing samples (the pass@1 estimate of each)
  write_file_atomic(out / (spec.tag + "_summary.jsonl"),
                    problem_summary(spec, problems, rep.results, scores, rate, picked_pass));
  eval::warn_skipped_k(rep);
  json result = json::parse(eval::pass_at_k_json(rep.pass_at_k, rep.skipped_k));
  if (spec.rerank != "none") result["rerank@1"] = problems.empty() ? 0.0 : picked_pass / problems.size();
  // Sampling noise of pass@1: 1.96 x the standard error of the mean of the per-problem rates.
  if (rate.size() > 1) result["pass@1_ci95"] = eval::mean_ci95(rate).ci95;
  write_file_atomic(out / (spec.tag + "_pass_at_k.json"), result.dump() + "\n");
  result["problems"] = problems.size();
  result["n"] = n;
  result["samples"] = samples_path;
  return result;
}

nlohmann::json paired_pass_at_1(const std::string& a_summary, const std::string& b_summary) {
  auto rates = [](const std::string& path) {
    std::map<std::string, double> r;
    for_each_jsonl(path, [&](int64_t line, const json& j) {
      const std::string id = jsonl_string(j, "task_id", path, line);
      if (!j.contains("n") || !j["n"].is_number_integer() || j["n"].get<int64_t>() < 1 || !j.contains("passed") ||
          !j["passed"].is_number_integer() || j["passed"].get<int64_t>() < 0 ||
          j["passed"].get<int64_t>() > j["n"].get<int64_t>())
        jsonl_error(path, line, "need integers 0 <= passed <= n and n >= 1");
      r[id] = static_cast<double>(j["passed"].get<int64_t>()) / static_cast<double>(j["n"].get<int64_t>());
    }, "per-problem results");
    return r;
  };
  const auto a = rates(a_summary), b = rates(b_summary);
  std::vector<double> diff;
  for (const auto& [id, rb] : b)
    if (auto it = a.find(id); it != a.end()) diff.push_back(rb - it->second);
  const eval::MeanCi d = eval::mean_ci95(diff);
  return {{"pass@1", d.mean}, {"ci95", d.ci95}, {"problems", d.count}};
}

std::vector<double> back_translation_scores(GPT& codex_d, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                                            const std::vector<std::string>& samples, int64_t n) {
  TORCH_CHECK(samples.size() == problems.size() * static_cast<size_t>(n), "back_translation_scores: sample count");
  std::vector<std::pair<std::string, std::string>> items;
  std::vector<size_t> at;  // sample index of each item
  for (size_t i = 0; i < samples.size(); ++i) {
    eval::Problem q = problems[i / static_cast<size_t>(n)];
    q.canonical_solution = samples[i];
    auto task = docstring_task(q);
    if (task.first.empty()) continue;
    items.push_back(std::move(task));
    at.push_back(i);
  }
  std::vector<double> out(samples.size(), -std::numeric_limits<double>::infinity());
  auto scored = score_completions(codex_d, tok, items);
  for (size_t j = 0; j < at.size(); ++j)
    if (scored[j].tokens > 0) out[at[j]] = scored[j].logprob;
  return out;
}

std::vector<Scored> score_completions(GPT& model, const Tokenizer& tok,
                                      const std::vector<std::pair<std::string, std::string>>& items, int64_t batch) {
  const bool was = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  const auto dev = model->parameters().front().device();
  // One result per item, in item order: an empty completion keeps its place ({0, 0}) and the
  // rows actually scored write back to the items they came from.
  std::vector<Scored> out(items.size());
  for (size_t lo = 0; lo < items.size(); lo += static_cast<size_t>(batch)) {
    std::vector<Sequence> seqs;
    std::vector<size_t> at;  // item index of each scored row
    for (size_t i = lo; i < std::min(items.size(), lo + batch); ++i) {
      Sequence s;
      s.prompt = tok.encode(items[i].first);
      s.completion = tok.encode(items[i].second);
      if (s.prompt.empty()) s.prompt.push_back(tok.eot_id());  // the first token needs a context
      if (s.completion.empty()) continue;
      seqs.push_back(std::move(s));
      at.push_back(i);
    }
    if (seqs.empty()) continue;
    std::vector<const Sequence*> rows;
    for (auto& s : seqs) rows.push_back(&s);
    SeqBatch b = make_batch(rows, model->cfg.block_size, true, tok.pad_id());
    auto hid = model->hidden(b.input.to(dev), nullptr, b.mask.to(dev));
    auto lsm = torch::log_softmax(model->lm_logits(hid).to(torch::kFloat64), -1);
    auto tg = b.targets.to(dev);
    auto lp = lsm.gather(-1, tg.clamp_min(0).unsqueeze(-1)).squeeze(-1) * (tg != -100).to(torch::kFloat64);
    auto sums = lp.sum(1).cpu();
    auto counts = (b.targets != -100).sum(1);
    for (int64_t i = 0; i < sums.size(0); ++i) out[at[static_cast<size_t>(i)]] = {sums[i].item<double>(), counts[i].item<int64_t>()};
  }
  if (was) model->train();
  return out;
}

namespace {

int run_eval_problems(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const std::string problems_path = inv.require("problems");
  auto problems = eval::load_problems(problems_path);
  if (cfg.eval.limit > 0 && static_cast<size_t>(cfg.eval.limit) < problems.size()) problems.resize(cfg.eval.limit);
  eval::Sandbox sandbox(eval::sandbox_options(cfg));
  LoadedModel lm = load_model(inv.require("checkpoint"), pick_device(cfg.run));
  if (lm.tokenizer_path.empty()) throw UsageError(lm.dir + ": checkpoint has no tokenizer");
  Tokenizer tok(lm.tokenizer_path);
  EvalSpec spec = EvalSpec::from(cfg);
  spec.rerank = inv.get("rerank", "none");
  std::optional<LoadedModel> dm;
  std::optional<Tokenizer> dtok;
  if (inv.has("codex-d")) {
    if (spec.rerank != "back-translation") throw UsageError("--codex-d: only used with --rerank back-translation");
    dm.emplace(load_model(inv.get("codex-d"), pick_device(cfg.run)));
    if (dm->tokenizer_path.empty()) throw UsageError(dm->dir + ": checkpoint has no tokenizer (--codex-d)");
    dtok.emplace(dm->tokenizer_path);
    spec.codex_d = &dm->model;
    spec.codex_d_tok = &*dtok;
  }
  const fs::path ck(lm.dir);
  const fs::path run_dir = ck.parent_path().filename() == "checkpoints" ? ck.parent_path().parent_path() : ck;
  std::string stem = fs::path(problems_path).filename().string();
  stem = stem.substr(0, stem.find('.'));
  spec.out_dir = inv.has("out") ? inv.get("out") : (run_dir / "eval" / stem).string();
  std::ostringstream tag;
  tag << ck.filename().string() << "_t" << spec.temperature << "_n" << spec.n;
  spec.tag = tag.str();
  json r = evaluate_problems(lm.model, tok, problems, sandbox, spec, cfg);
  spdlog::info("eval problems: {} problems x {} samples; files in {}", problems.size(), spec.n, spec.out_dir);
  r.erase("samples");
  r.erase("problems");
  r.erase("n");
  r.erase("skipped_k");  // said on stderr and kept in the pass@k file; stdout holds the figures
  std::cout << r.dump() << std::endl;
  return 0;
}

int run_score(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const std::string input = inv.require("input");
  auto items = read_prompt_completions(input);
  LoadedModel lm = load_model(inv.require("checkpoint"), pick_device(cfg.run));
  if (lm.tokenizer_path.empty()) throw UsageError(lm.dir + ": checkpoint has no tokenizer");
  Tokenizer tok(lm.tokenizer_path);
  for (auto& s : score_completions(lm.model, tok, items))
    std::cout << json{{"logprob", s.logprob}, {"tokens", s.tokens},
                      {"mean_logprob", s.tokens > 0 ? s.logprob / static_cast<double>(s.tokens) : 0.0}}.dump() << "\n";
  std::cout.flush();
  return 0;
}

cli::Registrar eval_reg(
    {"eval", "problems", "pass@k of a checkpoint on any problems file (+ reranking): ONE JSON line",
     {{"checkpoint", true, "checkpoint folder or run dir"},
      {"problems", true, "problems JSONL(.gz)"},
      {"n", true, "samples per problem", "eval.n"},
      {"temperature", true, "sampling temperature", "eval.temperature"},
      {"top-p", true, "nucleus mass", "eval.top_p"},
      {"max-new-tokens", true, "completion length limit", "eval.max_new_tokens"},
      {"k", true, "pass@k values, e.g. 1,10", "eval.k"},
      {"limit", true, "only the first N problems", "eval.limit"},
      {"timeout", true, "seconds per program", "eval.timeout"},
      {"workers", true, "sandboxes in parallel (0 = cores)", "eval.workers"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      {"seed", true, "sample i of problem p uses seed + p*n + i", "run.seed"},
      {"rerank", true, "none | mean-logprob | sum-logprob | back-translation: pick one of the n samples, report rerank@1"},
      {"codex-d", true, "Codex-D checkpoint (sft.task=docstring) for --rerank back-translation"},
      {"out", true, "output folder (default <run>/eval/<problems file stem>)"}},
     false, run_eval_problems});
cli::Registrar score_reg({"score", "", "log-probs of completions: one JSON line {logprob, tokens, mean_logprob} per input",
                          {{"checkpoint", true, "checkpoint folder or run dir"},
                           {"input", true, "JSONL with prompt, completion"}},
                          false, run_score});

}  // namespace
}  // namespace codex
