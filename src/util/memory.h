#pragma once
// Memory a training run needs, estimated before anything large is allocated, and the memory the
// machine (or its cgroup) allows: an impossible configuration is refused in one line instead of
// failing minutes later inside the allocator.
#include <cstdint>
#include <string>

namespace codex {

struct GptShape {
  int64_t n_layer = 0, n_head = 0, n_embd = 0, block_size = 0, vocab_size = 0;
};

struct MemoryEstimate {
  int64_t params = 0;           // trainable parameters (GPT-2 layout, biases, tied head)
  int64_t weights = 0;          // fp32 weights
  int64_t gradients = 0;        // fp32 gradients
  int64_t optimizer = 0;        // AdamW: two fp32 moments per parameter
  int64_t activations = 0;      // tensors kept for backward by one micro-batch (a lower bound)
  int64_t total() const { return weights + gradients + optimizer + activations; }
};

// GPT-2 parameter count: wte (V, C) + wpe (T, C) + per layer 12 C^2 + 13 C + ln_f 2 C.
int64_t gpt_param_count(const GptShape& g);

// `micro_batch`: sequences one process runs forward/backward at once. `fused_loss`: the LM head
// and cross-entropy in row chunks (no (B, T, V) logits kept). Activations count what backward
// must keep per layer (LayerNorm outputs, q/k/v, attention probabilities, MLP hidden, residuals)
// in fp32, so the estimate errs low: a refused configuration really does not fit.
MemoryEstimate estimate_training_memory(const GptShape& g, int64_t micro_batch, bool fused_loss);

// The memory this process may use: the smallest of MemTotal (/proc/meminfo) and the cgroup
// limit (v2 memory.max, v1 memory.limit_in_bytes); -1 when none can be read.
int64_t host_memory_limit();

// "optim: 1.2 GB weights+gradients+optimizer, 3.4 GB activations" style breakdown.
std::string describe(const MemoryEstimate& m);

// Refuses (UsageError, one line: estimate, limit, keys to change) a run whose estimate exceeds
// `limit` bytes (-1: unknown, nothing checked). `processes`: ranks sharing this machine's memory.
void check_training_memory(const GptShape& g, int64_t micro_batch, bool fused_loss, int64_t processes, int64_t limit);

// The config keys that drive a training run's memory, for error messages.
constexpr const char* kMemoryKeys =
    "model.n_layer, model.n_embd, model.n_head, model.block_size, train.batch_size (per process), "
    "train.fused_loss";
// What an allocator failure becomes: "out of memory (<what>); memory grows with ..." (one line).
std::string out_of_memory_message(const std::string& what);

}  // namespace codex
