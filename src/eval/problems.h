#pragma once
// Problems from code (docs/problems.md): `data problems` (functions with docstrings and their
// doctests, from a corpus) and `data trace` (calls recorded while a project's tests run). Both
// parse and run the untrusted code only inside the sandbox (src/eval/sandbox.h), through the
// Python programs src/data/problems_extract.py, trace_run.py and trace_hook.py.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "data/jsonl.h"
#include "eval/sandbox.h"

namespace codex {

// A function found by the extractor, before its test is built.
struct FunctionCandidate {
  Problem problem;                                        // test still empty
  std::vector<std::pair<std::string, std::string>> steps;  // ("setup" | "assert", code)
  std::string file, name;                                 // source file, qualified name
  int64_t lineno = 0, first_lineno = 0;                   // def line; first decorator line
};

// Word tokens for decontamination: maximal runs of [A-Za-z0-9_]; punctuation and whitespace
// separate tokens and are otherwise ignored.
std::vector<std::string> word_tokens(const std::string& text);

// Hashes of every n-gram of word tokens of a set of texts.
class NgramIndex {
 public:
  explicit NgramIndex(int64_t n) : n_(n) {}
  void add(const std::string& text);
  bool overlaps(const std::string& text) const;  // shares at least one n-gram
  size_t size() const { return grams_.size(); }

 private:
  std::vector<uint64_t> hashes(const std::string& text) const;
  int64_t n_;
  std::unordered_set<uint64_t> grams_;
};

// The n-gram index of the eval sets' prompts and canonical solutions (problems.eval_sets).
NgramIndex eval_set_index(const std::vector<std::string>& eval_sets, int64_t n);

// Sandbox options for these commands: eval.sandbox / eval.workers, problems.timeout, room for
// large outputs.
eval::SandboxOptions problems_sandbox_options(const Config& cfg);

// Runs the extractor on each (source name, text) in the sandbox. Adds to stats["dropped"] one
// count per reason a function was not taken, stats["files"] counts per file outcome, and the
// doctest example counts to stats["doctest"].
std::vector<FunctionCandidate> extract_candidates(const std::vector<std::pair<std::string, std::string>>& files,
                                                  const eval::Sandbox& sandbox, bool require_docstring,
                                                  nlohmann::ordered_json& stats);

// Turns each candidate's steps into its test: every step is replayed twice (two fresh namespaces)
// in the sandbox against the canonical solution; failing steps are dropped, then asserts beyond
// max_tests; the assembled check(candidate) must then pass twice as a whole program. Candidates
// that end with a test get origin `tested_origin`, the others `untested_origin` (or are
// removed when that is ""). Counts go to stats["tests"].
void build_tests(std::vector<FunctionCandidate>& cands, const eval::Sandbox& sandbox, int64_t max_tests,
                 const std::string& tested_origin, const std::string& untested_origin,
                 nlohmann::ordered_json& stats);

// Keeps the first of exact duplicates (same prompt and solution) and drops those sharing an
// n-gram with `index`; counts as stats["dropped"]["duplicate" | "contaminated"].
void dedupe_and_decontaminate(std::vector<FunctionCandidate>& cands, const NgramIndex& index,
                              nlohmann::ordered_json& stats);

// `data problems`: writes <run.dir>/problems.jsonl and problems_stats.json; returns the stats.
nlohmann::ordered_json make_problems(const Config& cfg);

// `data trace`: runs `command` in `package` under the call recorder; writes <run.dir>/traced.jsonl
// and traced_stats.json; returns the stats. Empty package / command: the embedded default
// (doctests of some standard-library modules, kDefaultTrace*).
nlohmann::ordered_json trace_problems(const Config& cfg, std::string package, std::string command);
extern const char* const kDefaultTracePackage;
extern const char* const kDefaultTraceCommand;

// A Python string literal holding `s` (JSON string syntax is valid Python; invalid UTF-8 replaced).
std::string python_string_literal(const std::string& s);

// The JSON values of a sandboxed program's stdout, one per line (empty and unparsable lines skipped).
std::vector<nlohmann::json> json_lines(const std::string& text);

}  // namespace codex
