#pragma once
// The one decoder trunk every trainer shares (LM, reward and value heads), in two block families
// (model.arch):
//   gpt2  (default): token + learned position embeddings, pre-LN blocks (LayerNorm, causal
//         self-attention with one fused q/k/v projection, GELU MLP x4), final LayerNorm, LM head
//         tied to the token embedding.
//   llama: the Llama / Qwen2 decoder: token embedding, no learned positions, pre-norm blocks
//         (RMSNorm, grouped-query attention with rotary positions on q and k, SwiGLU MLP),
//         final RMSNorm, LM head tied or its own (`lm_head.weight`).
//
// Parameter names follow Hugging Face's GPT-2 checkpoint names without the "transformer."
// prefix, for both families (interop/hf.cpp maps the llama names to HF's Llama / Qwen2 names):
//   wte.weight (V, C)   wpe.weight (T, C) [gpt2]
//   h.<i>.ln_1.{weight,bias} (C)   h.<i>.ln_2.{weight,bias}   ln_f.{weight,bias}   [llama: weight only]
//   gpt2:  h.<i>.attn.c_attn.{weight (3C, C), bias (3C)}   h.<i>.attn.c_proj.{weight (C, C), bias}
//          h.<i>.mlp.c_fc.{weight (4C, C), bias}   h.<i>.mlp.c_proj.{weight (C, 4C), bias}
//   llama: h.<i>.attn.{q_proj (C, C), k_proj (Ckv, C), v_proj (Ckv, C)}.{weight,bias if qkv_bias}
//          h.<i>.attn.o_proj.weight (C, C)   h.<i>.mlp.{gate_proj,up_proj}.weight (I, C)
//          h.<i>.mlp.down_proj.weight (C, I)   lm_head.weight (V, C) when not tied
// Linear weights are torch's (out, in); HF's GPT-2 Conv1D stores (in, out): export transposes.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace codex {

struct GPTConfig {
  int64_t vocab_size = 0;
  int64_t n_layer = 2, n_head = 2, n_embd = 64, block_size = 128;
  double dropout = 0.0;
  bool bias = true;
  std::string attention = "auto";  // model.attention: auto | fused | reference (ops/attention.h)
  std::string arch = "gpt2";       // gpt2 | llama (config.h ModelConfig)
  int64_t n_kv_head = 0;           // llama: 0 = n_head
  int64_t intermediate_size = 0;   // llama: 0 = 4 * n_embd
  double rope_theta = 10000, norm_eps = 1e-6;
  bool qkv_bias = false, tie_embeddings = true;

  static GPTConfig from(const ModelConfig& m, int64_t vocab_size);
  bool llama() const { return arch == "llama"; }
  int64_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int64_t mlp_width() const { return intermediate_size > 0 ? intermediate_size : 4 * n_embd; }
  bool tied() const { return !llama() || tie_embeddings; }
};

// LayerNorm (gpt2: weight and bias, eps 1e-5) or RMSNorm (llama: x / sqrt(mean(x^2) + eps) * weight).
struct NormImpl : torch::nn::Module {
  NormImpl(int64_t c, bool rms, double eps, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  bool rms;
  double eps;
  torch::Tensor weight, bias;
};
TORCH_MODULE(Norm);

// Rotary position embedding (Llama's rotate-half form) of x (B, H, T, hd) at positions pos (B, T):
// with inv_freq_i = theta^(-2i / hd), angle = pos * inv_freq (B, T, hd/2) repeated twice along the
// last dim, x * cos(angle) + rotate_half(x) * sin(angle), rotate_half(x) = (-x2, x1).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& pos, double theta);

// Per-layer key/value cache for incremental decoding. k[i], v[i]: (B, kv heads, T_cached, head_dim)
// (llama: rotary positions already applied to k; grouped-query heads stored once).
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

// Causal self-attention. gpt2: one fused q/k/v projection (c_attn) and an output projection
// (c_proj). llama: q/k/v projections (k, v at n_kv_head heads), rotary positions, o_proj; each
// group of n_head / n_kv_head query heads shares one key/value head.
struct CausalSelfAttentionImpl : torch::nn::Module {
  explicit CausalSelfAttentionImpl(const GPTConfig& cfg);
  // x (B, T, C) -> (B, T, C). cache_k / cache_v: this layer's slots in a KVCache (may be null).
  // pos (B, T) int64: positions of x's tokens (llama's rotary angles; gpt2 ignores it).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        const torch::Tensor& key_mask, const torch::Tensor& pos = {});
  int64_t n_head, n_kv_head, n_embd;
  double dropout, rope_theta;
  std::string attention;
  bool llama;
  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(CausalSelfAttention);

struct MLPImpl : torch::nn::Module {
  explicit MLPImpl(const GPTConfig& cfg);
  // (B, T, C) -> (B, T, C). gpt2: GELU (tanh) in 4C; llama: down(silu(gate(x)) * up(x)).
  torch::Tensor forward(const torch::Tensor& x);
  double dropout;
  bool llama;
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

// Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const GPTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        const torch::Tensor& key_mask, const torch::Tensor& pos = {});
  Norm ln_1{nullptr}, ln_2{nullptr};
  CausalSelfAttention attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(Block);

struct GPTImpl : torch::nn::Module {
  explicit GPTImpl(const GPTConfig& cfg);

  // idx (B, T) int64 -> final hidden states (B, T, C) after ln_f; the one forward that training,
  // scoring and generation share. `cache`, when given, is read and extended (idx then holds the
  // new tokens only). `attn_mask` (B, T_past + T) bool, optional: false marks padding (left
  // padding). `position_ids` (B, T), optional; by default positions count real tokens only
  // (cumsum of attn_mask - 1) when a mask is given, else T_past, T_past + 1, ... — so a left-padded
  // row computes exactly what it computes alone.
  torch::Tensor hidden(const torch::Tensor& idx, KVCache* cache = nullptr, const torch::Tensor& attn_mask = {},
                       const torch::Tensor& position_ids = {});
  // LM head (tied to wte, or llama's own lm_head): (B, T, C) -> (B, T, V)
  torch::Tensor lm_logits(const torch::Tensor& hidden);
  // The LM head's (V, C) weight: wte's when tied, else lm_head's (the fused losses take it).
  torch::Tensor lm_head_weight() const;
  torch::Tensor forward(const torch::Tensor& idx) { return lm_logits(hidden(idx)); }

  // Scalar heads (reward model, value model): a Linear(C, 1) registered under `name`
  // ("reward_head" or "value_head"), initialised N(0, 1/(C+1)), bias 0. The LM head is always
  // there (tied to wte, no parameters of its own).
  void add_scalar_head(const std::string& name);
  bool has_head(const std::string& name) const { return scalar_heads.count(name) > 0; }
  // hidden (B, T, C) -> (B, T) scalars of head `name`.
  torch::Tensor scalar(const std::string& name, const torch::Tensor& hidden);
  std::vector<std::string> head_names() const;  // "lm" + the scalar heads, sorted

  int64_t num_params() const;  // unique parameters (the tied head counted once)

  GPTConfig cfg;
  // members registered under the names above
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};  // wpe: gpt2 only
  torch::nn::ModuleList h{nullptr};
  std::vector<Block> blocks;  // the same modules as `h`, typed
  Norm ln_f{nullptr};
  torch::nn::Linear lm_head{nullptr};  // llama with tie_embeddings=false
  std::map<std::string, torch::nn::Linear> scalar_heads;
};
TORCH_MODULE(GPT);

// Parameter names that belong to a scalar head ("reward_head.weight", ...): not part of the trunk.
bool is_head_parameter(const std::string& name);
// Per-row positions of a left-padded batch: (cumsum(mask) - 1) clamped at 0, (B, T_total) int64.
torch::Tensor positions_from_mask(const torch::Tensor& attn_mask);

}  // namespace codex
