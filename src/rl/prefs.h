#pragma once
// Preference pairs from execution: how a user without human labellers gets reward-model data for
// code. Sample n completions per problem, run each against the problem's tests in the sandbox,
// rank outcomes (passes > wrong answer > raises / times out > does not parse) and pair better
// with worse completions of the same prompt.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "eval/humaneval.h"
#include "model/gpt.h"
#include "rl/rewards.h"

namespace codex {

class Tokenizer;
struct Preference;

// The pairs of one problem from graded samples: every (i, j) with outcome_i better than outcome_j
// and different texts, ordered by (outcome_i, -outcome_j, i, j), at most max_pairs. Deterministic.
std::vector<std::pair<size_t, size_t>> pair_by_outcome(const std::vector<rl::Outcome>& outcomes,
                                                       const std::vector<std::string>& texts, int64_t max_pairs);

// Samples, grades and pairs; writes `out_path` (preferences JSONL, atomically) and returns counts
// {"problems", "samples", "passed", "wrong", "error", "syntax", "pairs", "problems_with_pairs"}.
nlohmann::json prefs_from_execution(GPT& model, const Tokenizer& tok, const std::vector<eval::Problem>& problems,
                                    const eval::Sandbox& sandbox, int64_t n, int64_t max_pairs, double temperature,
                                    int64_t max_new_tokens, uint64_t seed, const Config& cfg,
                                    const std::string& out_path);

}  // namespace codex
