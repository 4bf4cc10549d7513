#include "train/sequences.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "data/jsonl.h"
#include "tokenizer/tokenizer.h"

namespace codex {

Sequence make_sequence(const Tokenizer& tok, const std::string& prompt, const std::string& completion) {
  Sequence s;
  s.prompt = tok.encode(prompt);
  s.completion = tok.encode(completion);
  s.completion.push_back(tok.eot_id());
  return s;
}

SeqBatch make_batch(const std::vector<const Sequence*>& rows, int64_t block, bool mask_prompt, int64_t pad_id) {
  TORCH_CHECK(!rows.empty(), "make_batch: no rows");
  SeqBatch b;
  // Each row: the tokens kept (prompt part, completion part) after truncation.
  std::vector<std::vector<int32_t>> toks(rows.size());
  std::vector<size_t> n_prompt(rows.size());
  size_t width = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& p = rows[i]->prompt;
    const auto& c = rows[i]->completion;
    const size_t limit = static_cast<size_t>(block) + 1;
    size_t keep_p = p.size(), keep_c = c.size();
    if (keep_p + keep_c > limit) {
      ++b.truncated;
      if (keep_c >= limit) {  // the completion alone does not fit: keep one prompt token if any
        keep_p = std::min<size_t>(keep_p, 1);
        keep_c = limit - keep_p;
      } else {
        keep_p = limit - keep_c;
      }
    }
    toks[i].assign(p.end() - static_cast<std::ptrdiff_t>(keep_p), p.end());
    toks[i].insert(toks[i].end(), c.begin(), c.begin() + static_cast<std::ptrdiff_t>(keep_c));
    n_prompt[i] = keep_p;
    width = std::max(width, toks[i].size() - 1);
  }
  TORCH_CHECK(width >= 1, "make_batch: every row is shorter than 2 tokens");
  const int64_t B = static_cast<int64_t>(rows.size()), W = static_cast<int64_t>(width);
  b.input = torch::full({B, W}, pad_id, torch::kLong);
  b.targets = torch::full({B, W}, -100, torch::kLong);
  b.mask = torch::zeros({B, W}, torch::kBool);
  b.last = torch::zeros({B}, torch::kLong);
  auto in = b.input.accessor<int64_t, 2>();
  auto tg = b.targets.accessor<int64_t, 2>();
  auto mk = b.mask.accessor<bool, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& t = toks[i];
    const int64_t n = static_cast<int64_t>(t.size()) - 1;  // input length of this row (>= 0)
    const int64_t off = W - n;                               // left padding
    for (int64_t j = 0; j < n; ++j) {
      in[i][off + j] = t[j];
      mk[i][off + j] = true;
      // target t[j + 1]; it is a completion token when j + 1 >= n_prompt
      const bool completion = static_cast<size_t>(j + 1) >= n_prompt[i];
      if (completion || !mask_prompt) {
        tg[i][off + j] = t[j + 1];
        if (completion) ++b.completion_tokens;
      }
    }
    b.last[i] = W - 1;
    b.real_tokens += n;
  }
  b.padded_tokens = B * W - b.real_tokens;
  return b;
}

ScoreBatch make_score_batch(const std::vector<const Sequence*>& rows, int64_t block, int64_t pad_id) {
  TORCH_CHECK(!rows.empty(), "make_score_batch: no rows");
  ScoreBatch b;
  std::vector<std::vector<int32_t>> toks(rows.size());
  size_t width = 1;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& t = toks[i];
    t = rows[i]->prompt;
    t.insert(t.end(), rows[i]->completion.begin(), rows[i]->completion.end());
    if (t.size() > static_cast<size_t>(block)) {  // keep the end: the completion and its eot
      t.erase(t.begin(), t.end() - block);
      ++b.truncated;
    }
    width = std::max(width, t.size());
  }
  const int64_t B = static_cast<int64_t>(rows.size()), W = static_cast<int64_t>(width);
  b.input = torch::full({B, W}, pad_id, torch::kLong);
  b.mask = torch::zeros({B, W}, torch::kBool);
  auto in = b.input.accessor<int64_t, 2>();
  auto mk = b.mask.accessor<bool, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const auto& t = toks[i];
    const int64_t off = W - static_cast<int64_t>(t.size());
    for (size_t j = 0; j < t.size(); ++j) {
      in[i][off + static_cast<int64_t>(j)] = t[j];
      mk[i][off + static_cast<int64_t>(j)] = true;
    }
  }
  return b;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, uint64_t salt) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  std::mt19937_64 rng(seed + salt + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[rng() % static_cast<uint64_t>(i + 1)]);
  return v;
}

StepOrder::StepOrder(std::vector<int64_t> lengths, uint64_t seed, int64_t per_step, bool length_buckets)
    : lengths_(std::move(lengths)), seed_(seed), per_step_(per_step), buckets_(length_buckets) {
  TORCH_CHECK(!lengths_.empty() && per_step_ >= 1, "StepOrder: no examples or per_step < 1");
}

const std::vector<int64_t>& StepOrder::epoch(int64_t e) {
  if (e == cached_epoch_) return cached_;
  const int64_t n = static_cast<int64_t>(lengths_.size());
  cached_ = epoch_order(n, seed_, e);
  cached_epoch_ = e;
  if (!buckets_) return cached_;
  // Step boundaries inside this pass: local positions q with (e * n + q) % per_step == 0.
  const int64_t head = (per_step_ - (e * n) % per_step_) % per_step_;  // completes the previous pass's last step
  const int64_t window = kBucketWindow * per_step_;
  for (int64_t lo = std::min(head, n), w = 0; lo < n; lo += window, ++w) {
    const int64_t hi = std::min(n, lo + window);
    auto first = cached_.begin() + lo, last = cached_.begin() + hi;
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return lengths_[a] < lengths_[b]; });
    // Shuffle the full groups of the window; a partial group (only at the end of the pass) stays last.
    const int64_t groups = (hi - lo) / per_step_;
    std::vector<int64_t> perm = epoch_order(groups, seed_ ^ 0x5BD1E995ULL, e, static_cast<uint64_t>(w) * 0x2545F491ULL + 1);
    std::vector<int64_t> shuffled;
    shuffled.reserve(static_cast<size_t>(hi - lo));
    for (int64_t g : perm) shuffled.insert(shuffled.end(), first + g * per_step_, first + (g + 1) * per_step_);
    shuffled.insert(shuffled.end(), first + groups * per_step_, last);
    std::copy(shuffled.begin(), shuffled.end(), first);
  }
  return cached_;
}

std::vector<int64_t> StepOrder::step(int64_t step) {
  const int64_t n = static_cast<int64_t>(lengths_.size());
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(per_step_));
  for (int64_t p = (step - 1) * per_step_; p < step * per_step_; ++p) out.push_back(epoch(p / n)[p % n]);
  return out;
}

int64_t batch_length(const Sequence& s, int64_t block) {
  return std::min<int64_t>(static_cast<int64_t>(s.prompt.size() + s.completion.size()), block + 1);
}

std::vector<bool> held_out(size_t n, double fraction, uint64_t seed) {
  std::vector<bool> out(n, false);
  if (fraction <= 0 || n < 10) return out;
  auto order = epoch_order(static_cast<int64_t>(n), seed, -1, 0xA5A5A5A5ULL);
  const size_t k = std::max<size_t>(1, static_cast<size_t>(std::llround(fraction * static_cast<double>(n))));
  for (size_t i = 0; i < k && i < n; ++i) out[static_cast<size_t>(order[i])] = true;
  return out;
}

std::vector<std::pair<std::string, std::string>> read_prompt_completions(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> items;
  for_each_jsonl(path, [&](int64_t line, const nlohmann::json& j) {
    items.emplace_back(jsonl_string(j, "prompt", path, line),
                       j.contains("completion") ? jsonl_string(j, "completion", path, line)
                                                : jsonl_string(j, "response", path, line));
  }, "inputs");
  return items;
}

torch::Tensor masked_row_sum(const torch::Tensor& values, const torch::Tensor& targets) {
  return (values * (targets != -100).to(values.dtype())).sum(1);
}

}  // namespace codex
