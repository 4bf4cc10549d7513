#pragma once
// Prompt/completion sequences as every fine-tuning trainer and scorer sees them: token ids, an
// end-of-text token after every completion, left padding (so completions start in the same
// column and generation/scoring/training share one layout), targets masked to -100 where no loss
// is taken, positions counting real tokens only (GPT::hidden with the attention mask).
#include <torch/torch.h>

#include <string>
#include <vector>

namespace codex {

class Tokenizer;

struct Sequence {
  std::vector<int32_t> prompt;      // may be empty
  std::vector<int32_t> completion;  // ends with the end-of-text token
};

// Tokenizes prompt and completion separately (the boundary is exact) and appends eot.
Sequence make_sequence(const Tokenizer& tok, const std::string& prompt, const std::string& completion);

struct SeqBatch {
  torch::Tensor input;    // (B, W) int64: left padding (pad id), then prompt + completion minus its last token
  torch::Tensor targets;  // (B, W) int64: next token where a loss is taken, else -100
  torch::Tensor mask;     // (B, W) bool: false on padding
  torch::Tensor last;     // (B) int64: column of each row's last real input token (its eot is predicted there)
  int64_t truncated = 0;  // rows that had to be cut to fit the block
  int64_t completion_tokens = 0, real_tokens = 0, padded_tokens = 0;
};

// Builds a batch. A sequence longer than block + 1 tokens loses tokens from the LEFT of its prompt
// (then, if still too long, the end of its completion). mask_prompt: targets only on completion
// tokens (the eot included); else on every real token after the first.
SeqBatch make_batch(const std::vector<const Sequence*>& rows, int64_t block, bool mask_prompt, int64_t pad_id);

// Whole sequences (prompt + completion with its eot) left-padded for scoring with a scalar head:
// input (B, W) with each row's LAST real token (the eot) in column W - 1, mask false on padding.
// Too-long rows lose tokens from the left of the prompt (`truncated` counts them).
struct ScoreBatch {
  torch::Tensor input, mask;
  int64_t truncated = 0;
};
ScoreBatch make_score_batch(const std::vector<const Sequence*>& rows, int64_t block, int64_t pad_id);

// Deterministic order of pass `epoch` over n examples: Fisher-Yates driven by mt19937_64 seeded
// from (seed, epoch, salt) — portable, unlike std::shuffle. Example p of the stream of passes is
// epoch_order(n, seed, p / n)[p % n], so a trainer's position is a function of its step.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, uint64_t salt = 0);
// The examples of each step of a trainer that takes `per_step` examples a step from passes over
// n examples (position p of the stream is example order(p / n)[p % n]; step s, 1-based, takes
// positions [(s - 1) * per_step, s * per_step)). Plain: order(e) = epoch_order(n, seed, e).
// Bucketed (length_buckets): epoch_order's shuffle is cut into windows of kBucketWindow steps'
// worth of examples, each window is sorted by length (stable: ties keep the shuffled order) and
// cut into per_step groups aligned with the step boundaries of the stream (also when n is not a
// multiple of per_step), and the groups of a window are shuffled (seeded from seed, epoch,
// window). A step then holds examples of similar lengths: little padding, and every example is
// still seen once per pass. A pure function of (lengths, seed, step): resume is bit-exact.
class StepOrder {
 public:
  static constexpr int64_t kBucketWindow = 16;  // steps per bucketing window
  StepOrder(std::vector<int64_t> lengths, uint64_t seed, int64_t per_step, bool length_buckets);
  std::vector<int64_t> step(int64_t step);  // example indices of step `step` (1-based)
  const std::vector<int64_t>& epoch(int64_t e);  // order of pass e

 private:
  std::vector<int64_t> lengths_;
  uint64_t seed_;
  int64_t per_step_;
  bool buckets_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> cached_;
};
// A sequence's length in a batch of block `block`: prompt + completion, at most block + 1.
int64_t batch_length(const Sequence& s, int64_t block);
// A deterministic held-out split: true for round(fraction * n) examples (at least 1) chosen by a
// seeded permutation; all false when fraction is 0 or n < 10.
std::vector<bool> held_out(size_t n, double fraction, uint64_t seed);
// Moves the held_out() share of `items` (only when there are at least 10) into the returned
// validation list; the rest stay in `items`, in order.
template <class T>
std::vector<T> split_off_val(std::vector<T>& items, double fraction, uint64_t seed) {
  std::vector<T> val, kept;
  if (fraction <= 0 || items.size() < 10) return val;
  const auto is_val = held_out(items.size(), fraction, seed);
  for (size_t i = 0; i < items.size(); ++i) (is_val[i] ? val : kept).push_back(std::move(items[i]));
  items = std::move(kept);
  return val;
}
// {prompt, completion | response} lines of a JSONL file (score inputs, reward score inputs).
std::vector<std::pair<std::string, std::string>> read_prompt_completions(const std::string& path);

// Sum and count over the unmasked targets of per-token values (B, W) (e.g. log-probs): (B) each.
torch::Tensor masked_row_sum(const torch::Tensor& values, const torch::Tensor& targets);

}  // namespace codex
