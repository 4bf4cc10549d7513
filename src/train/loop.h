#pragma once
// Pieces every trainer (pretrain now; SFT, reward, PPO later) shares: process/thread/device setup,
// the AdamW + warmup-cosine schedule, deterministic batch sampling, metrics files, and one
// training loop (accumulation, clipping, non-finite stop, logging, eval, checkpoints). A trainer
// supplies only "the loss of micro-batch m of step s" and "the eval metrics" as functions.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "model/gpt.h"

namespace codex {

// How the loop talks to other processes. The default is a single process (every call a no-op);
// a c10d-backed implementation overrides these without changing the loop.
struct DistContext {
  virtual ~DistContext() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  bool is_main() const { return rank() == 0; }
  // Called once with the model's parameters before training: broadcast rank 0's weights and
  // register gradient hooks (bucketed all-reduce overlapping backward).
  virtual void watch(const std::vector<torch::Tensor>& params) {}
  // Called before each micro-step's backward; `last` is true on the final micro-step of a step
  // (where bucketed all-reduce should run; earlier ones only accumulate locally).
  virtual void begin_micro_step(bool last) {}
  // After the final backward: average gradients of `params` over ranks (in place).
  virtual void all_reduce_grads(const std::vector<torch::Tensor>& params) {}
  // The optimizer step. ZeRO-1 steps only the parameters this rank owns, then each owner
  // broadcasts its updated parameters.
  virtual void optimizer_step(torch::optim::Optimizer& opt) { opt.step(); }
  // ZeRO-1: before a checkpoint (every rank calls it), rank 0 receives every rank's optimizer state
  // so checkpoints always hold the full state (resumable with any world size, ZeRO or not)...
  virtual void gather_optimizer_state(torch::optim::Optimizer& opt) {}
  // ...and after a save or a load each rank drops the state of parameters it does not own.
  virtual void shard_optimizer_state(torch::optim::Optimizer& opt) {}
  // Mean of a scalar over ranks (logged losses, eval losses).
  virtual double all_reduce_mean(double v) { return v; }
  virtual void barrier() {}
};
std::shared_ptr<DistContext> single_process_context();

// Sets LibTorch's intra-op threads (and OpenBLAS's) to run.threads, or to the measured default
// when 0 (docs/pretrain.md). Returns the number used.
int configure_threads(int64_t requested);
// run.device: auto -> cuda when LibTorch has it, else cpu.
torch::Device pick_device(const RunConfig& run);
// train.dtype: auto -> bf16 autocast on CUDA, fp32 on CPU.
bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device);

// Random windows of block+1 tokens, drawn from one mt19937_64 seeded by run.seed. Every rank
// draws the SAME global batch and keeps its rows [r*B/W, (r+1)*B/W), so the global batch does not
// depend on the world size. The generator state is the loader position saved in checkpoints.
class BatchSampler {
 public:
  BatchSampler(const TokenDataset& data, int64_t block, int64_t global_batch, uint64_t seed, int rank, int world);
  // x, y: (B_local, block) int64; y is x shifted by one token.
  std::pair<torch::Tensor, torch::Tensor> next();
  std::string state() const;
  void set_state(const std::string& s);

 private:
  const TokenDataset& data_;
  int64_t block_, global_batch_, lo_, hi_;
  std::mt19937_64 rng_;
};

// Mean next-token cross-entropy of x (B, T) -> y (B, T); bf16: CUDA autocast for the forward.
// fused (fp32 only): LM head + loss in row chunks (ops/cross_entropy.h), no (B, T, V) logits.
torch::Tensor lm_loss(GPT& model, const torch::Tensor& x, const torch::Tensor& y, bool bf16, bool fused = true);

// Fixed, evenly spaced validation windows (no RNG): the same val_loss for the same weights.
// Mean cross-entropy over `batches` batches of `batch` sequences (rank-sliced, then averaged).
double eval_lm_loss(GPT& model, const TokenDataset& val, int64_t block, int64_t batch, int64_t batches,
                    DistContext& dist, const torch::Device& device, bool bf16, bool fused = true);

// AdamW with two groups: weight decay on every 2-D tensor (Linear weights and the embeddings,
// as GPT-2/nanoGPT do), none on biases and LayerNorm parameters.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, const OptimConfig& o);
// Linear warmup over warmup_steps (step 1 gets lr/warmup), then cosine down to lr*min_lr_ratio at
// max_steps. `step` is 1-based.
double lr_at(const OptimConfig& o, int64_t step, int64_t max_steps);
void set_lr(torch::optim::Optimizer& opt, double lr);

// <run.dir>/metrics.jsonl. Opened for a fresh run it is truncated; for a resumed run the lines
// of steps after the checkpoint (written by the interrupted run) are dropped, so the file ends up
// as an uninterrupted run's would.
class MetricsLog {
 public:
  MetricsLog(const std::string& run_dir, int64_t resume_step);  // resume_step 0: fresh
  void write(const nlohmann::json& line);  // one line, flushed
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct LoopSpec {
  std::string name = "train";          // progress label
  const Config* cfg = nullptr;
  GPT model{nullptr};
  torch::optim::Optimizer* opt = nullptr;
  DistContext* dist = nullptr;
  int64_t start_step = 0;              // steps already done (resume)
  int64_t max_steps = 0;
  int64_t tokens_per_step = 0;         // global, for tokens/s
  // Loss of micro-batch `micro` (0-based) of step `step` (1-based), a mean over its tokens.
  std::function<torch::Tensor(int64_t step, int64_t micro)> micro_loss;
  // Eval metrics (e.g. {"val_loss": x}); called on eval steps. Optional.
  std::function<std::map<std::string, double>()> evaluate;
  // Saves a checkpoint after `step` (called on every rank; the implementation decides who writes).
  std::function<void(int64_t step)> save;
  MetricsLog* metrics = nullptr;
  // Extra scalars sink (TensorBoard). Optional.
  std::function<void(const std::string& tag, int64_t step, double v)> scalar;
};

struct LoopResult {
  int64_t steps_done = 0;
  int stopped_by_signal = 0;  // SIGINT / SIGTERM (-1: a peer rank's) stopped the loop after steps_done
  double first_loss = 0, last_loss = 0, last_val_loss = -1;
  double seconds = 0, tokens_per_s = 0;
};

// Runs steps start_step+1 .. max_steps. A non-finite loss or gradient norm throws RunError
// before the optimizer step, so nothing from that step is applied, logged as done or saved.
// SIGINT / SIGTERM stop it gracefully after the current step, which is then checkpointed
// (`stopped_by_signal`); a second signal has its usual effect.
LoopResult run_train_loop(LoopSpec& spec);

// Peak resident set size of this process (MB), from /proc/self/status.
double peak_rss_mb();

}  // namespace codex
