#pragma once
// Batched sampling from a causal LM with a KV cache.
//
// Prompts of different lengths are left-padded into one batch; the attention mask hides the
// padding and positions count real tokens only, so a padded row computes what it would alone.
// Every sample owns its RNG (seed + sample index), so what it draws does not depend on which
// other samples share its batch.
//
// Two layers: generate_tokens() works on token ids against any LogitsFn + TokenTable (tests use
// hand-made models and vocabularies); generate() is the GPT + Tokenizer convenience the trainers
// and commands call.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"

namespace codex {

class Tokenizer;

// The vocabulary as the sampler sees it: the exact bytes each token decodes to (so the text of a
// sample is the concatenation of its tokens' bytes) and the special ids.
struct TokenTable {
  std::vector<std::string> bytes;  // bytes[id]; "" for control tokens
  int64_t eot_id = -1;             // ends a sample; -1 = none
  int64_t pad_id = 0;              // fills left padding; never sampled
  static TokenTable from(const Tokenizer& tok);
  int64_t size() const { return static_cast<int64_t>(bytes.size()); }
};

struct SamplingOptions {
  double temperature = 0.8;  // 0 = greedy
  double top_p = 1.0;        // nucleus: keep the smallest set of tokens with mass >= top_p
  int64_t top_k = 0;         // 0 = off
  int64_t max_new_tokens = 128;
  std::vector<std::string> stop;        // the completion is cut before the first occurrence
  std::vector<std::string> disallowed;  // never emitted (masked at sampling)
  bool kv_cache = true;
  int64_t batch_size = 16;   // rows decoded together
  uint64_t seed = 0;         // sample i of a prompt draws from seed + i
  // Optional, one per prompt: sample i of prompt p draws from prompt_seeds[p] + i instead (eval
  // gives every problem its own seeds while still batching problems together).
  std::vector<uint64_t> prompt_seeds;
  // Optional: called after each decoded batch with (samples done, samples total).
  std::function<void(size_t, size_t)> on_progress;
  static SamplingOptions from(const GenerateConfig& g, uint64_t seed);
};

struct Sample {
  int64_t prompt_index = 0;  // which prompt of the request
  int64_t sample_index = 0;  // i in 0..n-1 (its RNG seed is seed + i)
  std::string text;          // the completion, cut before the first stop sequence
  // Every sampled token, including the one that ended the sample (end-of-text, or the token that
  // completed a stop sequence), with its log-probability under the unmodified model distribution
  // (temperature 1, no top-k/top-p/disallowed masking): what PPO and mean-log-prob ranking need.
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string finish_reason;  // "stop" | "eot" | "length" | "disallowed" (nothing allowed left)
  double mean_logprob() const;
};

// The model as generation sees it. idx (B, T) int64 new tokens on the model's device; cache: read
// and extended when non-null (else idx is the whole sequence); pos_offset: index of idx[:, 0] in
// the (padded) sequence; attn_mask (B, T_total) bool, false = left padding. Returns the logits of
// the LAST position only, (B, V) float.
using LogitsFn = std::function<torch::Tensor(const torch::Tensor& idx, KVCache* cache,
                                             int64_t pos_offset, const torch::Tensor& attn_mask)>;
LogitsFn gpt_logits_fn(GPT& model);

// n samples for every prompt (token ids). Results ordered by (prompt, sample). block_size bounds
// prompt + completion: longer prompts keep their last tokens (with a warning). Tensors passed
// to `lm` live on `device`.
std::vector<Sample> generate_tokens(const LogitsFn& lm, const TokenTable& vocab,
                                    const std::vector<std::vector<int32_t>>& prompts, int64_t n,
                                    const SamplingOptions& opt, int64_t block_size,
                                    torch::Device device = torch::kCPU);

// Text in, text out, on a GPT (eval mode, no grad, on the model's device).
std::vector<Sample> generate(GPT& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                             int64_t n, const SamplingOptions& opt);

// ---- pieces exposed for tests and for the PPO safety penalty ----

// Temperature, then top-k, then top-p on logits (B, V): filtered entries become -inf. At least one
// token per row survives (the most likely one that was finite).
torch::Tensor filter_logits(const torch::Tensor& logits, double temperature, int64_t top_k, double top_p);

// True when appending `piece` to `text` creates an occurrence of one of `disallowed` that did not
// exist in `text` (one that ends inside `piece`).
bool creates_disallowed(const std::string& text, const std::string& piece,
                        const std::vector<std::string>& disallowed);
// Byte offset of the first occurrence of any of `strings` in `text`, or npos.
size_t find_first_of_strings(const std::string& text, const std::vector<std::string>& strings);

// Vectorised creates_disallowed over a whole vocabulary: which tokens may follow `text`.
class DisallowedFilter {
 public:
  DisallowedFilter(const TokenTable& vocab, std::vector<std::string> disallowed);
  bool active() const { return !disallowed_.empty(); }
  // (V) bool, true = token allowed after `text`.
  torch::Tensor allowed(const std::string& text) const;

 private:
  const TokenTable& vocab_;
  std::vector<std::string> disallowed_;
  std::vector<uint8_t> always_bad_;  // the token's own bytes contain a disallowed string
  std::vector<int32_t> by_bytes_;    // token ids sorted by their bytes (prefix look-ups)
};

}  // namespace codex
