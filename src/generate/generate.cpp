#include "generate/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace codex {

// ---------------------------------------------------------------- options, vocabulary, samples

TokenTable TokenTable::from(const Tokenizer& tok) {
  TokenTable t;
  t.bytes.resize(static_cast<size_t>(tok.vocab_size()));
  for (int64_t i = 0; i < tok.vocab_size(); ++i) t.bytes[i] = tok.token_bytes(static_cast<int32_t>(i));
  t.eot_id = tok.eot_id();
  t.pad_id = tok.pad_id();
  return t;
}

SamplingOptions SamplingOptions::from(const GenerateConfig& g, uint64_t seed) {
  SamplingOptions o;
  o.temperature = g.temperature;
  o.top_p = g.top_p;
  o.top_k = g.top_k;
  o.max_new_tokens = g.max_new_tokens;
  o.stop = g.stop;
  o.disallowed = g.disallowed;
  o.kv_cache = g.kv_cache;
  o.batch_size = g.batch_size;
  o.seed = seed;
  return o;
}

double Sample::mean_logprob() const {
  if (logprobs.empty()) return 0.0;
  double s = 0;
  for (float v : logprobs) s += v;
  return s / static_cast<double>(logprobs.size());
}

// ---------------------------------------------------------------- filtering

torch::Tensor filter_logits(const torch::Tensor& logits, double temperature, int64_t top_k, double top_p) {
  TORCH_CHECK(logits.dim() == 2, "filter_logits: expected (B, V) logits, got ", logits.sizes());
  const double ninf = -std::numeric_limits<double>::infinity();
  auto x = logits.to(torch::kFloat);
  if (temperature > 0 && temperature != 1.0) x = x / temperature;  // x / 1 == x: no pass over (B, V)
  const int64_t V = x.size(1);
  bool use_k = top_k > 0 && top_k < V, use_p = top_p < 1.0;
  if (!use_k && !use_p) return x;
  auto [sorted, order] = x.sort(/*dim=*/1, /*descending=*/true);  // (B, V) each
  auto keep = torch::ones_like(sorted, torch::kBool);
  if (use_k) {
    keep.slice(1, top_k).fill_(false);
    sorted = sorted.masked_fill(keep.logical_not(), ninf);  // top-p renormalises over the top k
  }
  if (use_p) {
    auto probs = torch::softmax(sorted, 1);
    auto mass_before = probs.cumsum(1) - probs;  // mass of the strictly more likely tokens
    keep = keep.logical_and(mass_before < top_p);
  }
  keep.select(1, 0).fill_(true);
  auto keep_vocab = torch::zeros_like(keep).scatter(1, order, keep);
  return x.masked_fill(keep_vocab.logical_not(), ninf);
}

// ---------------------------------------------------------------- disallowed strings and stops

namespace {

std::vector<std::string> non_empty(std::vector<std::string> v) {
  v.erase(std::remove(v.begin(), v.end(), std::string()), v.end());
  return v;
}

size_t max_length(const std::vector<std::string>& v) {
  size_t m = 0;
  for (auto& s : v) m = std::max(m, s.size());
  return m;
}

bool has_suffix(const std::string& s, const char* suf, size_t n) {
  return s.size() >= n && s.compare(s.size() - n, n, suf, n) == 0;
}

}  // namespace

bool creates_disallowed(const std::string& text, const std::string& piece,
                        const std::vector<std::string>& disallowed) {
  for (const auto& d : disallowed) {
    if (d.empty()) continue;
    // Only the last |d|-1 bytes of text can take part in an occurrence ending inside piece.
    size_t tail = std::min(text.size(), d.size() - 1);
    std::string s = text.substr(text.size() - tail) + piece;
    for (size_t p = s.find(d); p != std::string::npos; p = s.find(d, p + 1))
      if (p + d.size() > tail) return true;
  }
  return false;
}

size_t find_first_of_strings(const std::string& text, const std::vector<std::string>& strings) {
  size_t best = std::string::npos;
  for (const auto& s : strings) {
    if (s.empty()) continue;
    size_t p = text.find(s);
    if (p < best) best = p;
  }
  return best;
}

DisallowedFilter::DisallowedFilter(const TokenTable& vocab, std::vector<std::string> disallowed)
    : vocab_(vocab), disallowed_(non_empty(std::move(disallowed))) {
  const size_t V = vocab.bytes.size();
  always_bad_.assign(V, 0);
  by_bytes_.resize(V);
  for (size_t i = 0; i < V; ++i) {
    by_bytes_[i] = static_cast<int32_t>(i);
    for (auto& d : disallowed_)
      if (vocab.bytes[i].find(d) != std::string::npos) always_bad_[i] = 1;
  }
  std::sort(by_bytes_.begin(), by_bytes_.end(),
            [&](int32_t a, int32_t b) { return vocab.bytes[a] < vocab.bytes[b]; });
}

torch::Tensor DisallowedFilter::allowed(const std::string& text) const {
  const int64_t V = vocab_.size();
  auto ok = torch::ones({V}, torch::kBool);  // (V)
  auto* p = ok.data_ptr<bool>();
  for (int64_t i = 0; i < V; ++i)
    if (always_bad_[i]) p[i] = false;
  // An occurrence that starts in text: text ends with d[:j] and the token's bytes start with d[j:].
  for (const auto& d : disallowed_) {
    for (size_t j = 1; j < d.size(); ++j) {
      if (!has_suffix(text, d.data(), j)) continue;
      const std::string rest = d.substr(j);
      auto lo = std::lower_bound(by_bytes_.begin(), by_bytes_.end(), rest,
                                 [&](int32_t id, const std::string& r) { return vocab_.bytes[id] < r; });
      for (auto it = lo; it != by_bytes_.end() && vocab_.bytes[*it].compare(0, rest.size(), rest) == 0; ++it)
        p[*it] = false;
    }
  }
  return ok;
}

// ---------------------------------------------------------------- the model adapter

LogitsFn gpt_logits_fn(GPT& model) {
  return [model](const torch::Tensor& idx, KVCache* cache, int64_t pos_offset, const torch::Tensor& mask) mutable {
    // The shared trunk forward: with a mask, positions count each row's real tokens (left padding).
    TORCH_CHECK(mask.defined() || pos_offset == (cache ? cache->length() : 0), "gpt_logits_fn: pos_offset ",
                pos_offset, " without a mask must equal the cached length");
    auto h = model->hidden(idx, cache, mask);  // (B, T, C)
    auto last = h.narrow(1, h.size(1) - 1, 1);                   // (B, 1, C): only the next token matters
    return model->lm_logits(last).squeeze(1).to(torch::kFloat);  // (B, V)
  };
}

// ---------------------------------------------------------------- decoding

namespace {

struct Row {
  Sample out;
  std::vector<int32_t> prompt;  // after truncation to the context
  std::string context;          // prompt bytes + completion bytes (disallowed checks look at its tail)
  std::string completion;       // completion bytes so far (stop sequences are searched here only)
  at::Generator gen;
  bool done = false;
};

// One draw from a row's cumulative distribution cdf[0..V) (float64, non-decreasing) with the
// row's own generator: inverse CDF of a single uniform, so each step consumes exactly one random
// number whatever the batch looks like. The uniform is the one torch::rand({1}, gen, kDouble)
// returns (same distribution object on the same engine), read without building a tensor.
int64_t draw(const double* cdf, int64_t V, at::Generator& gen) {
  double r;
  {
    auto* impl = at::check_generator<at::CPUGeneratorImpl>(gen);
    std::lock_guard<std::mutex> lock(gen.mutex());
    at::uniform_real_distribution<double> uniform(0.0, 1.0);
    r = uniform(impl);
  }
  const double u = r * cdf[V - 1];
  // the number of entries <= u (cdf is non-decreasing: probabilities are >= 0)
  const int64_t i = std::upper_bound(cdf, cdf + V, u) - cdf;
  return std::min<int64_t>(i, V - 1);
}

// Tokens that are never sampled: padding (unless it is end of text, as for GPT-2), ids past the tokenizer's vocabulary (a model may pad
// its embedding table), and control tokens other than end-of-text (they decode to nothing).
torch::Tensor never_mask(const TokenTable& vocab, int64_t V) {
  auto never = torch::zeros({V}, torch::kBool);  // (V)
  auto* p = never.data_ptr<bool>();
  for (int64_t i = 0; i < V; ++i)
    p[i] = i >= vocab.size() || (i == vocab.pad_id && i != vocab.eot_id) || (i != vocab.eot_id && vocab.bytes[i].empty());
  return never;
}

void decode_batch(const LogitsFn& lm, const TokenTable& vocab, std::vector<Row*> rows,
                  const SamplingOptions& opt, int64_t block_size, torch::Device device,
                  const DisallowedFilter& filter, size_t max_stop) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t L = 0;  // padded prompt length
  for (auto* r : rows) L = std::max<int64_t>(L, static_cast<int64_t>(r->prompt.size()));
  const int64_t budget = std::min(opt.max_new_tokens, block_size - L);

  const int64_t pad_fill = vocab.pad_id >= 0 ? vocab.pad_id : 0;  // any id: padding is masked out
  auto seq = torch::full({B, L}, pad_fill, torch::kLong);       // (B, L) left-padded ids
  auto mask = torch::zeros({B, L}, torch::kBool);               // (B, L) true = real token
  for (int64_t b = 0; b < B; ++b) {
    const auto& pr = rows[b]->prompt;
    int64_t pad = L - static_cast<int64_t>(pr.size());
    for (size_t t = 0; t < pr.size(); ++t) seq[b][pad + t] = static_cast<int64_t>(pr[t]);
    mask[b].slice(0, pad).fill_(true);
  }
  auto model_mask = [&]() { return mask.all().item<bool>() ? torch::Tensor() : mask.to(device); };

  KVCache cache;
  KVCache* cp = opt.kv_cache ? &cache : nullptr;
  torch::Tensor logits;  // (B_alive, V) for the next position
  if (budget > 0) {
    // Samples of one prompt share its prefill: the distinct prompts of the batch go through the
    // model once, then their cache and next-token logits are copied to every sample's row.
    std::vector<int64_t> first_rows, src(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      int64_t u = 0;
      while (u < static_cast<int64_t>(first_rows.size()) &&
             rows[first_rows[u]]->out.prompt_index != rows[b]->out.prompt_index)
        ++u;
      if (u == static_cast<int64_t>(first_rows.size())) first_rows.push_back(b);
      src[b] = u;
    }
    if (cp && first_rows.size() < rows.size()) {
      auto uniq = torch::tensor(first_rows, torch::kLong);
      auto umask = mask.index_select(0, uniq);
      auto ulogits = lm(seq.index_select(0, uniq).to(device), cp, 0,
                        umask.all().item<bool>() ? torch::Tensor() : umask.to(device));
      auto expand = torch::tensor(src, torch::kLong).to(device);
      for (auto& k : cache.k) k = k.index_select(0, expand);
      for (auto& v : cache.v) v = v.index_select(0, expand);
      logits = ulogits.index_select(0, expand.to(ulogits.device()));
    } else {
      logits = lm(seq.to(device), cp, 0, model_mask());
    }
  }
  torch::Tensor never;

  for (int64_t step = 0; step < budget; ++step) {
    auto lg = logits.to(torch::kCPU, torch::kFloat);  // (B_alive, V)
    const int64_t V = lg.size(1);
    if (!never.defined()) never = never_mask(vocab, V);
    auto logp = torch::log_softmax(lg, 1);  // unmodified distribution, for the reported log-probs
    auto masked = lg.masked_fill(never, -std::numeric_limits<float>::infinity());
    if (filter.active()) {
      for (int64_t b = 0; b < masked.size(0); ++b) {
        auto ok = filter.allowed(rows[b]->context);
        if (ok.size(0) < V) ok = torch::cat({ok, torch::zeros({V - ok.size(0)}, torch::kBool)});
        masked[b].masked_fill_(ok.narrow(0, 0, V).logical_not(), -std::numeric_limits<float>::infinity());
      }
    }
    // The whole batch at once; the rows' loop below only reads plain arrays.
    auto finite = torch::isfinite(masked).any(1).contiguous();  // (B_alive) false = nothing left to sample
    torch::Tensor cdf, greedy;
    if (opt.temperature > 0)  // (B_alive, V) float64 cumulative sums, row by row
      cdf = torch::softmax(filter_logits(masked, opt.temperature, opt.top_k, opt.top_p), 1)
                .to(torch::kDouble)
                .cumsum(1)
                .contiguous();
    else
      greedy = masked.argmax(1).contiguous();  // (B_alive)
    const bool* finite_p = finite.data_ptr<bool>();

    std::vector<int64_t> next(rows.size(), pad_fill);
    for (size_t b = 0; b < rows.size(); ++b) {
      if (!finite_p[b]) continue;
      next[b] = opt.temperature > 0 ? draw(cdf.data_ptr<double>() + b * V, V, rows[b]->gen)
                                    : greedy.data_ptr<int64_t>()[b];
    }
    auto next_lp = logp.gather(1, torch::tensor(next, torch::kLong).unsqueeze(1)).squeeze(1).contiguous();
    const float* next_lp_p = next_lp.data_ptr<float>();
    for (size_t b = 0; b < rows.size(); ++b) {
      Row& r = *rows[b];
      if (!finite_p[b]) {
        r.done = true;
        r.out.finish_reason = "disallowed";
        continue;
      }
      const int64_t tok = next[b];
      r.out.tokens.push_back(static_cast<int32_t>(tok));
      r.out.logprobs.push_back(next_lp_p[b]);
      if (tok == vocab.eot_id) {
        r.done = true;
        r.out.finish_reason = "eot";
        continue;
      }
      const std::string& piece = vocab.bytes[tok];
      size_t from = r.completion.size() >= max_stop ? r.completion.size() - max_stop + 1 : 0;
      r.completion += piece;
      r.context += piece;
      if (max_stop > 0) {
        size_t p = find_first_of_strings(r.completion.substr(from), opt.stop);
        if (p != std::string::npos) {
          r.completion.resize(from + p);
          r.done = true;
          r.out.finish_reason = "stop";
          continue;
        }
      }
      if (step + 1 == budget) {
        r.done = true;
        r.out.finish_reason = "length";
      }
    }

    // Drop finished rows from the batch (and from the cache) before the next forward.
    std::vector<int64_t> keep;
    for (size_t b = 0; b < rows.size(); ++b)
      if (!rows[b]->done) keep.push_back(static_cast<int64_t>(b));
    if (keep.empty()) break;
    auto keep_t = torch::tensor(keep, torch::kLong);
    auto next_t = torch::tensor(next, torch::kLong).index_select(0, keep_t).unsqueeze(1);  // (B', 1)
    std::vector<Row*> alive;
    for (auto b : keep) alive.push_back(rows[b]);
    rows.swap(alive);
    mask = torch::cat({mask.index_select(0, keep_t), torch::ones({(int64_t)keep.size(), 1}, torch::kBool)}, 1);
    if (!cp) seq = torch::cat({seq.index_select(0, keep_t), next_t}, 1);  // the cache holds the rest
    if (cp) {
      if (keep.size() < next.size()) {  // copy the cache only when a row left
        auto keep_d = keep_t.to(device);
        for (auto& k : cache.k) k = k.index_select(0, keep_d);
        for (auto& v : cache.v) v = v.index_select(0, keep_d);
      }
      logits = lm(next_t.to(device), cp, L + step, model_mask());
    } else {
      logits = lm(seq.to(device), nullptr, 0, model_mask());
    }
  }
  for (auto* r : rows)
    if (!r->done) r->out.finish_reason = "length";  // budget 0
}

}  // namespace

std::vector<Sample> generate_tokens(const LogitsFn& lm, const TokenTable& vocab,
                                    const std::vector<std::vector<int32_t>>& prompts, int64_t n,
                                    const SamplingOptions& opt, int64_t block_size, torch::Device device) {
  TORCH_CHECK(block_size >= 2, "generate: block_size must be at least 2, got ", block_size);
  if (n < 1) throw UsageError("generate: n must be at least 1, got " + std::to_string(n));
  TORCH_CHECK(opt.prompt_seeds.empty() || opt.prompt_seeds.size() == prompts.size(),
              "generate: prompt_seeds must have one seed per prompt");
  torch::NoGradGuard no_grad;
  const size_t max_stop = max_length(non_empty(opt.stop));
  DisallowedFilter filter(vocab, opt.disallowed);

  // Keep room for the completion: up to half the context; longer prompts lose their head.
  const int64_t max_prompt = block_size - std::min<int64_t>(std::max<int64_t>(opt.max_new_tokens, 1), block_size / 2);
  std::vector<Row> rows;
  rows.reserve(prompts.size() * static_cast<size_t>(n));
  bool warned = false;
  for (size_t p = 0; p < prompts.size(); ++p) {
    if (prompts[p].empty()) throw UsageError("generate: prompt " + std::to_string(p) + " is empty");
    auto first = prompts[p].begin();
    if (static_cast<int64_t>(prompts[p].size()) > max_prompt) {
      if (!warned)
        spdlog::warn("generate: prompt {} has {} tokens; keeping its last {} (block_size {}, max_new_tokens {})", p,
                     prompts[p].size(), max_prompt, block_size, opt.max_new_tokens);
      warned = true;
      first = prompts[p].end() - max_prompt;
    }
    std::string context;
    for (auto it = first; it != prompts[p].end(); ++it) {
      TORCH_CHECK(*it >= 0 && *it < vocab.size(), "generate: prompt token id ", *it, " outside the vocabulary");
      context += vocab.bytes[*it];
    }
    const uint64_t base_seed = opt.prompt_seeds.empty() ? opt.seed : opt.prompt_seeds.at(p);
    for (int64_t i = 0; i < n; ++i) {
      Row r;
      r.out.prompt_index = static_cast<int64_t>(p);
      r.out.sample_index = i;
      r.prompt.assign(first, prompts[p].end());
      r.context = context;
      r.gen = at::detail::createCPUGenerator(base_seed + static_cast<uint64_t>(i));
      rows.push_back(std::move(r));
    }
  }

  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(opt.batch_size)) {
    std::vector<Row*> batch;
    for (size_t j = start; j < std::min(rows.size(), start + static_cast<size_t>(opt.batch_size)); ++j)
      batch.push_back(&rows[j]);
    decode_batch(lm, vocab, batch, opt, block_size, device, filter, max_stop);
    if (opt.on_progress) opt.on_progress(start + batch.size(), rows.size());
  }
  std::vector<Sample> out;
  out.reserve(rows.size());
  for (auto& r : rows) {
    r.out.text = std::move(r.completion);
    out.push_back(std::move(r.out));
  }
  return out;
}

std::vector<Sample> generate(GPT& model, const Tokenizer& tok, const std::vector<std::string>& prompts,
                             int64_t n, const SamplingOptions& opt) {
  // Eval mode (no dropout) while sampling; the caller's mode is restored (PPO samples mid-training).
  const bool was_training = model->is_training();
  model->eval();
  std::vector<std::vector<int32_t>> ids;
  for (auto& p : prompts) ids.push_back(tok.encode(p));
  auto device = model->parameters().front().device();
  auto out = generate_tokens(gpt_logits_fn(model), TokenTable::from(tok), ids, n, opt, model->cfg.block_size, device);
  if (was_training) model->train();
  return out;
}

}  // namespace codex
