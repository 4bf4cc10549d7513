// The kernel body, included once per instruction-set variant with CODEX_ATTN_ISA naming the
// namespace (kernels_{generic,avx2,avx512}.cpp). Nothing from the standard library that the
// compiler could emit as a shared out-of-line copy is used here (no std::vector, std::min, ...):
// a copy compiled with -mavx512f must never be picked by the linker for code running elsewhere.
#ifndef CODEX_ATTN_ISA
#error "define CODEX_ATTN_ISA before including attention_kernel_impl.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "ops/cpu/attention_kernel.h"

namespace codex::cpu::CODEX_ATTN_ISA {
namespace {

constexpr int64_t BQ = kAttnBlockQ, BK = kAttnBlockK;

template <typename T>
inline T vmax(T a, T b) { return a < b ? b : a; }
template <typename T>
inline T vmin(T a, T b) { return b < a ? b : a; }
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a < b ? b : a; }

template <typename T>
constexpr T kInf = std::numeric_limits<T>::infinity();

// exp for float, branch-free so loops over it vectorise: Cody-Waite reduction x = n ln2 + r,
// a degree-6 polynomial for e^r (Cephes' expf coefficients), 2^n built in the exponent bits.
// ~1 ulp; exactly 0 below -87.3 (and for -inf).
inline float vexp(float x) {
  const float xc = vmin(vmax(x, -87.33654f), 88.0f);
  const float t = xc * 1.44269504088896341f + 12582912.0f;  // round(x / ln2) via 1.5 * 2^23
  const float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500E-4f;
  y = y * r + 1.3981999507E-3f;
  y = y * r + 8.3334519073E-3f;
  y = y * r + 4.1665795894E-2f;
  y = y * r + 1.6666665459E-1f;
  y = y * r + 5.0000001201E-1f;
  y = y * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float p2;
  std::memcpy(&p2, &bits, sizeof p2);
  const float res = y * p2;
  return x < -87.33654f ? 0.0f : res;
}
inline double vexp(double x) { return std::exp(x); }  // float64 is for tests: exact libm

// s[i * BK + j] = sum_d a[i * D + d] * bt[d * BK + j] for i < nq, j < BK (bt: D x BK, zero-padded).
template <typename T, int DC>
inline void tile_scores(const T* __restrict a, const T* __restrict bt, T* __restrict s, int64_t nq, int64_t Dr) {
  const int64_t D = DC > 0 ? DC : Dr;
  for (int64_t i = 0; i < nq; ++i) {
    T r[BK];
    for (int64_t j = 0; j < BK; ++j) r[j] = 0;
    const T* ai = a + i * D;
    for (int64_t d = 0; d < D; ++d) {
      const T ad = ai[d];
      const T* b = bt + d * BK;
      for (int64_t j = 0; j < BK; ++j) r[j] += ad * b[j];
    }
    T* si = s + i * BK;
    for (int64_t j = 0; j < BK; ++j) si[j] = r[j];
  }
}

// y[d] += sum_n c[n * cs] * x[n * xs + d], d < D. Zero coefficients (masked entries) skipped.
template <typename T, int DC>
inline void accumulate_rows(T* __restrict y, const T* __restrict c, int64_t cs, int64_t nc, const T* __restrict x,
                            int64_t xs, int64_t Dr) {
  if constexpr (DC > 0) {
    T acc[DC];
    for (int64_t d = 0; d < DC; ++d) acc[d] = y[d];
    for (int64_t n = 0; n < nc; ++n) {
      const T cn = c[n * cs];
      if (cn == T(0)) continue;
      const T* xr = x + n * xs;
      for (int64_t d = 0; d < DC; ++d) acc[d] += cn * xr[d];
    }
    for (int64_t d = 0; d < DC; ++d) y[d] = acc[d];
  } else {
    for (int64_t n = 0; n < nc; ++n) {
      const T cn = c[n * cs];
      if (cn == T(0)) continue;
      const T* xr = x + n * xs;
      for (int64_t d = 0; d < Dr; ++d) y[d] += cn * xr[d];
    }
  }
}

// bt[d * BK + j] = src[j * D + d] for j < nk; columns nk..BK zero.
template <typename T>
inline void transpose_tile(const T* __restrict src, T* __restrict bt, int64_t nk, int64_t D) {
  for (int64_t d = 0; d < D; ++d) {
    T* b = bt + d * BK;
    for (int64_t j = 0; j < nk; ++j) b[j] = src[j * D + d];
    for (int64_t j = nk; j < BK; ++j) b[j] = 0;
  }
}

template <typename T>
inline T row_sum(const T* __restrict x, int64_t n) {
  T part[16];
  for (int u = 0; u < 16; ++u) part[u] = 0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int u = 0; u < 16; ++u) part[u] += x[j + u];
  T s = 0;
  for (; j < n; ++j) s += x[j];
  for (int u = 0; u < 16; ++u) s += part[u];
  return s;
}

// Masks one score tile in place: key padding (bias 0 / -inf) and the causal limit. Tile rows are
// query rows i0 + i, columns keys j0 + j (j < nk).
template <typename T>
inline void mask_tile(T* s, int64_t nq, int64_t nk, const T* bias, bool causal, int64_t past, int64_t i0,
                      int64_t j0) {
  for (int64_t i = 0; i < nq; ++i) {
    T* row = s + i * BK;
    if (bias)
      for (int64_t j = 0; j < nk; ++j) row[j] += bias[j0 + j];
    if (causal) {
      const int64_t first_hidden = past + i0 + i + 1 - j0;  // columns >= this are in the future
      for (int64_t j = imax(first_hidden, 0); j < nk; ++j) row[j] = -kInf<T>;
    }
  }
}

template <typename T, int DC>
void forward_item(const AttentionParams& p, int64_t item, T* scratch) {
  const int64_t D = DC > 0 ? DC : p.D, Tq = p.Tq, Tk = p.Tk, past = Tk - Tq;
  const int64_t nqt = (Tq + BQ - 1) / BQ, bh = item / nqt, i0 = (item % nqt) * BQ, b = bh / p.H;
  const int64_t nq = imin(BQ, Tq - i0);
  const T* q = static_cast<const T*>(p.q) + (bh * Tq + i0) * D;
  const T* k = static_cast<const T*>(p.k) + bh * Tk * D;
  const T* v = static_cast<const T*>(p.v) + bh * Tk * D;
  const T* bias = p.key_bias ? static_cast<const T*>(p.key_bias) + b * Tk : nullptr;
  T* out = static_cast<T*>(p.out) + (bh * Tq + i0) * D;
  T* lse = static_cast<T*>(p.lse) + bh * Tq + i0;
  T* qs = scratch;        // BQ x D, q * scale
  T* kt = qs + BQ * D;    // D x BK
  T* s = kt + D * BK;     // BQ x BK
  T* acc = s + BQ * BK;   // BQ x D
  T* m = acc + BQ * D;    // BQ
  T* l = m + BQ;          // BQ
  const T scale = static_cast<T>(p.scale);
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t d = 0; d < D; ++d) qs[i * D + d] = q[i * D + d] * scale;
    for (int64_t d = 0; d < D; ++d) acc[i * D + d] = 0;
    m[i] = -kInf<T>;
    l[i] = 0;
  }
  const int64_t jend = p.causal ? imin(Tk, past + i0 + nq) : Tk;  // keys any row of the tile sees
  for (int64_t j0 = 0; j0 < jend; j0 += BK) {
    const int64_t nk = imin(BK, jend - j0);
    transpose_tile(k + j0 * D, kt, nk, D);
    tile_scores<T, DC>(qs, kt, s, nq, D);
    mask_tile(s, nq, nk, bias, p.causal, past, i0, j0);
    for (int64_t i = 0; i < nq; ++i) {
      T* row = s + i * BK;
      T mx = -kInf<T>;
      for (int64_t j = 0; j < nk; ++j) mx = vmax(mx, row[j]);
      if (mx == -kInf<T>) continue;  // nothing visible in this tile
      const T mnew = vmax(m[i], mx);
      const T alpha = m[i] == -kInf<T> ? T(0) : vexp(m[i] - mnew);
      for (int64_t j = 0; j < nk; ++j) row[j] = vexp(row[j] - mnew);
      l[i] = l[i] * alpha + row_sum(row, nk);
      m[i] = mnew;
      T* a = acc + i * D;
      if (alpha != T(1))
        for (int64_t d = 0; d < D; ++d) a[d] *= alpha;
      accumulate_rows<T, DC>(a, row, 1, nk, v + j0 * D, D, D);
    }
  }
  for (int64_t i = 0; i < nq; ++i) {
    T* o = out + i * D;
    if (l[i] > 0) {
      const T inv = T(1) / l[i];
      for (int64_t d = 0; d < D; ++d) o[d] = acc[i * D + d] * inv;
      lse[i] = m[i] + std::log(l[i]);
    } else {  // fully masked row: mean of every value row
      for (int64_t d = 0; d < D; ++d) o[d] = 0;
      for (int64_t j = 0; j < Tk; ++j)
        for (int64_t d = 0; d < D; ++d) o[d] += v[j * D + d];
      for (int64_t d = 0; d < D; ++d) o[d] /= static_cast<T>(Tk);
      lse[i] = kInf<T>;
    }
  }
}

template <typename T, int DC>
void backward_item(const AttentionParams& p, int64_t bh, T* scratch) {
  const int64_t D = DC > 0 ? DC : p.D, Tq = p.Tq, Tk = p.Tk, past = Tk - Tq, b = bh / p.H;
  const T* q = static_cast<const T*>(p.q) + bh * Tq * D;
  const T* k = static_cast<const T*>(p.k) + bh * Tk * D;
  const T* v = static_cast<const T*>(p.v) + bh * Tk * D;
  const T* o = static_cast<const T*>(p.out) + bh * Tq * D;
  const T* dout = static_cast<const T*>(p.dout) + bh * Tq * D;
  const T* lse = static_cast<const T*>(p.lse) + bh * Tq;
  const T* bias = p.key_bias ? static_cast<const T*>(p.key_bias) + b * Tk : nullptr;
  T* dq = static_cast<T*>(p.dq) + bh * Tq * D;
  T* dk = static_cast<T*>(p.dk) + bh * Tk * D;
  T* dv = static_cast<T*>(p.dv) + bh * Tk * D;
  T* qs = scratch;         // Tq x D, q * scale
  T* dqa = qs + Tq * D;    // Tq x D, sum_j dS k (scaled at the end)
  T* di = dqa + Tq * D;    // Tq: rowsum(dO * O)
  T* kt = di + Tq;         // D x BK
  T* vt = kt + D * BK;     // D x BK
  T* s = vt + D * BK;      // BQ x BK: P
  T* dp = s + BQ * BK;     // BQ x BK: dP, then dS
  T* dka = dp + BQ * BK;   // BK x D
  T* dva = dka + BK * D;   // BK x D
  T* pad = dva + BK * D;   // D: sum of dO over fully masked rows
  const T scale = static_cast<T>(p.scale);
  for (int64_t d = 0; d < D; ++d) pad[d] = 0;
  bool any_pad = false;
  for (int64_t i = 0; i < Tq; ++i) {
    T sum = 0;
    for (int64_t d = 0; d < D; ++d) {
      qs[i * D + d] = q[i * D + d] * scale;
      dqa[i * D + d] = 0;
      sum += dout[i * D + d] * o[i * D + d];
    }
    di[i] = sum;
    if (lse[i] == kInf<T>) {
      any_pad = true;
      for (int64_t d = 0; d < D; ++d) pad[d] += dout[i * D + d];
    }
  }
  for (int64_t j0 = 0; j0 < Tk; j0 += BK) {
    const int64_t nk = imin(BK, Tk - j0);
    transpose_tile(k + j0 * D, kt, nk, D);
    transpose_tile(v + j0 * D, vt, nk, D);
    for (int64_t x = 0; x < nk * D; ++x) dka[x] = dva[x] = 0;
    // First query row that sees key j0: past + i >= j0.
    const int64_t ifirst = p.causal ? imax(0, j0 - past) : 0;
    for (int64_t i0 = (ifirst / BQ) * BQ; i0 < Tq; i0 += BQ) {
      const int64_t nq = imin(BQ, Tq - i0);
      tile_scores<T, DC>(qs + i0 * D, kt, s, nq, D);
      mask_tile(s, nq, nk, bias, p.causal, past, i0, j0);
      for (int64_t i = 0; i < nq; ++i) {
        T* row = s + i * BK;
        const T l = lse[i0 + i];
        for (int64_t j = 0; j < nk; ++j) row[j] = vexp(row[j] - l);
        for (int64_t j = nk; j < BK; ++j) row[j] = 0;
      }
      // dV_j += sum_i P_ij dO_i
      for (int64_t j = 0; j < nk; ++j) accumulate_rows<T, DC>(dva + j * D, s + j, BK, nq, dout + i0 * D, D, D);
      // dP = dO V^T, dS = P (dP - Di)
      tile_scores<T, DC>(dout + i0 * D, vt, dp, nq, D);
      for (int64_t i = 0; i < nq; ++i) {
        const T dii = di[i0 + i];
        T* dpr = dp + i * BK;
        const T* pr = s + i * BK;
        for (int64_t j = 0; j < BK; ++j) dpr[j] = pr[j] * (dpr[j] - dii);
      }
      // dQ_i += sum_j dS_ij K_j ; dK_j += sum_i dS_ij (scale q_i)
      for (int64_t i = 0; i < nq; ++i) accumulate_rows<T, DC>(dqa + (i0 + i) * D, dp + i * BK, 1, nk, k + j0 * D, D, D);
      for (int64_t j = 0; j < nk; ++j) accumulate_rows<T, DC>(dka + j * D, dp + j, BK, nq, qs + i0 * D, D, D);
    }
    for (int64_t x = 0; x < nk * D; ++x) {
      dk[j0 * D + x] = dka[x];
      dv[j0 * D + x] = dva[x];
    }
  }
  for (int64_t x = 0; x < Tq * D; ++x) dq[x] = dqa[x] * scale;
  if (any_pad) {  // fully masked rows averaged every value row: each gets dO / Tk
    for (int64_t d = 0; d < D; ++d) pad[d] /= static_cast<T>(Tk);
    for (int64_t j = 0; j < Tk; ++j)
      for (int64_t d = 0; d < D; ++d) dv[j * D + d] += pad[d];
  }
}

template <typename T>
void forward_range(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  T* s = static_cast<T*>(scratch);
  for (int64_t it = begin; it < end; ++it) {
    switch (p.D) {
      case 32: forward_item<T, 32>(p, it, s); break;
      case 64: forward_item<T, 64>(p, it, s); break;
      case 128: forward_item<T, 128>(p, it, s); break;
      default: forward_item<T, 0>(p, it, s);
    }
  }
}

template <typename T>
void backward_range(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  T* s = static_cast<T*>(scratch);
  for (int64_t it = begin; it < end; ++it) {
    switch (p.D) {
      case 32: backward_item<T, 32>(p, it, s); break;
      case 64: backward_item<T, 64>(p, it, s); break;
      case 128: backward_item<T, 128>(p, it, s); break;
      default: backward_item<T, 0>(p, it, s);
    }
  }
}

}  // namespace

void forward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  if (p.f64) forward_range<double>(p, begin, end, scratch);
  else forward_range<float>(p, begin, end, scratch);
}

void backward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  if (p.f64) backward_range<double>(p, begin, end, scratch);
  else backward_range<float>(p, begin, end, scratch);
}

}  // namespace codex::cpu::CODEX_ATTN_ISA
