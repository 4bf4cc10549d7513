#include "generate/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>

#include <algorithm>
#include <cmath>
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

// Token ids that are never sampled: padding (unless it is end of text, as for GPT-2), ids past
// the tokenizer's vocabulary (a model may pad its embedding table), and control tokens other than
// end-of-text (they decode to nothing).
std::vector<int64_t> never_ids(const TokenTable& vocab, int64_t V) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < V; ++i)
    if (i >= vocab.size() || (i == vocab.pad_id && i != vocab.eot_id) || (i != vocab.eot_id && vocab.bytes[i].empty()))
      ids.push_back(i);
  return ids;
}

// What one decoding step drew for each row of the batch.
struct Draws {
  std::vector<int64_t> token;    // the pad id where nothing could be drawn
  std::vector<float> logprob;    // under the unmodified distribution (temperature 1, no masks)
  std::vector<uint8_t> drawn;    // 0: every token was masked (finish reason "disallowed")
};

// Next-token logits -> one token per row. Its (rows, V) buffers are allocated on the first step
// and reused (their first B' rows as the batch shrinks), so a step allocates no (B, V) tensor
// except where temperature != 1, top-k or top-p filter the logits. Each row's cumulative
// distribution is summed in float64 in index order into one reused (V) array: the same numbers
// as torch's float64 cumsum of the float32 softmax, so the same seed draws the same tokens.
class Sampler {
 public:
  Sampler(const TokenTable& vocab, const SamplingOptions& opt, const DisallowedFilter& filter, int64_t max_rows,
          int64_t pad_fill)
      : vocab_(vocab), opt_(opt), filter_(filter), max_rows_(max_rows), pad_fill_(pad_fill) {}

  // logits (B, V) for the rows (in order): fills d with each row's token and its log-prob.
  void step(const torch::Tensor& logits, const std::vector<Row*>& rows, Draws& d) {
    auto lg = logits.to(torch::kCPU, torch::kFloat).contiguous();  // (B, V)
    const int64_t B = lg.size(0), V = lg.size(1);
    reserve(V);
    auto logp = logp_.narrow(0, 0, B), x = masked_.narrow(0, 0, B);  // (B, V) views of the buffers
    at::_log_softmax_out(logp, lg, 1, false);  // the unmodified distribution, for the reported log-probs
    x.copy_(lg);
    apply_masks(x, rows);
    d.token.assign(static_cast<size_t>(B), pad_fill_);
    d.logprob.assign(static_cast<size_t>(B), 0.0f);
    d.drawn.assign(static_cast<size_t>(B), 0);
    const float* xp = x.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)  // anything finite left to sample? (usually the first entry)
      d.drawn[b] = std::any_of(xp + b * V, xp + (b + 1) * V, [](float v) { return std::isfinite(v); });
    if (opt_.temperature > 0) sample(x, rows, d);
    else greedy(x, d);
    const float* lp = logp.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      if (d.drawn[b]) d.logprob[b] = lp[b * V + d.token[b]];
  }

 private:
  void reserve(int64_t V) {
    if (logp_.defined() && logp_.size(1) == V) return;
    logp_ = torch::empty({max_rows_, V}, torch::kFloat);
    masked_ = torch::empty({max_rows_, V}, torch::kFloat);
    never_ = never_ids(vocab_, V);
    cdf_.assign(static_cast<size_t>(V), 0.0);
  }

  // -inf for the never-sampled ids and for tokens that would complete a disallowed string.
  void apply_masks(torch::Tensor& x, const std::vector<Row*>& rows) {
    const int64_t B = x.size(0), V = x.size(1);
    const float ninf = -std::numeric_limits<float>::infinity();
    float* xp = x.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t id : never_) xp[b * V + id] = ninf;
    if (!filter_.active()) return;
    for (int64_t b = 0; b < B; ++b) {
      auto ok = filter_.allowed(rows[b]->context);
      if (ok.size(0) < V) ok = torch::cat({ok, torch::zeros({V - ok.size(0)}, torch::kBool)});
      x[b].masked_fill_(ok.narrow(0, 0, V).logical_not(), ninf);
    }
  }

  void sample(const torch::Tensor& x, const std::vector<Row*>& rows, Draws& d) {
    const int64_t B = x.size(0), V = x.size(1);
    auto f = filter_logits(x, opt_.temperature, opt_.top_k, opt_.top_p);  // x itself at T = 1 without top-k/p
    if (!probs_.defined() || probs_.size(1) != V) probs_ = torch::empty({max_rows_, V}, torch::kFloat);
    auto probs = probs_.narrow(0, 0, B);
    at::_softmax_out(probs, f, 1, false);
    const float* pp = probs.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      if (!d.drawn[b]) continue;
      const float* p = pp + b * V;
      double c = 0;  // torch's cumsum order: one float64 running sum
      for (int64_t i = 0; i < V; ++i) cdf_[i] = c += static_cast<double>(p[i]);
      d.token[b] = draw(cdf_.data(), V, rows[b]->gen);
    }
  }

  void greedy(const torch::Tensor& x, Draws& d) {
    auto best = x.argmax(1).contiguous();  // (B)
    const int64_t* bp = best.data_ptr<int64_t>();
    for (size_t b = 0; b < d.token.size(); ++b)
      if (d.drawn[b]) d.token[b] = bp[b];
  }

  const TokenTable& vocab_;
  const SamplingOptions& opt_;
  const DisallowedFilter& filter_;
  int64_t max_rows_, pad_fill_;
  torch::Tensor logp_, masked_, probs_;  // (max_rows, V)
  std::vector<int64_t> never_;
  std::vector<double> cdf_;              // (V): one row's cumulative distribution
};

// The rows decoded together and what the model needs for the next forward.
struct Batch {
  std::vector<Row*> rows;  // the rows still decoding
  int64_t L = 0;           // padded prompt length
  torch::Tensor seq;       // (B, L) left-padded prompts; without a cache, (B, L + step) with the new tokens
  torch::Tensor mask;      // (B, L + step) true = real token; undefined while no row is padded
  KVCache cache;
};

// Left-pads the rows' prompts into one (B, L) batch (the mask hides the padding).
Batch left_pad(std::vector<Row*> rows, int64_t pad_fill) {
  Batch bt;
  bt.rows = std::move(rows);
  const int64_t B = static_cast<int64_t>(bt.rows.size());
  for (auto* r : bt.rows) bt.L = std::max<int64_t>(bt.L, static_cast<int64_t>(r->prompt.size()));
  bt.seq = torch::full({B, bt.L}, pad_fill, torch::kLong);
  auto mask = torch::zeros({B, bt.L}, torch::kBool);
  int64_t* sp = bt.seq.data_ptr<int64_t>();
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) {
    const auto& pr = bt.rows[b]->prompt;
    const int64_t pad = bt.L - static_cast<int64_t>(pr.size());
    for (size_t t = 0; t < pr.size(); ++t) sp[b * bt.L + pad + static_cast<int64_t>(t)] = pr[t];
    mask[b].slice(0, pad).fill_(true);
    padded = padded || pad > 0;
  }
  if (padded) bt.mask = mask;
  return bt;
}

torch::Tensor on(const torch::Tensor& t, torch::Device device) { return t.defined() ? t.to(device) : t; }

// The prompts' forward: next-token logits (B, V). Samples of one prompt share its prefill: with a
// cache, the distinct prompts go through the model once, then their cache and logits are copied
// to every sample's row.
torch::Tensor prefill(const LogitsFn& lm, Batch& bt, bool kv_cache, torch::Device device) {
  const int64_t B = static_cast<int64_t>(bt.rows.size());
  KVCache* cp = kv_cache ? &bt.cache : nullptr;
  std::vector<int64_t> first_rows, src(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    int64_t u = 0;
    while (u < static_cast<int64_t>(first_rows.size()) &&
           bt.rows[first_rows[u]]->out.prompt_index != bt.rows[b]->out.prompt_index)
      ++u;
    if (u == static_cast<int64_t>(first_rows.size())) first_rows.push_back(b);
    src[b] = u;
  }
  if (!cp || first_rows.size() == bt.rows.size()) return lm(bt.seq.to(device), cp, 0, on(bt.mask, device));
  auto uniq = torch::tensor(first_rows, torch::kLong);
  torch::Tensor umask;
  if (bt.mask.defined()) {
    umask = bt.mask.index_select(0, uniq);
    if (umask.all().item<bool>()) umask = torch::Tensor();
  }
  auto ulogits = lm(bt.seq.index_select(0, uniq).to(device), cp, 0, on(umask, device));
  auto expand = torch::tensor(src, torch::kLong).to(device);
  for (auto& k : bt.cache.k) k = k.index_select(0, expand);
  for (auto& v : bt.cache.v) v = v.index_select(0, expand);
  return ulogits.index_select(0, expand.to(ulogits.device()));
}

// Appends each row's drawn token and ends the rows that are done (end of text, a stop sequence,
// nothing left to sample, the last step of the budget).
void record_step(Batch& bt, const Draws& d, const TokenTable& vocab, const SamplingOptions& opt, size_t max_stop,
                 bool last_step) {
  for (size_t b = 0; b < bt.rows.size(); ++b) {
    Row& r = *bt.rows[b];
    if (!d.drawn[b]) {
      r.done = true;
      r.out.finish_reason = "disallowed";
      continue;
    }
    const int64_t tok = d.token[b];
    r.out.tokens.push_back(static_cast<int32_t>(tok));
    r.out.logprobs.push_back(d.logprob[b]);
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
    if (last_step) {
      r.done = true;
      r.out.finish_reason = "length";
    }
  }
}

// Drops the finished rows (from the batch, its mask and its cache; the cache keeps its buffers:
// the rows that stay are copied to its first rows) and appends the drawn tokens. Returns the
// (B', 1) ids to feed next, undefined when no row is left.
torch::Tensor keep_alive(Batch& bt, const Draws& d, bool kv_cache) {
  std::vector<int64_t> keep, next;
  std::vector<Row*> alive;
  for (size_t b = 0; b < bt.rows.size(); ++b)
    if (!bt.rows[b]->done) {
      keep.push_back(static_cast<int64_t>(b));
      next.push_back(d.token[b]);
      alive.push_back(bt.rows[b]);
    }
  if (keep.empty()) return {};
  const int64_t n = static_cast<int64_t>(keep.size());
  const bool dropped = alive.size() < bt.rows.size();
  bt.rows.swap(alive);
  auto keep_t = torch::tensor(keep, torch::kLong);
  auto next_t = torch::tensor(next, torch::kLong).unsqueeze(1);  // (B', 1)
  if (bt.mask.defined()) {
    bt.mask = torch::cat({dropped ? bt.mask.index_select(0, keep_t) : bt.mask, torch::ones({n, 1}, torch::kBool)}, 1);
    if (dropped && bt.mask.all().item<bool>()) bt.mask = torch::Tensor();  // the padded rows left
  }
  if (!kv_cache) {
    bt.seq = torch::cat({dropped ? bt.seq.index_select(0, keep_t) : bt.seq, next_t}, 1);  // the cache holds the rest
  } else if (dropped) {
    for (auto* side : {&bt.cache.k, &bt.cache.v})
      for (auto& t : *side) {
        auto kept = t.index_select(0, keep_t.to(t.device()));
        t = t.narrow(0, 0, n);
        t.copy_(kept);
      }
  }
  return next_t;
}

void decode_batch(const LogitsFn& lm, const TokenTable& vocab, std::vector<Row*> rows, const SamplingOptions& opt,
                  int64_t block_size, torch::Device device, const DisallowedFilter& filter, size_t max_stop) {
  const int64_t pad_fill = vocab.pad_id >= 0 ? vocab.pad_id : 0;  // any id: padding is masked out
  Batch bt = left_pad(std::move(rows), pad_fill);
  const int64_t budget = std::min(opt.max_new_tokens, block_size - bt.L);
  Sampler sampler(vocab, opt, filter, static_cast<int64_t>(bt.rows.size()), pad_fill);
  Draws d;
  torch::Tensor logits = budget > 0 ? prefill(lm, bt, opt.kv_cache, device) : torch::Tensor();  // (B', V)
  for (int64_t step = 0; step < budget; ++step) {
    sampler.step(logits, bt.rows, d);
    record_step(bt, d, vocab, opt, max_stop, step + 1 == budget);
    auto next = keep_alive(bt, d, opt.kv_cache);
    if (!next.defined()) break;
    if (opt.kv_cache) logits = lm(next.to(device), &bt.cache, bt.L + step, on(bt.mask, device));
    else logits = lm(bt.seq.to(device), nullptr, 0, on(bt.mask, device));
  }
  for (auto* r : bt.rows)
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
