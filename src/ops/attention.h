#pragma once
// The one attention entry point every model path goes through. It dispatches:
//   CUDA tensors -> the fused CUDA kernel (kernels/attention/, when built with CUDA and the shape
//                   and dtype are ones it handles), else LibTorch ops;
//   CPU tensors  -> the fused CPU kernel (ops/cpu/attention_kernel.h; float32/float64) with
//                   `model.attention: fused` (`auto` keeps LibTorch ops on the CPU for now:
//                   docs/perf.md), else ops;
//   `model.attention: reference` -> always LibTorch ops (`attention_ops`, kept for checking).
// Dropout on the attention probabilities (training with model.dropout > 0) always takes the
// LibTorch-ops path: the fused kernels do not drop.
#include <torch/torch.h>

#include <string>

namespace codex {

enum class AttentionKind { Auto, Fused, Reference };
// "auto" | "fused" | "reference"; anything else: UsageError naming model.attention.
AttentionKind parse_attention_kind(const std::string& name);
const char* attention_kind_name(AttentionKind kind);

// Scaled dot-product attention, softmax(q k^T / sqrt(D)) v.
//   q (B, H, Tq, D); k, v (B, H, Tk, D) with Tk >= Tq  ->  (B, H, Tq, D)
// causal: query i (0-based within q) attends keys j <= past_len + i, where past_len = Tk - Tq
//   (the KV-cache offset: q holds the last Tq positions of the Tk keys).
// key_mask (B, Tk) bool, optional: false marks padding keys no query may attend.
// A query row whose keys are all masked (a left-padding position) gets a uniform average
// instead of NaN; callers ignore those rows.
// dropout_p > 0 drops attention probabilities (training only).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        bool causal, const torch::Tensor& key_mask = {}, double dropout_p = 0.0,
                        AttentionKind kind = AttentionKind::Auto);

// The same contract, each implementation called directly (tests, benchmarks):
// LibTorch ops: one (B, H, Tq, Tk) score matrix, masked_fill, softmax, matmul (any device/dtype).
torch::Tensor attention_ops(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal,
                            const torch::Tensor& key_mask = {}, double dropout_p = 0.0);
// The fused CPU kernel (float32/float64 CPU tensors; no dropout), differentiable w.r.t. q, k, v.
torch::Tensor attention_fused_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  bool causal, const torch::Tensor& key_mask = {});
// Which implementation `attention(...)` would run for these inputs: "cuda", "fused", "ops".
std::string attention_path(const torch::Tensor& q, double dropout_p, AttentionKind kind);

// The slow, obvious version (explicit mask built per call, float64-friendly); tests compare
// `attention` against it.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
