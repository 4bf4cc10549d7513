#pragma once
// The one GPT trunk every trainer shares (LM now; reward / value heads later), GPT-2 by default:
// token + learned position embeddings, pre-LN blocks (LayerNorm, causal self-attention,
// GELU MLP x4), final LayerNorm, LM head tied to the token embedding.
//
// Parameter names follow Hugging Face's GPT-2 checkpoint names without the "transformer."
// prefix, so import/export needs no renaming table:
//   wte.weight (V, C)   wpe.weight (T, C)
//   h.<i>.ln_1.{weight,bias} (C)   h.<i>.attn.c_attn.{weight (3C, C), bias (3C)}
//   h.<i>.attn.c_proj.{weight (C, C), bias}   h.<i>.ln_2.{weight,bias}
//   h.<i>.mlp.c_fc.{weight (4C, C), bias}   h.<i>.mlp.c_proj.{weight (C, 4C), bias}
//   ln_f.{weight,bias}
// Linear weights are torch's (out, in); HF's Conv1D stores (in, out): export transposes.
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

  static GPTConfig from(const ModelConfig& m, int64_t vocab_size);
};

// Per-layer key/value cache for incremental decoding. k[i], v[i]: (B, n_head, T_cached, head_dim).
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

// Causal self-attention: one fused q/k/v projection (c_attn) and an output projection (c_proj).
struct CausalSelfAttentionImpl : torch::nn::Module {
  explicit CausalSelfAttentionImpl(const GPTConfig& cfg);
  // x (B, T, C) -> (B, T, C). cache_k / cache_v: this layer's slots in a KVCache (may be null).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        const torch::Tensor& key_mask);
  int64_t n_head, n_embd;
  double dropout;
  std::string attention;
  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(CausalSelfAttention);

struct MLPImpl : torch::nn::Module {
  explicit MLPImpl(const GPTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C), GELU (tanh) in 4C
  double dropout;
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(MLP);

// Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).
struct BlockImpl : torch::nn::Module {
  explicit BlockImpl(const GPTConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* cache_k, torch::Tensor* cache_v,
                        const torch::Tensor& key_mask);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
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
  // LM head (tied to wte): (B, T, C) -> (B, T, V)
  torch::Tensor lm_logits(const torch::Tensor& hidden);
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
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  std::vector<Block> blocks;  // the same modules as `h`, typed
  torch::nn::LayerNorm ln_f{nullptr};
  std::map<std::string, torch::nn::Linear> scalar_heads;
};
TORCH_MODULE(GPT);

// Parameter names that belong to a scalar head ("reward_head.weight", ...): not part of the trunk.
bool is_head_parameter(const std::string& name);
// Per-row positions of a left-padded batch: (cumsum(mask) - 1) clamped at 0, (B, T_total) int64.
torch::Tensor positions_from_mask(const torch::Tensor& attn_mask);

}  // namespace codex
