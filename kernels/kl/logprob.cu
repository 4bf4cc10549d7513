// Fused log-prob / entropy of sampled tokens over a chunk of logits, one block per row, one pass
// over the row (online logsumexp: running max m, s = sum e^(x - m), t = sum e^(x - m) x), so the
// logits are read once and no probabilities are written; the backward pass reads the row once and
// writes its gradient in place:
//   logp = x_t - lse,  H = lse - t / s,  dz_j = inv_temp ([j = t] g1 - p_j (g1 + g2 (x_j - lse + H))).
// Bandwidth bound: the figure of merit is bytes moved / time (scripts/gpu_check.sh).
#include <cuda_runtime.h>
#include <math_constants.h>

#include <cstdint>

#include "logprob_params.h"

namespace codex::kernels {
namespace {

constexpr int NT = 256;

struct Stats {
  float m, s, t;
};

__device__ __forceinline__ Stats merge(Stats a, Stats b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -CUDART_INF_F) return {m, 0.f, 0.f};
  const float ea = a.m == -CUDART_INF_F ? 0.f : __expf(a.m - m), eb = b.m == -CUDART_INF_F ? 0.f : __expf(b.m - m);
  return {m, a.s * ea + b.s * eb, a.t * ea + b.t * eb};
}

__device__ __forceinline__ Stats push(Stats a, float x) {
  if (x > a.m) {
    const float e = a.m == -CUDART_INF_F ? 0.f : __expf(a.m - x);
    return {x, a.s * e + 1.f, a.t * e + x};
  }
  const float e = __expf(x - a.m);
  return {a.m, a.s + e, a.t + e * x};
}

__global__ void __launch_bounds__(NT) logprob_fwd_kernel(LogprobParams p) {
  const int row = blockIdx.x;
  const float* z = p.logits + static_cast<size_t>(row) * p.V;
  Stats st{-CUDART_INF_F, 0.f, 0.f};
  const bool vec = (p.V % 4 == 0);
  if (vec) {
    const float4* z4 = reinterpret_cast<const float4*>(z);
    for (int j = threadIdx.x; j < p.V / 4; j += NT) {
      const float4 v = z4[j];
      st = push(st, v.x * p.inv_temp);
      st = push(st, v.y * p.inv_temp);
      st = push(st, v.z * p.inv_temp);
      st = push(st, v.w * p.inv_temp);
    }
  } else {
    for (int j = threadIdx.x; j < p.V; j += NT) st = push(st, z[j] * p.inv_temp);
  }
  for (int o = 16; o > 0; o >>= 1) {
    Stats other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o),
                __shfl_xor_sync(0xffffffffu, st.t, o)};
    st = merge(st, other);
  }
  __shared__ Stats warp_stats[NT / 32];
  if (threadIdx.x % 32 == 0) warp_stats[threadIdx.x / 32] = st;
  __syncthreads();
  if (threadIdx.x == 0) {
    Stats all = warp_stats[0];
    for (int w = 1; w < NT / 32; ++w) all = merge(all, warp_stats[w]);
    const float lse = all.m + logf(all.s);
    p.lse[row] = lse;
    p.logp[row] = z[p.targets[row]] * p.inv_temp - lse;
    if (p.entropy) p.entropy[row] = lse - all.t / all.s;
  }
}

__global__ void __launch_bounds__(NT) logprob_bwd_kernel(LogprobParams p) {
  const int row = blockIdx.x;
  float* z = p.logits + static_cast<size_t>(row) * p.V;
  const float lse = p.lse[row], g1 = p.g_logp[row];
  const float g2 = p.g_entropy ? p.g_entropy[row] : 0.f;
  const float hl = p.g_entropy ? p.entropy[row] - lse : 0.f;  // x - lse + H = x + (H - lse)
  const int64_t target = p.targets[row];
  for (int j = threadIdx.x; j < p.V; j += NT) {
    const float x = z[j] * p.inv_temp;
    float g = -__expf(x - lse) * (g1 + g2 * (x + hl));
    if (j == target) g += g1;
    z[j] = g * p.inv_temp;
  }
}

}  // namespace

int logprob_forward_cuda(const LogprobParams& p, void* stream) {
  if (p.rows == 0) return 0;
  logprob_fwd_kernel<<<p.rows, NT, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

int logprob_backward_cuda(const LogprobParams& p, void* stream) {
  if (p.rows == 0) return 0;
  logprob_bwd_kernel<<<p.rows, NT, 0, static_cast<cudaStream_t>(stream)>>>(p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace codex::kernels
