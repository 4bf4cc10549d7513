// Fused causal attention for CUDA, FlashAttention-2's scheme, fp16/bf16 inputs with fp32
// accumulation on tensor cores (WMMA 16x16x16, sm_80+). Head dim 64 or 128.
//
// Forward: one block (4 warps) per (query tile of 64 rows, batch*head). Key/value tiles of 64
// stream through shared memory; each warp owns 16 query rows: S = Q K^T (tensor cores), masking
// (causal limit, key padding), online softmax (running max m and sum l per row), O = O*alpha + P V
// (tensor cores); tiles above the causal diagonal are never visited. Writes O and the row
// log-sum-exp m + log l (+inf for a row that saw no key: its output is the mean of every value
// row, as the LibTorch reference's uniform softmax over a fully masked row).
//
// Backward: a preprocessing kernel (delta_i = rowsum(dO_i * O_i)), then one block per (key tile,
// batch*head) that walks the query tiles that can see it, recomputing P = exp(scale S - lse)
// from the saved lse: dV += P^T dO, dP = dO V^T, dS = scale P (dP - delta), dK += dS^T Q (dK and
// dV stay in register fragments), dQ += dS K (atomically added into an fp32 buffer, converted by
// a last kernel). No torch header here: the binding is src/ops/cuda/attention_cuda.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math_constants.h>
#include <mma.h>

#include <cstdint>

#include "attention_params.h"

namespace codex::kernels {
namespace {

using namespace nvcuda;

constexpr int BM = 64;        // query rows per tile
constexpr int BN = 64;        // keys per tile
constexpr int NWARPS = 4;     // each warp: 16 rows (query rows or key rows)
constexpr int NTHREADS = 32 * NWARPS;

template <typename T>
__device__ __forceinline__ float to_f(T x);
template <>
__device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// May query row i (absolute, < Tq) see key j (absolute)?
__device__ __forceinline__ bool visible(const AttnParams& p, const uint8_t* mask, int i, int j) {
  if (i >= p.Tq || j >= p.Tk) return false;
  if (p.causal && j > (p.Tk - p.Tq) + i) return false;
  return mask == nullptr || mask[j] != 0;
}

template <typename T>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int row0, int nrows_total, int D, int tid) {
  // dst: 64 x D; rows past nrows_total zero.
  for (int x = tid; x < 64 * D; x += NTHREADS) {
    const int r = x / D, c = x - r * D;
    dst[x] = (row0 + r < nrows_total) ? src[static_cast<size_t>(row0 + r) * D + c] : from_f<T>(0.f);
  }
}

template <typename T, int D>
constexpr int fwd_smem_bytes() {
  return (BM * D + 2 * BN * D + BM * BN) * static_cast<int>(sizeof(T)) + (BM * BN + BM * D + 2 * BM) * 4;
}

template <typename T, int D>
__global__ void __launch_bounds__(NTHREADS) attn_fwd_kernel(AttnParams p) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* sQ = reinterpret_cast<T*>(smem);          // BM x D
  T* sK = sQ + BM * D;                          // BN x D
  T* sV = sK + BN * D;                          // BN x D
  T* sP = sV + BN * D;                          // BM x BN
  float* sS = reinterpret_cast<float*>(sP + BM * BN);  // BM x BN
  float* sO = sS + BM * BN;                     // BM x D
  float* sM = sO + BM * D;                      // BM
  float* sL = sM + BM;                          // BM

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int i0 = blockIdx.x * BM, bh = blockIdx.y, b = bh / p.H;
  const size_t qoff = static_cast<size_t>(bh) * p.Tq * D, koff = static_cast<size_t>(bh) * p.Tk * D;
  const T* q = static_cast<const T*>(p.q) + qoff;
  const T* k = static_cast<const T*>(p.k) + koff;
  const T* v = static_cast<const T*>(p.v) + koff;
  const uint8_t* mask = p.key_mask ? p.key_mask + static_cast<size_t>(b) * p.Tk : nullptr;
  T* out = static_cast<T*>(p.out) + qoff;
  float* lse = p.lse + static_cast<size_t>(bh) * p.Tq;

  load_tile(sQ, q, i0, p.Tq, D, tid);
  for (int x = tid; x < BM * D; x += NTHREADS) sO[x] = 0.f;
  for (int r = tid; r < BM; r += NTHREADS) {
    sM[r] = -CUDART_INF_F;
    sL[r] = 0.f;
  }
  __syncthreads();

  const int last_row = min(i0 + BM, p.Tq) - 1;
  const int jend = p.causal ? min(p.Tk, (p.Tk - p.Tq) + last_row + 1) : p.Tk;
  for (int j0 = 0; j0 < jend; j0 += BN) {
    load_tile(sK, k, j0, p.Tk, D, tid);
    load_tile(sV, v, j0, p.Tk, D, tid);
    __syncthreads();
    {  // S = Q K^T for this warp's 16 rows
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[BN / 16];
#pragma unroll
      for (int f = 0; f < BN / 16; ++f) wmma::fill_fragment(acc[f], 0.f);
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::load_matrix_sync(a, sQ + warp * 16 * D + kk, D);
#pragma unroll
        for (int f = 0; f < BN / 16; ++f) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bt;
          wmma::load_matrix_sync(bt, sK + f * 16 * D + kk, D);
          wmma::mma_sync(acc[f], a, bt, acc[f]);
        }
      }
#pragma unroll
      for (int f = 0; f < BN / 16; ++f)
        wmma::store_matrix_sync(sS + warp * 16 * BN + f * 16, acc[f], BN, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax, one row at a time; lane handles columns lane and lane + 32.
    for (int rr = 0; rr < 16; ++rr) {
      const int r = warp * 16 + rr, i = i0 + r;
      const float s0 = visible(p, mask, i, j0 + lane) ? sS[r * BN + lane] * p.scale : -CUDART_INF_F;
      const float s1 = visible(p, mask, i, j0 + lane + 32) ? sS[r * BN + lane + 32] * p.scale : -CUDART_INF_F;
      const float m_old = sM[r];
      const float m_new = fmaxf(m_old, warp_max(fmaxf(s0, s1)));
      float p0 = 0.f, p1 = 0.f, alpha = 1.f;
      if (m_new != -CUDART_INF_F) {
        p0 = __expf(s0 - m_new);
        p1 = __expf(s1 - m_new);
        alpha = m_old == -CUDART_INF_F ? 0.f : __expf(m_old - m_new);
      }
      const float sum = warp_sum(p0 + p1);
      sP[r * BN + lane] = from_f<T>(p0);
      sP[r * BN + lane + 32] = from_f<T>(p1);
      for (int c = lane; c < D; c += 32) sO[r * D + c] *= alpha;
      __syncwarp();
      if (lane == 0) {
        sM[r] = m_new;
        sL[r] = sL[r] * alpha + sum;
      }
    }
    __syncwarp();
    // O += P V for this warp's 16 rows.
#pragma unroll
    for (int f = 0; f < D / 16; ++f) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
      wmma::load_matrix_sync(o, sO + warp * 16 * D + f * 16, D, wmma::mem_row_major);
#pragma unroll
      for (int kk = 0; kk < BN; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
        wmma::load_matrix_sync(a, sP + warp * 16 * BN + kk, BN);
        wmma::load_matrix_sync(bv, sV + kk * D + f * 16, D);
        wmma::mma_sync(o, a, bv, o);
      }
      wmma::store_matrix_sync(sO + warp * 16 * D + f * 16, o, D, wmma::mem_row_major);
    }
    __syncthreads();  // sK / sV are reloaded next
  }
  for (int rr = 0; rr < 16; ++rr) {
    const int r = warp * 16 + rr, i = i0 + r;
    if (i >= p.Tq) break;
    const float l = sL[r];
    T* o = out + static_cast<size_t>(i) * D;
    if (l > 0.f) {
      const float inv = 1.f / l;
      for (int c = lane; c < D; c += 32) o[c] = from_f<T>(sO[r * D + c] * inv);
      if (lane == 0) lse[i] = sM[r] + logf(l);
    } else {  // the row saw no key: mean of every value row
      for (int c = lane; c < D; c += 32) {
        float acc = 0.f;
        for (int j = 0; j < p.Tk; ++j) acc += to_f(v[static_cast<size_t>(j) * D + c]);
        o[c] = from_f<T>(acc / static_cast<float>(p.Tk));
      }
      if (lane == 0) lse[i] = CUDART_INF_F;
    }
  }
}

// delta_i = sum_d dO_id O_id; rows that saw no key add their dO into pad_dout. One warp per row.
template <typename T, int D>
__global__ void __launch_bounds__(NTHREADS) attn_bwd_pre_kernel(AttnParams p) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const size_t row = static_cast<size_t>(blockIdx.x) * NWARPS + warp;
  const size_t rows = static_cast<size_t>(p.B) * p.H * p.Tq;
  if (row >= rows) return;
  const T* o = static_cast<const T*>(p.out) + row * D;
  const T* dout = static_cast<const T*>(p.dout) + row * D;
  float s = 0.f;
  for (int c = lane; c < D; c += 32) s += to_f(o[c]) * to_f(dout[c]);
  s = warp_sum(s);
  if (lane == 0) p.delta[row] = s;
  if (p.lse[row] == CUDART_INF_F) {
    const size_t bh = row / p.Tq;
    for (int c = lane; c < D; c += 32) atomicAdd(p.pad_dout + bh * D + c, to_f(dout[c]));
  }
}

template <typename T, int D>
constexpr int bwd_smem_bytes() {
  return (2 * BN * D + 2 * BM * D + 2 * BM * BN) * static_cast<int>(sizeof(T)) +
         (2 * BM * BN + BM * D + 2 * BM) * 4;
}

template <typename T, int D>
__global__ void __launch_bounds__(NTHREADS) attn_bwd_kernel(AttnParams p) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* sK = reinterpret_cast<T*>(smem);   // BN x D
  T* sV = sK + BN * D;                   // BN x D
  T* sQ = sV + BN * D;                   // BM x D
  T* sdO = sQ + BM * D;                  // BM x D
  T* sP = sdO + BM * D;                  // BM x BN
  T* sdS = sP + BM * BN;                 // BM x BN
  float* sS = reinterpret_cast<float*>(sdS + BM * BN);  // BM x BN: S, then dP
  float* sPf = sS + BM * BN;             // BM x BN
  float* sF = sPf + BM * BN;             // BM x D: dQ partials; dK, dV at the end
  float* sLse = sF + BM * D;             // BM
  float* sDelta = sLse + BM;             // BM

  const int tid = threadIdx.x, warp = tid / 32;
  const int j0 = blockIdx.x * BN, bh = blockIdx.y, b = bh / p.H;
  const int past = p.Tk - p.Tq;
  const size_t qoff = static_cast<size_t>(bh) * p.Tq * D, koff = static_cast<size_t>(bh) * p.Tk * D;
  const T* q = static_cast<const T*>(p.q) + qoff;
  const T* k = static_cast<const T*>(p.k) + koff;
  const T* v = static_cast<const T*>(p.v) + koff;
  const T* dout = static_cast<const T*>(p.dout) + qoff;
  const float* lse = p.lse + static_cast<size_t>(bh) * p.Tq;
  const float* delta = p.delta + static_cast<size_t>(bh) * p.Tq;
  float* dq_accum = p.dq_accum + qoff;
  const uint8_t* mask = p.key_mask ? p.key_mask + static_cast<size_t>(b) * p.Tk : nullptr;

  load_tile(sK, k, j0, p.Tk, D, tid);
  load_tile(sV, v, j0, p.Tk, D, tid);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> dk[D / 16], dv[D / 16];
#pragma unroll
  for (int f = 0; f < D / 16; ++f) {
    wmma::fill_fragment(dk[f], 0.f);
    wmma::fill_fragment(dv[f], 0.f);
  }

  const int ifirst = p.causal ? max(0, j0 - past) : 0;
  for (int i0 = (ifirst / BM) * BM; i0 < p.Tq; i0 += BM) {
    load_tile(sQ, q, i0, p.Tq, D, tid);
    load_tile(sdO, dout, i0, p.Tq, D, tid);
    for (int r = tid; r < BM; r += NTHREADS) {
      sLse[r] = i0 + r < p.Tq ? lse[i0 + r] : CUDART_INF_F;
      sDelta[r] = i0 + r < p.Tq ? delta[i0 + r] : 0.f;
    }
    __syncthreads();
    {  // S = Q K^T (warp: 16 query rows) and dP = dO V^T
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> s[BN / 16], dp[BN / 16];
#pragma unroll
      for (int f = 0; f < BN / 16; ++f) {
        wmma::fill_fragment(s[f], 0.f);
        wmma::fill_fragment(dp[f], 0.f);
      }
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> aq, ado;
        wmma::load_matrix_sync(aq, sQ + warp * 16 * D + kk, D);
        wmma::load_matrix_sync(ado, sdO + warp * 16 * D + kk, D);
#pragma unroll
        for (int f = 0; f < BN / 16; ++f) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bk, bv;
          wmma::load_matrix_sync(bk, sK + f * 16 * D + kk, D);
          wmma::load_matrix_sync(bv, sV + f * 16 * D + kk, D);
          wmma::mma_sync(s[f], aq, bk, s[f]);
          wmma::mma_sync(dp[f], ado, bv, dp[f]);
        }
      }
#pragma unroll
      for (int f = 0; f < BN / 16; ++f) {
        wmma::store_matrix_sync(sPf + warp * 16 * BN + f * 16, s[f], BN, wmma::mem_row_major);
        wmma::store_matrix_sync(sS + warp * 16 * BN + f * 16, dp[f], BN, wmma::mem_row_major);
      }
    }
    __syncthreads();
    // P = exp(scale S - lse) (0 where masked), dS = scale P (dP - delta).
    for (int x = tid; x < BM * BN; x += NTHREADS) {
      const int r = x / BN, c = x - r * BN;
      const float pr = visible(p, mask, i0 + r, j0 + c) ? __expf(sPf[x] * p.scale - sLse[r]) : 0.f;
      sP[x] = from_f<T>(pr);
      sdS[x] = from_f<T>(p.scale * pr * (sS[x] - sDelta[r]));
    }
    __syncthreads();
    // dV += P^T dO, dK += dS^T Q (warp: 16 key rows); dQ partial = dS K (warp: 16 query rows).
#pragma unroll
    for (int kk = 0; kk < BM; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major> apt, adst;
      wmma::load_matrix_sync(apt, sP + kk * BN + warp * 16, BN);
      wmma::load_matrix_sync(adst, sdS + kk * BN + warp * 16, BN);
#pragma unroll
      for (int f = 0; f < D / 16; ++f) {
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bdo, bq;
        wmma::load_matrix_sync(bdo, sdO + kk * D + f * 16, D);
        wmma::load_matrix_sync(bq, sQ + kk * D + f * 16, D);
        wmma::mma_sync(dv[f], apt, bdo, dv[f]);
        wmma::mma_sync(dk[f], adst, bq, dk[f]);
      }
    }
#pragma unroll
    for (int f = 0; f < D / 16; ++f) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> dq;
      wmma::fill_fragment(dq, 0.f);
#pragma unroll
      for (int kk = 0; kk < BN; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> ads;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bk;
        wmma::load_matrix_sync(ads, sdS + warp * 16 * BN + kk, BN);
        wmma::load_matrix_sync(bk, sK + kk * D + f * 16, D);
        wmma::mma_sync(dq, ads, bk, dq);
      }
      wmma::store_matrix_sync(sF + warp * 16 * D + f * 16, dq, D, wmma::mem_row_major);
    }
    __syncthreads();
    for (int x = tid; x < BM * D; x += NTHREADS) {
      const int r = x / D;
      if (i0 + r < p.Tq) atomicAdd(dq_accum + static_cast<size_t>(i0) * D + x, sF[x]);
    }
    __syncthreads();  // sQ, sdO, sF reused by the next query tile
  }

  // dV (+ the share of rows that saw no key: dO / Tk each), then dK.
  T* dvg = static_cast<T*>(p.dv) + koff;
  T* dkg = static_cast<T*>(p.dk) + koff;
  const float* pad = p.pad_dout + static_cast<size_t>(bh) * D;
#pragma unroll
  for (int f = 0; f < D / 16; ++f) wmma::store_matrix_sync(sF + warp * 16 * D + f * 16, dv[f], D, wmma::mem_row_major);
  __syncthreads();
  for (int x = tid; x < BN * D; x += NTHREADS) {
    const int r = x / D, c = x - r * D;
    if (j0 + r < p.Tk) dvg[static_cast<size_t>(j0) * D + x] = from_f<T>(sF[x] + pad[c] / static_cast<float>(p.Tk));
  }
  __syncthreads();
#pragma unroll
  for (int f = 0; f < D / 16; ++f) wmma::store_matrix_sync(sF + warp * 16 * D + f * 16, dk[f], D, wmma::mem_row_major);
  __syncthreads();
  for (int x = tid; x < BN * D; x += NTHREADS) {
    const int r = x / D;
    if (j0 + r < p.Tk) dkg[static_cast<size_t>(j0) * D + x] = from_f<T>(sF[x]);
  }
}

template <typename T>
__global__ void convert_kernel(const float* __restrict src, T* __restrict dst, size_t n) {
  for (size_t x = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; x < n;
       x += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[x] = from_f<T>(src[x]);
}

template <typename T, int D>
cudaError_t forward_launch(const AttnParams& p, cudaStream_t stream) {
  constexpr int smem = fwd_smem_bytes<T, D>();
  cudaError_t e = cudaFuncSetAttribute(attn_fwd_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  const dim3 grid((p.Tq + BM - 1) / BM, p.B * p.H);
  attn_fwd_kernel<T, D><<<grid, NTHREADS, smem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t backward_launch(const AttnParams& p, cudaStream_t stream) {
  const size_t rows = static_cast<size_t>(p.B) * p.H * p.Tq;
  cudaError_t e = cudaMemsetAsync(p.dq_accum, 0, rows * D * sizeof(float), stream);
  if (e == cudaSuccess) e = cudaMemsetAsync(p.pad_dout, 0, static_cast<size_t>(p.B) * p.H * D * sizeof(float), stream);
  if (e != cudaSuccess) return e;
  attn_bwd_pre_kernel<T, D><<<static_cast<unsigned>((rows + NWARPS - 1) / NWARPS), NTHREADS, 0, stream>>>(p);
  constexpr int smem = bwd_smem_bytes<T, D>();
  e = cudaFuncSetAttribute(attn_bwd_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  const dim3 grid((p.Tk + BN - 1) / BN, p.B * p.H);
  attn_bwd_kernel<T, D><<<grid, NTHREADS, smem, stream>>>(p);
  const size_t n = rows * D;
  const unsigned blocks = static_cast<unsigned>(n / 256 + 1 < 65535 ? n / 256 + 1 : 65535);
  convert_kernel<T><<<blocks, 256, 0, stream>>>(p.dq_accum, static_cast<T*>(p.dq), n);
  return cudaGetLastError();
}

}  // namespace

int attention_forward_cuda(const AttnParams& p, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (p.Tq == 0) return 0;
  const bool bf = p.dtype == AttnDType::BF16;
  if (p.D == 64) return bf ? forward_launch<__nv_bfloat16, 64>(p, s) : forward_launch<__half, 64>(p, s);
  if (p.D == 128) return bf ? forward_launch<__nv_bfloat16, 128>(p, s) : forward_launch<__half, 128>(p, s);
  return static_cast<int>(cudaErrorInvalidValue);
}

int attention_backward_cuda(const AttnParams& p, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (p.Tq == 0) return 0;
  const bool bf = p.dtype == AttnDType::BF16;
  if (p.D == 64) return bf ? backward_launch<__nv_bfloat16, 64>(p, s) : backward_launch<__half, 64>(p, s);
  if (p.D == 128) return bf ? backward_launch<__nv_bfloat16, 128>(p, s) : backward_launch<__half, 128>(p, s);
  return static_cast<int>(cudaErrorInvalidValue);
}

int attention_forward_smem(int D) { return D == 64 ? fwd_smem_bytes<__half, 64>() : fwd_smem_bytes<__half, 128>(); }
int attention_backward_smem(int D) { return D == 64 ? bwd_smem_bytes<__half, 64>() : bwd_smem_bytes<__half, 128>(); }

}  // namespace codex::kernels
