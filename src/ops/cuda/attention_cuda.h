#pragma once
// Thin LibTorch binding of the fused CUDA attention (kernels/attention/flash_attention.cu).
// Compiled only in CUDA builds (CODEX_WITH_CUDA_KERNELS); ops/attention.cpp dispatches to it.
#include <torch/torch.h>

#include "ops/attention.h"

namespace codex {

// Fills what choose_cuda_attention() needs to know of `device` (compute capability, opt-in shared
// memory per block) and of the kernel at `head_dim` (the shared memory its forward and backward
// launch with); marks the kernel as built.
void describe_cuda_device(const torch::Device& device, int64_t head_dim, CudaAttentionCase& c);
// The whole case for q, k, v (dtypes, shapes, whether a backward will run) with the device's
// facts (ops/attention.cpp).
CudaAttentionCase describe_cuda_case(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     double dropout_p);
// Same contract as codex::attention (causal offset Tk - Tq, key_mask (B, Tk) bool), no dropout;
// differentiable w.r.t. q, k, v. Refuses (c10::Error) a case choose_cuda_attention() calls unsafe.
// Runs on q's device (a device guard), whatever the caller's current device.
torch::Tensor attention_fused_cuda(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
