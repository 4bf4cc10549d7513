#include "eval/sampling.h"

#include <optional>

#include "util/log.h"

namespace codex {

std::vector<Sample> sample_problems(GPT& model, const Tokenizer& tok, const std::vector<Problem>& problems,
                                    int64_t n, const GenerateConfig& g, const ProblemSampling& s) {
  SamplingOptions opt = SamplingOptions::from(g, s.seed);
  opt.temperature = s.temperature;
  opt.top_p = s.top_p;
  opt.max_new_tokens = s.max_new_tokens;
  std::vector<std::string> prompts;
  for (size_t p = 0; p < problems.size(); ++p) {
    prompts.push_back(problems[p].prompt);
    opt.prompt_seeds.push_back(s.seed + p * static_cast<uint64_t>(n));
  }
  std::optional<Progress> progress;
  if (s.progress) {
    progress.emplace("sampling", static_cast<double>(problems.size() * n), "samples");
    opt.on_progress = [&](size_t done, size_t) { progress->update(static_cast<double>(done)); };
  }
  auto samples = generate(model, tok, prompts, n, opt);
  if (progress) progress->finish();
  return samples;
}

}  // namespace codex
