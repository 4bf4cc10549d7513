#pragma once
// The one attention entry point every model path goes through. The reference below is plain
// LibTorch ops (CPU and GPU); a fused CUDA kernel plugs in behind the same signature later.
#include <torch/torch.h>

namespace codex {

// Scaled dot-product attention, softmax(q k^T / sqrt(D)) v.
//   q (B, H, Tq, D); k, v (B, H, Tk, D) with Tk >= Tq  ->  (B, H, Tq, D)
// causal: query i (0-based within q) attends keys j <= past_len + i, where past_len = Tk - Tq
//   (the KV-cache offset: q holds the last Tq positions of the Tk keys).
// key_mask (B, Tk) bool, optional: false marks padding keys no query may attend.
// A query row whose keys are all masked (a left-padding position) gets a uniform average
// instead of NaN; callers ignore those rows.
// dropout_p > 0 drops attention probabilities (training only).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        bool causal, const torch::Tensor& key_mask = {}, double dropout_p = 0.0);

// The slow, obvious version (explicit mask built per call, float64-friendly); tests compare
// `attention` against it.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
