#pragma once
// The one attention entry point every model path goes through. It dispatches:
//   CUDA tensors -> `auto`: torch's scaled_dot_product_attention on LibTorch >= 2 (its flash /
//                   memory-efficient kernels; the custom kernel has not been measured against it
//                   on a GPU yet: docs/gpu.md), else the custom kernel (kernels/attention/) where
//                   it is safe, else LibTorch ops; `fused`: the custom kernel where safe, else SDPA
//                   or ops. "Safe" is choose_cuda_attention() below: dtypes, head dim, compute
//                   capability >= 8.0 and the shared memory the kernel needs.
//   CPU tensors  -> the fused CPU kernel (ops/cpu/attention_kernel.h; float32/float64), the
//                   default for `auto` and `fused` (docs/perf.md), else LibTorch ops;
//   `model.attention: reference` -> always LibTorch ops (`attention_ops`, kept for checking).
// Dropout on the attention probabilities (training with model.dropout > 0) takes LibTorch ops
// (or SDPA on CUDA): the custom kernels do not drop.
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
#ifdef CODEX_WITH_CUDA_KERNELS
// The custom CUDA kernel (kernels/attention/, via ops/cuda/attention_cuda.h), differentiable w.r.t.
// q, k, v; refuses (c10::Error, naming what is missing) a case choose_cuda_attention() calls unsafe.
torch::Tensor attention_fused_cuda(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                   bool causal, const torch::Tensor& key_mask = {});
#endif
// Which implementation `attention(...)` would run for these inputs: "cuda" (the custom CUDA
// kernel), "sdpa" (torch's scaled_dot_product_attention, CUDA on LibTorch >= 2), "fused" (the
// CPU kernel), "ops". The q-only form assumes k and v like q.
std::string attention_path(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout_p,
                           AttentionKind kind);
std::string attention_path(const torch::Tensor& q, double dropout_p, AttentionKind kind);

// What the CUDA dispatch decides on, as plain facts so the rule is testable without a GPU.
struct CudaAttentionCase {
  bool one_dtype_and_device = false;  // q, k, v share dtype and device
  bool half_or_bf16 = false;
  int64_t head_dim = 0, batch_heads = 0;
  bool needs_backward = false;        // grad mode on and q, k or v requires grad
  double dropout_p = 0;
  int cc_major = 0;                   // compute capability of the device
  int64_t smem_optin = 0;             // max dynamic shared memory per block (opt-in), bytes
  int64_t smem_forward = 0, smem_backward = 0;  // what the kernel needs at this head dim
  bool kernel_built = false;          // a CUDA build (CODEX_WITH_CUDA_KERNELS)
  bool sdpa_available = false;        // LibTorch >= 2
};
// "cuda", "sdpa" or "ops" for a CUDA case (Reference never reaches here). The custom kernel runs
// only where it is safe: fp16/bf16 q, k, v of one dtype, head dim 64 or 128, B*H <= 65535 (grid
// limit), sm_80 or newer (bf16 tensor-core MMA), the forward's (and, when a backward will run,
// the backward's) shared memory within the device's opt-in limit (D = 128 backward needs more
// than sm_86/sm_89 have), no dropout.
const char* choose_cuda_attention(const CudaAttentionCase& c, AttentionKind kind);

// The slow, obvious version (explicit mask built per call, float64-friendly); tests compare
// `attention` against it.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  bool causal, const torch::Tensor& key_mask = {});

}  // namespace codex
