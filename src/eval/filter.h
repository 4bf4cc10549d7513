#pragma once
// Filtering problems by sampling (`data filter`, the Codex paper's Codex-S curation): sample n
// completions per problem, run them in the sandbox, drop problems no sample solves; re-run each
// passing sample `repeat` more times and drop problems whose results change; drop problems whose
// own canonical solution fails its test (checked first, twice) and problems without a test.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/jsonl.h"
#include "eval/sandbox.h"

namespace codex {

// completions[p] = the n completions sampled for problems[p]. Injectable: `data filter` samples
// from a checkpoint (or reads a samples file); tests script it.
using ProblemSampler =
    std::function<std::vector<std::vector<std::string>>(const std::vector<Problem>& problems, int64_t n)>;

struct FilterOptions {
  int64_t n = 100;     // samples per problem
  int64_t repeat = 2;  // extra runs of every passing sample
};

// Returns the kept problems (input order) and fills `stats`: in, kept, dropped{no_test,
// canonical_fails, unsolved, flaky}, samples, samples_passed, n, repeat.
std::vector<Problem> filter_problems(const std::vector<Problem>& problems, const ProblemSampler& sample,
                                     const eval::Sandbox& sandbox, const FilterOptions& opt,
                                     nlohmann::ordered_json& stats);

}  // namespace codex
