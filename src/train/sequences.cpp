#include "train/sequences.h"

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
