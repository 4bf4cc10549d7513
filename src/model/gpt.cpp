#include "model/gpt.h"

#include <cmath>

#include "ops/attention.h"
#include "util/error.h"

namespace codex {

GPTConfig GPTConfig::from(const ModelConfig& m, int64_t vocab_size) {
  GPTConfig g;
  g.vocab_size = m.vocab_size > 0 ? m.vocab_size : vocab_size;
  g.n_layer = m.n_layer;
  g.n_head = m.n_head;
  g.n_embd = m.n_embd;
  g.block_size = m.block_size;
  g.dropout = m.dropout;
  g.bias = m.bias;
  g.attention = m.attention;
  g.arch = m.arch;
  g.n_kv_head = m.n_kv_head;
  g.intermediate_size = m.intermediate_size;
  g.rope_theta = m.rope_theta;
  g.norm_eps = m.norm_eps;
  g.qkv_bias = m.qkv_bias;
  g.tie_embeddings = m.tie_embeddings;
  if (g.llama()) {
    if (g.n_head % g.kv_heads() != 0)
      throw UsageError("model.n_kv_head (" + std::to_string(g.kv_heads()) + ") must divide model.n_head (" +
                       std::to_string(g.n_head) + ")");
    if (g.n_embd % g.n_head == 0 && (g.n_embd / g.n_head) % 2 != 0)
      throw UsageError("model.arch=llama: the head dim (n_embd / n_head = " + std::to_string(g.n_embd / g.n_head) +
                       ") must be even for rotary positions");
  } else if (g.n_kv_head > 0 && g.n_kv_head != g.n_head) {
    throw UsageError("model.n_kv_head applies to model.arch=llama (gpt2 has one key/value head per query head)");
  }
  if (parse_attention_kind(g.attention) == AttentionKind::Fused && g.dropout > 0)
    throw UsageError("model.attention=fused has no attention dropout: use auto or reference with model.dropout > 0");
  if (g.vocab_size <= 0) throw UsageError("model.vocab_size: unknown (0) and no tokenizer/data to take it from");
  if (g.n_embd % g.n_head != 0)
    throw UsageError("model.n_embd (" + std::to_string(g.n_embd) + ") must be divisible by model.n_head (" +
                     std::to_string(g.n_head) + ")");
  return g;
}

namespace {
torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}
}  // namespace

NormImpl::NormImpl(int64_t c, bool rms_norm, double eps_, bool with_bias) : rms(rms_norm), eps(eps_) {
  weight = register_parameter("weight", torch::ones({c}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({c}));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (!rms) return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& pos, double theta) {
  const int64_t hd = x.size(-1), half = hd / 2;
  // Angles in float32 as HF computes them (float64 for float64 models: the tests' goldens).
  const auto ft = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto fopt = torch::TensorOptions().dtype(ft).device(x.device());
  auto inv_freq = torch::pow(theta, -torch::arange(0, hd, 2, fopt) / static_cast<double>(hd));  // (hd/2)
  auto angle = pos.to(ft).unsqueeze(-1) * inv_freq;                                              // (B, T, hd/2)
  angle = torch::cat({angle, angle}, -1).unsqueeze(1);                                           // (B, 1, T, hd)
  auto cos = angle.cos().to(x.scalar_type()), sin = angle.sin().to(x.scalar_type());
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const GPTConfig& cfg)
    : n_head(cfg.n_head), n_kv_head(cfg.kv_heads()), n_embd(cfg.n_embd), dropout(cfg.dropout),
      rope_theta(cfg.rope_theta), attention(cfg.attention), llama(cfg.llama()) {
  if (!llama) {
    c_attn = register_module("c_attn", linear(n_embd, 3 * n_embd, cfg.bias));
    c_proj = register_module("c_proj", linear(n_embd, n_embd, cfg.bias));
    return;
  }
  const int64_t kv = n_kv_head * (n_embd / n_head);
  q_proj = register_module("q_proj", linear(n_embd, n_embd, cfg.qkv_bias));
  k_proj = register_module("k_proj", linear(n_embd, kv, cfg.qkv_bias));
  v_proj = register_module("v_proj", linear(n_embd, kv, cfg.qkv_bias));
  o_proj = register_module("o_proj", linear(n_embd, n_embd, false));
}

torch::Tensor CausalSelfAttentionImpl::forward(const torch::Tensor& x, torch::Tensor* cache_k,
                                               torch::Tensor* cache_v, const torch::Tensor& key_mask,
                                               const torch::Tensor& pos) {
  const int64_t B = x.size(0), T = x.size(1), C = n_embd, hd = C / n_head;
  torch::Tensor q, k, v;  // (B, heads, T, hd)
  if (!llama) {
    // (B, T, 3C) -> 3 x (B, H, T, hd)
    auto qkv = c_attn(x).view({B, T, 3, n_head, hd}).permute({2, 0, 3, 1, 4});
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else {
    TORCH_CHECK(pos.defined(), "llama attention needs positions");
    q = apply_rope(q_proj(x).view({B, T, n_head, hd}).transpose(1, 2), pos, rope_theta);
    k = apply_rope(k_proj(x).view({B, T, n_kv_head, hd}).transpose(1, 2), pos, rope_theta);
    v = v_proj(x).view({B, T, n_kv_head, hd}).transpose(1, 2);
  }
  if (cache_k) {  // append this step's keys/values to the cache: (B, kv heads, T_past + T, hd)
    if (cache_k->defined()) {
      k = torch::cat({*cache_k, k}, 2);
      v = torch::cat({*cache_v, v}, 2);
    }
    *cache_k = k;
    *cache_v = v;
  }
  if (n_kv_head != n_head) {  // grouped-query: query head j reads key/value head j / (H / H_kv)
    k = k.repeat_interleave(n_head / n_kv_head, 1);
    v = v.repeat_interleave(n_head / n_kv_head, 1);
  }
  const double p = is_training() ? dropout : 0.0;
  auto y = codex::attention(q, k, v, /*causal=*/true, key_mask, p, parse_attention_kind(attention));  // (B, H, T, hd)
  y = y.transpose(1, 2).reshape({B, T, C});                   // (B, T, C)
  y = llama ? o_proj(y) : c_proj(y);
  return p > 0 ? torch::dropout(y, p, true) : y;
}

MLPImpl::MLPImpl(const GPTConfig& cfg) : dropout(cfg.dropout), llama(cfg.llama()) {
  if (!llama) {
    c_fc = register_module("c_fc", linear(cfg.n_embd, 4 * cfg.n_embd, cfg.bias));
    c_proj = register_module("c_proj", linear(4 * cfg.n_embd, cfg.n_embd, cfg.bias));
    return;
  }
  gate_proj = register_module("gate_proj", linear(cfg.n_embd, cfg.mlp_width(), false));
  up_proj = register_module("up_proj", linear(cfg.n_embd, cfg.mlp_width(), false));
  down_proj = register_module("down_proj", linear(cfg.mlp_width(), cfg.n_embd, false));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  auto y = llama ? down_proj(torch::silu(gate_proj(x)) * up_proj(x))
                 : c_proj(torch::gelu(c_fc(x), "tanh"));  // GPT-2's gelu_new
  return (is_training() && dropout > 0) ? torch::dropout(y, dropout, true) : y;
}

BlockImpl::BlockImpl(const GPTConfig& cfg) {
  const bool rms = cfg.llama();
  const double eps = rms ? cfg.norm_eps : 1e-5;
  ln_1 = register_module("ln_1", Norm(cfg.n_embd, rms, eps, !rms));
  attn = register_module("attn", CausalSelfAttention(cfg));
  ln_2 = register_module("ln_2", Norm(cfg.n_embd, rms, eps, !rms));
  mlp = register_module("mlp", MLP(cfg));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, torch::Tensor* cache_k, torch::Tensor* cache_v,
                                 const torch::Tensor& key_mask, const torch::Tensor& pos) {
  auto y = x + attn(ln_1(x), cache_k, cache_v, key_mask, pos);
  return y + mlp(ln_2(y));
}

GPTImpl::GPTImpl(const GPTConfig& c) : cfg(c) {
  TORCH_CHECK(cfg.vocab_size > 0, "GPT: vocab_size must be positive, got ", cfg.vocab_size);
  TORCH_CHECK(cfg.n_embd % cfg.n_head == 0, "GPT: n_embd ", cfg.n_embd, " not divisible by n_head ", cfg.n_head);
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.n_embd));
  if (!cfg.llama()) wpe = register_module("wpe", torch::nn::Embedding(cfg.block_size, cfg.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    blocks.push_back(Block(cfg));
    h->push_back(blocks.back());
  }
  ln_f = register_module("ln_f", Norm(cfg.n_embd, cfg.llama(), cfg.llama() ? cfg.norm_eps : 1e-5, !cfg.llama()));
  if (!cfg.tied()) lm_head = register_module("lm_head", linear(cfg.n_embd, cfg.vocab_size, false));

  // GPT-2 init (both families): N(0, 0.02) for every weight matrix and embedding, zero biases,
  // norms (1, 0); projections that write into the residual stream (attn.c_proj / o_proj,
  // mlp.c_proj / down_proj) get 0.02 / sqrt(2 * n_layer) so the stream's variance does not grow
  // with depth.
  torch::NoGradGuard ng;
  const double resid_std = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg.n_layer));
  for (auto& kv : named_parameters()) {
    const std::string& name = kv.key();
    auto& p = kv.value();
    auto ends = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (name.rfind("ln_", 0) == 0 || name.find(".ln_") != std::string::npos) {
      if (ends(".weight")) p.fill_(1.0); else p.zero_();
    } else if (ends(".bias")) {
      p.zero_();
    } else if (ends("c_proj.weight") || ends("o_proj.weight") || ends("down_proj.weight")) {
      p.normal_(0.0, resid_std);
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

torch::Tensor positions_from_mask(const torch::Tensor& attn_mask) {
  return (attn_mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
}

bool is_head_parameter(const std::string& name) {
  return name.rfind("reward_head.", 0) == 0 || name.rfind("value_head.", 0) == 0;
}

torch::Tensor GPTImpl::hidden(const torch::Tensor& idx, KVCache* cache, const torch::Tensor& attn_mask,
                              const torch::Tensor& position_ids) {
  TORCH_CHECK(idx.dim() == 2, "GPT: idx must be (B, T), got ", idx.sizes());
  const int64_t B = idx.size(0), T = idx.size(1);
  const int64_t past = cache ? cache->length() : 0;
  TORCH_CHECK(past + T <= cfg.block_size, "GPT: positions [", past, ", ", past + T, ") exceed block_size ",
              cfg.block_size);
  if (attn_mask.defined())
    TORCH_CHECK(attn_mask.dim() == 2 && attn_mask.size(0) == B && attn_mask.size(1) == past + T,
                "GPT: attn_mask must be (B, T_past + T) = (", B, ", ", past + T, "), got ", attn_mask.sizes());
  if (cache && cache->k.empty()) {
    cache->k.resize(cfg.n_layer);
    cache->v.resize(cfg.n_layer);
  }
  torch::Tensor pos;  // (B, T) or (T)
  if (position_ids.defined()) {
    TORCH_CHECK(position_ids.sizes() == idx.sizes(), "GPT: position_ids must be ", idx.sizes(), ", got ",
                position_ids.sizes());
    pos = position_ids;
  } else if (attn_mask.defined()) {
    pos = positions_from_mask(attn_mask).narrow(1, past, T);
  } else {
    pos = torch::arange(past, past + T, torch::TensorOptions().dtype(torch::kLong).device(idx.device()));
  }
  torch::Tensor x = cfg.llama() ? wte(idx) : wte(idx) + wpe(pos);  // (B, T, C)
  if (cfg.llama() && pos.dim() == 1) pos = pos.unsqueeze(0).expand({B, T});
  if (is_training() && cfg.dropout > 0) x = torch::dropout(x, cfg.dropout, true);
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    torch::Tensor* ck = cache ? &cache->k[i] : nullptr;
    torch::Tensor* cv = cache ? &cache->v[i] : nullptr;
    x = blocks[i]->forward(x, ck, cv, attn_mask, pos);
  }
  return ln_f(x);  // (B, T, C)
}

void GPTImpl::add_scalar_head(const std::string& name) {
  TORCH_CHECK(name == "reward_head" || name == "value_head", "GPT: unknown head '", name, "'");
  if (has_head(name)) return;
  auto head = register_module(name, torch::nn::Linear(cfg.n_embd, 1));
  torch::NoGradGuard ng;
  head->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(cfg.n_embd + 1)));
  head->bias.zero_();
  if (!wte->weight.device().is_cpu()) head->to(wte->weight.device());
  scalar_heads.emplace(name, head);
}

torch::Tensor GPTImpl::scalar(const std::string& name, const torch::Tensor& hid) {
  auto it = scalar_heads.find(name);
  TORCH_CHECK(it != scalar_heads.end(), "GPT: the model has no ", name);
  return it->second(hid).squeeze(-1);  // (B, T)
}

std::vector<std::string> GPTImpl::head_names() const {
  std::vector<std::string> out = {"lm"};
  for (auto& [n, h] : scalar_heads) out.push_back(n);
  return out;
}

torch::Tensor GPTImpl::lm_head_weight() const { return cfg.tied() ? wte->weight : lm_head->weight; }

torch::Tensor GPTImpl::lm_logits(const torch::Tensor& hid) {
  return torch::nn::functional::linear(hid, lm_head_weight());  // (B, T, V)
}

int64_t GPTImpl::num_params() const {
  int64_t n = 0;
  for (auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace codex
