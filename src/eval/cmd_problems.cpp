// `data problems` and `data trace` (src/data/problems.h, docs/problems.md).
#include <iostream>

#include "cli/registry.h"
#include "eval/problems.h"

namespace codex {
namespace {

int run_problems(cli::Invocation& inv) {
  auto stats = make_problems(inv.config());
  nlohmann::ordered_json line = {{"kept", stats["kept"]}, {"origin", stats["origin"]}, {"dropped", stats["dropped"]}};
  std::cout << line.dump() << std::endl;
  return 0;
}

int run_trace(cli::Invocation& inv) {
  auto stats = trace_problems(inv.config(), inv.get("package"), inv.get("command"));
  nlohmann::ordered_json line = {{"kept", stats["kept"]}, {"calls", stats["calls"]}, {"tests", stats["tests"]}};
  std::cout << line.dump() << std::endl;
  return 0;
}

cli::Registrar problems_cmd(
    {"data", "problems",
     "functions with docstrings (+ doctests as tests) from a corpus -> <run.dir>/problems.jsonl + problems_stats.json",
     {{"input", true, "corpus path (dir, .py, .jsonl[.gz]); default data.input", "problems.input", true},
      {"eval-set", true, "problems file to decontaminate against (replaces problems.eval_sets)", "problems.eval_sets", true},
      {"max-tests", true, "assertions kept per problem", "problems.max_tests"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      cli::kForceFlag},
     false,
     run_problems,
     {"problems.", "run.dir", "run.seed", "eval.", "overwrite"}});

cli::Registrar trace_cmd(
    {"data", "trace",
     "run a project's tests under a call recorder; calls become tests -> <run.dir>/traced.jsonl + traced_stats.json",
     {{"package", true, "the project folder (the command runs there); default: /usr/lib/python3.11"},
      {"command", true, "its test command, e.g. \"python3 -m unittest\"; default: doctests of some stdlib modules"},
      {"max-tests", true, "assertions (distinct calls) kept per function", "problems.max_tests"},
      {"eval-set", true, "problems file to decontaminate against (replaces problems.eval_sets)", "problems.eval_sets", true},
      {"timeout", true, "seconds the command may run", "problems.trace_timeout"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      cli::kForceFlag},
     false,
     run_trace,
     {"problems.", "run.dir", "eval.", "overwrite"}});

}  // namespace
}  // namespace codex
