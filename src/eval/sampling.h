#pragma once
// The one "n completions per problem" sampler that evaluation (`eval problems`, `eval humaneval`,
// the round trip), `data filter` and `prefs from-execution` share: every problem's prompt, n
// samples each, sample i of problem p drawing from seed + p*n + i, so what a problem gets does not
// depend on which other problems share the request.
#include <cstdint>
#include <vector>

#include "config/config.h"
#include "data/jsonl.h"
#include "generate/generate.h"

namespace codex {

class Tokenizer;

struct ProblemSampling {
  double temperature = 0.8, top_p = 1.0;
  int64_t max_new_tokens = 128;
  uint64_t seed = 0;
  bool progress = false;  // a "sampling" progress line on stderr while it runs
};

// generate() over the problems' prompts with generate.* from `g` (stop sequences, batch, cache)
// and the temperature, top-p, length and seeds of `s`. Results ordered by (problem, sample).
std::vector<Sample> sample_problems(GPT& model, const Tokenizer& tok, const std::vector<Problem>& problems,
                                    int64_t n, const GenerateConfig& g, const ProblemSampling& s);

}  // namespace codex
