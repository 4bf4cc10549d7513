#pragma once
// Thin LibTorch binding of the fused CUDA attention (kernels/attention/flash_attention.cu).
// Compiled only in CUDA builds (CODEX_WITH_CUDA_KERNELS). It knows nothing of the dispatch:
// ops/attention.cpp decides when the kernel is safe (choose_cuda_attention) from the facts this
// file reports, and its attention_fused_cuda() checks them before calling attention_cuda_launch().
#include <torch/torch.h>

namespace codex {

// What the dispatch needs to know of a device and of the kernel at a head dim.
struct CudaKernelFacts {
  int cc_major = 0;                             // compute capability of the device
  int64_t smem_optin = 0;                       // max dynamic shared memory per block (opt-in), bytes
  int64_t smem_forward = 0, smem_backward = 0;  // what the kernel launches with at this head dim (0: no case)
};
CudaKernelFacts cuda_kernel_facts(const torch::Device& device, int64_t head_dim);

// The kernel itself, on q's device (a device guard): same contract as codex::attention (causal
// offset Tk - Tq, key_mask (B, Tk) bool), no dropout; differentiable w.r.t. q, k, v. Unchecked:
// call attention_fused_cuda (ops/attention.h), which refuses the cases the kernel cannot run.
torch::Tensor attention_cuda_launch(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
