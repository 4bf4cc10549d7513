#pragma once
// Thin LibTorch binding of the fused CUDA attention (kernels/attention/flash_attention.cu).
// Compiled only in CUDA builds (CODEX_WITH_CUDA_KERNELS); ops/attention.cpp dispatches to it.
#include <torch/torch.h>

namespace codex {

// fp16/bf16 CUDA tensors, head dim 64 or 128 (the kernel's cases).
bool attention_cuda_supported(const torch::Tensor& q);
// Same contract as codex::attention (causal offset Tk - Tq, key_mask (B, Tk) bool), no dropout;
// differentiable w.r.t. q, k, v.
torch::Tensor attention_fused_cuda(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
