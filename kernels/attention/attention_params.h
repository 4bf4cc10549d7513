#pragma once
// Plain-old-data parameters of the fused CUDA attention (flash_attention.cu). Shared by the kernel
// file and its thin LibTorch binding (src/ops/cuda/attention_cuda.cpp); no torch or CUDA header.
#include <cstdint>

namespace codex::kernels {

enum class AttnDType : int32_t { F16 = 0, BF16 = 1 };

// Layouts are contiguous, row-major: q, out, dout, dq (B, H, Tq, D); k, v, dk, dv (B, H, Tk, D);
// lse, delta (B, H, Tq) float; key_mask (B, Tk) uint8 (1 = attend, 0 = padding) or null.
struct AttnParams {
  int32_t B, H, Tq, Tk, D;   // D: 64 or 128
  float scale;               // scores = scale * q k^T
  int32_t causal;            // query i sees keys j <= (Tk - Tq) + i
  AttnDType dtype;
  const void* q;
  const void* k;
  const void* v;
  const uint8_t* key_mask;
  void* out;
  float* lse;                // log-sum-exp per row (natural log); +inf: the row saw no key
  // backward
  const void* dout;
  float* delta;              // workspace (B, H, Tq): rowsum(dout * out)
  float* pad_dout;           // workspace (B, H, D): sum of dout over rows that saw no key
  float* dq_accum;           // workspace (B, H, Tq, D) float, zeroed by the launcher
  void* dq;
  void* dk;
  void* dv;
};

// Both return 0 on success, else a cudaError_t value; `stream` is a cudaStream_t.
int attention_forward_cuda(const AttnParams& p, void* stream);
int attention_backward_cuda(const AttnParams& p, void* stream);
// Dynamic shared memory the kernels need (bytes), for the binding's checks.
int attention_forward_smem(int D);
int attention_backward_smem(int D);

}  // namespace codex::kernels
