// Body of logprob_kernel.h, included after attention_kernel_impl.h in each instruction-set file
// (shares its vexp / vmax helpers and namespace).
#include "ops/cpu/logprob_kernel.h"

namespace codex::cpu::CODEX_ATTN_ISA {
namespace {

template <typename T>
inline T row_max(const T* __restrict x, int64_t n) {
  T part[16];
  for (int u = 0; u < 16; ++u) part[u] = -kInf<T>;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16)
    for (int u = 0; u < 16; ++u) part[u] = vmax(part[u], x[j + u]);
  T mx = -kInf<T>;
  for (; j < n; ++j) mx = vmax(mx, x[j]);
  for (int u = 0; u < 16; ++u) mx = vmax(mx, part[u]);
  return mx;
}

template <typename T>
void update_rows(const LogprobBlock& b) {
  const T it = static_cast<T>(b.inv_temp);
  T* m = static_cast<T*>(b.m);
  T* s = static_cast<T*>(b.s);
  T* t = static_cast<T*>(b.t);
  T* xt = static_cast<T*>(b.xt);
  for (int64_t r = 0; r < b.rows; ++r) {
    T* z = static_cast<T*>(b.z) + r * b.ld;  // scaled in place: the block is scratch
    for (int64_t c = 0; c < b.cols; ++c) z[c] *= it;
    const int64_t tc = b.targets[r] - b.v0;
    if (tc >= 0 && tc < b.cols) xt[r] = z[tc];
    const T mnew = vmax(m[r], row_max(z, b.cols));
    const T scale = m[r] == -kInf<T> ? T(0) : vexp(m[r] - mnew);
    T ps[16], pt[16];
    for (int u = 0; u < 16; ++u) ps[u] = pt[u] = 0;
    int64_t c = 0;
    if (t) {
      for (; c + 16 <= b.cols; c += 16)
        for (int u = 0; u < 16; ++u) {
          const T x = z[c + u], e = vexp(x - mnew);
          ps[u] += e;
          pt[u] += e * x;
        }
    } else {
      for (; c + 16 <= b.cols; c += 16)
        for (int u = 0; u < 16; ++u) ps[u] += vexp(z[c + u] - mnew);
    }
    T ss = 0, tt = 0;
    for (; c < b.cols; ++c) {
      const T e = vexp(z[c] - mnew);
      ss += e;
      tt += e * z[c];
    }
    for (int u = 0; u < 16; ++u) {
      ss += ps[u];
      tt += pt[u];
    }
    s[r] = s[r] * scale + ss;
    if (t) t[r] = t[r] * scale + tt;
    m[r] = mnew;
  }
}

template <typename T>
void grad_rows(const LogprobBlock& b) {
  const T it = static_cast<T>(b.inv_temp);
  const T* lse = static_cast<const T*>(b.lse);
  const T* ent = static_cast<const T*>(b.ent);
  const T* g1 = static_cast<const T*>(b.g1);
  const T* g2 = static_cast<const T*>(b.g2);
  for (int64_t r = 0; r < b.rows; ++r) {
    T* z = static_cast<T*>(b.z) + r * b.ld;
    const T l = lse[r], a = g1[r];
    if (g2) {
      const T g = g2[r], hl = ent[r] - l;  // x - lse + H = x + (H - lse)
      for (int64_t c = 0; c < b.cols; ++c) {
        const T x = z[c] * it;
        z[c] = -it * vexp(x - l) * (a + g * (x + hl));
      }
    } else {
      for (int64_t c = 0; c < b.cols; ++c) z[c] = -it * a * vexp(z[c] * it - l);
    }
    const int64_t tc = b.targets[r] - b.v0;
    if (tc >= 0 && tc < b.cols) z[tc] += it * a;
  }
}

}  // namespace

void logprob_update(const LogprobBlock& b) {
  if (b.f64) update_rows<double>(b);
  else update_rows<float>(b);
}

void logprob_grad(const LogprobBlock& b) {
  if (b.f64) grad_rows<double>(b);
  else grad_rows<float>(b);
}

}  // namespace codex::cpu::CODEX_ATTN_ISA
