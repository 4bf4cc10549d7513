#pragma once
// Plain-old-data parameters of the fused log-prob kernels (logprob.cu); shared with the binding in
// src/ops/logprob.cpp. No torch or CUDA header.
#include <cstdint>

namespace codex::kernels {

// One chunk of raw float logits z = h W^T (rows x V, contiguous); x = z * inv_temp.
struct LogprobParams {
  int32_t rows, V;
  float inv_temp;
  float* logits;            // forward: read; backward: overwritten with d loss / d z
  const int64_t* targets;   // (rows)
  float* logp;              // forward out: x_t - lse
  float* lse;               // forward out / backward in
  float* entropy;           // forward out / backward in; null: not wanted (and g_entropy null)
  const float* g_logp;      // backward: upstream gradient of logp (rows)
  const float* g_entropy;   // backward: of the entropy (rows), or null
};

// 0 on success, else a cudaError_t value; `stream` is a cudaStream_t.
int logprob_forward_cuda(const LogprobParams& p, void* stream);
int logprob_backward_cuda(const LogprobParams& p, void* stream);

}  // namespace codex::kernels
