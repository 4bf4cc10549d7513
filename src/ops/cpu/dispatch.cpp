// Picks the fused CPU kernels' variant for this CPU (attention_kernel.h, logprob_kernel.h). No torch headers.
#include <cstring>
#include <initializer_list>

#include "ops/cpu/attention_kernel.h"
#include "ops/cpu/logprob_kernel.h"

namespace codex::cpu {

#define CODEX_DECLARE_ISA(isa)                                                        \
  namespace isa {                                                                     \
  void forward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch);  \
  void backward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch); \
  void logprob_update(const LogprobBlock& b);                                         \
  void logprob_grad(const LogprobBlock& b);                                           \
  }
CODEX_DECLARE_ISA(generic)
#if defined(__x86_64__) && defined(CODEX_ATTN_ISA_FLAGS)
CODEX_DECLARE_ISA(avx2)
CODEX_DECLARE_ISA(avx512)
#endif
#undef CODEX_DECLARE_ISA

namespace {
using Fn = void (*)(const AttentionParams&, int64_t, int64_t, void*);
using LFn = void (*)(const LogprobBlock&);
struct Variant {
  const char* name;
  Fn forward, backward;
  LFn lp_update, lp_grad;
};

bool cpu_has(const char* name) {
#if defined(__x86_64__) && defined(CODEX_ATTN_ISA_FLAGS)
  __builtin_cpu_init();
  if (std::strcmp(name, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(name, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::strcmp(name, "generic") == 0;
}

Variant variant_named(const char* name) {
#if defined(__x86_64__) && defined(CODEX_ATTN_ISA_FLAGS)
  if (std::strcmp(name, "avx512") == 0) return {"avx512", avx512::forward, avx512::backward, avx512::logprob_update, avx512::logprob_grad};
  if (std::strcmp(name, "avx2") == 0) return {"avx2", avx2::forward, avx2::backward, avx2::logprob_update, avx2::logprob_grad};
#endif
  return {"generic", generic::forward, generic::backward, generic::logprob_update, generic::logprob_grad};
}

Variant& current() {
  static Variant v = [] {
    for (const char* n : {"avx512", "avx2"})
      if (cpu_has(n)) return variant_named(n);
    return variant_named("generic");
  }();
  return v;
}

int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; }
size_t elem(const AttentionParams& p) { return p.f64 ? sizeof(double) : sizeof(float); }
}  // namespace

int64_t attention_forward_items(const AttentionParams& p) { return p.B * p.H * div_up(p.Tq, kAttnBlockQ); }
int64_t attention_backward_items(const AttentionParams& p) { return p.B * p.H; }

size_t attention_forward_scratch(const AttentionParams& p) {
  const int64_t D = p.D, BQ = kAttnBlockQ, BK = kAttnBlockK;
  return static_cast<size_t>(2 * BQ * D + D * BK + BQ * BK + 2 * BQ) * elem(p);
}

size_t attention_backward_scratch(const AttentionParams& p) {
  const int64_t D = p.D, BQ = kAttnBlockQ, BK = kAttnBlockK;
  return static_cast<size_t>(2 * p.Tq * D + p.Tq + 2 * D * BK + 2 * BQ * BK + 2 * BK * D + D) * elem(p);
}

void attention_forward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  current().forward(p, begin, end, scratch);
}

void attention_backward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch) {
  current().backward(p, begin, end, scratch);
}

void logprob_block_update(const LogprobBlock& b) { current().lp_update(b); }
void logprob_block_grad(const LogprobBlock& b) { current().lp_grad(b); }

const char* attention_cpu_isa() { return current().name; }

bool set_attention_cpu_isa(const char* name) {
  if (!cpu_has(name)) return false;
  current() = variant_named(name);
  return true;
}

}  // namespace codex::cpu
