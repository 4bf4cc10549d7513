#pragma once
// Row passes of the fused log-prob op (ops/logprob.cpp) over one block of raw logits z (rows x
// cols, the vocabulary slice [v0, v0 + cols)), x = z * inv_temp. The logits come from a GEMM in
// vocabulary blocks small enough to stay in cache; these passes fold each block into per-row
// running statistics (online logsumexp), so no (N, V) array is ever kept. Torch-free, one copy per
// instruction set like attention_kernel.h. float (f64 = false) or double.
#include <cstdint>

namespace codex::cpu {

struct LogprobBlock {
  int64_t rows = 0, cols = 0, ld = 0;  // z row r, column c at z[r * ld + c]
  int64_t v0 = 0;                      // vocabulary index of column 0
  double inv_temp = 1.0;
  bool f64 = false;
  void* z = nullptr;                   // update: read; grad: overwritten with d loss / d z
  const int64_t* targets = nullptr;    // (rows)
  // update: running max m, s = sum e^(x - m), t = sum e^(x - m) x, and x at the target (rows each);
  // start with m = -inf, s = t = 0.
  void* m = nullptr;
  void* s = nullptr;
  void* t = nullptr;                   // null: entropy not needed
  void* xt = nullptr;
  // grad: lse, entropy H, upstream gradients g1 (log-prob) and g2 (entropy; null = none)
  const void* lse = nullptr;
  const void* ent = nullptr;
  const void* g1 = nullptr;
  const void* g2 = nullptr;
};

void logprob_block_update(const LogprobBlock& b);
// z <- inv_temp * ([c == target] g1 - p (g1 + g2 (x - lse + H))), p = exp(x - lse).
void logprob_block_grad(const LogprobBlock& b);

}  // namespace codex::cpu
