#pragma once
// Fused causal attention on the CPU (FlashAttention-2's algorithm): tiled, online softmax (running
// max and sum per query row), the (T, T) score matrix never formed, tiles above the causal
// diagonal skipped, backward recomputing each score tile from the saved log-sum-exp.
//
// Plain C++ on raw pointers: no torch header here or in the kernel files, so each instruction-set
// variant (generic, AVX2+FMA, AVX-512) is one small translation unit with its own -m flags, picked
// at run time. ops/attention.cpp wraps it in an autograd function and runs the work items with
// LibTorch's parallel_for.
#include <cstddef>
#include <cstdint>

namespace codex::cpu {

// Tensors are contiguous, row-major: q, out, dout, dq (B, H, Tq, D); k, v, dk, dv (B, H, Tk, D);
// lse (B, H, Tq); key_bias (B, Tk). All float (f64 = false) or all double (f64 = true).
struct AttentionParams {
  int64_t B = 0, H = 0, Tq = 0, Tk = 0, D = 0;
  double scale = 1.0;   // scores = scale * q k^T
  bool causal = true;   // query i sees keys j <= (Tk - Tq) + i
  bool f64 = false;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* key_bias = nullptr;  // 0 (attend) or -inf (padding) per key; null = no padding
  void* out = nullptr;
  void* lse = nullptr;             // log-sum-exp per query row; +inf marks a fully masked row
  // backward only
  const void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
};

constexpr int64_t kAttnBlockQ = 64;  // query rows per tile
constexpr int64_t kAttnBlockK = 64;  // keys per tile

// A query row that sees no key at all (every key it may see is padding) gets the mean of all Tk
// value rows, as the reference (a -1e30 fill softmaxes to uniform): its gradient flows to v only.

// Forward work items: one per (batch, head, query tile); independent, any order, any thread.
int64_t attention_forward_items(const AttentionParams& p);
// Backward work items: one per (batch, head); each writes its own dq, dk, dv slices.
int64_t attention_backward_items(const AttentionParams& p);
// Scratch bytes one thread needs for one call of the functions below.
size_t attention_forward_scratch(const AttentionParams& p);
size_t attention_backward_scratch(const AttentionParams& p);
// Runs items [begin, end) with the given scratch (at least the size above, 8-byte aligned).
void attention_forward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch);
void attention_backward(const AttentionParams& p, int64_t begin, int64_t end, void* scratch);

// The instruction-set variant in use ("avx512", "avx2", "generic"), and a way to force one
// (tests compare them). Returns false (and changes nothing) when the CPU lacks it.
const char* attention_cpu_isa();
bool set_attention_cpu_isa(const char* name);

}  // namespace codex::cpu
