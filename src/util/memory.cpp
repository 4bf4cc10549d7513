#include "util/memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace codex {
namespace {

// A number from a one-value cgroup file ("max" = no limit: -1).
int64_t read_limit_file(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v) || v == "max") return -1;
  try {
    const long double d = std::stold(v);
    // cgroup v1 reports "no limit" as a huge page-aligned number.
    if (d <= 0 || d > 9.0e18L) return -1;
    return static_cast<int64_t>(d);
  } catch (const std::exception&) {
    return -1;
  }
}

// This process's cgroup v2 folder ("0::/some/path" in /proc/self/cgroup).
std::string cgroup_v2_dir() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return "/sys/fs/cgroup" + line.substr(3);
  return "/sys/fs/cgroup";
}

}  // namespace

int64_t gpt_param_count(const GptShape& g) {
  const int64_t C = g.n_embd;
  return g.vocab_size * C + g.block_size * C + g.n_layer * (12 * C * C + 13 * C) + 2 * C;
}

MemoryEstimate estimate_training_memory(const GptShape& g, int64_t micro_batch, bool fused_loss) {
  MemoryEstimate m;
  m.params = gpt_param_count(g);
  m.weights = 4 * m.params;
  m.gradients = 4 * m.params;
  m.optimizer = 8 * m.params;
  const int64_t B = micro_batch, T = g.block_size, C = g.n_embd;
  // Per layer and token, floats kept for backward: ln_1 out (C), q/k/v (3C), attention output
  // (C), ln_2 out (C), MLP hidden before and after GELU (4C + 4C), two residual sums (2C) = 16C,
  // plus one row of attention probabilities per head (n_head * T).
  const int64_t per_layer = B * T * (16 * C + g.n_head * T);
  int64_t floats = g.n_layer * per_layer + 2 * B * T * C;  // + embeddings and ln_f
  if (!fused_loss) floats += 2 * B * T * g.vocab_size;     // logits and their gradient
  m.activations = 4 * floats;
  return m;
}

int64_t host_memory_limit() {
  int64_t limit = -1;
  auto take = [&](int64_t v) {
    if (v > 0 && (limit < 0 || v < limit)) limit = v;
  };
  {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("MemTotal:", 0) != 0) continue;
      std::istringstream ss(line.substr(9));
      int64_t kb = 0;
      if (ss >> kb) take(kb * 1024);
    }
  }
  take(read_limit_file(cgroup_v2_dir() + "/memory.max"));
  take(read_limit_file("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
  return limit;
}

std::string describe(const MemoryEstimate& m) {
  return human_bytes(m.weights + m.gradients + m.optimizer) + " for " + std::to_string(m.params) +
         " parameters (weights, gradients, AdamW moments) + " + human_bytes(m.activations) + " of activations";
}

void check_training_memory(const GptShape& g, int64_t micro_batch, bool fused_loss, int64_t processes, int64_t limit) {
  if (limit <= 0) return;
  const MemoryEstimate m = estimate_training_memory(g, micro_batch, fused_loss);
  const int64_t need = m.total() * std::max<int64_t>(1, processes);
  if (need <= limit) return;
  throw UsageError("the model and batch need about " + human_bytes(need) + " of memory (" + describe(m) +
                   (processes > 1 ? ", x" + std::to_string(processes) + " processes" : std::string()) +
                   "), more than the " + human_bytes(limit) + " this machine allows; reduce " + kMemoryKeys);
}

std::string out_of_memory_message(const std::string& what) {
  std::string first = what.substr(0, what.find('\n'));
  if (first.size() > 200) first = first.substr(0, 200) + "...";
  return "out of memory (" + first + "); memory grows with " + kMemoryKeys +
         " when training, and with generate.batch_size, eval.n, *.max_new_tokens when sampling";
}

}  // namespace codex
