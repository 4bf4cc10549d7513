#pragma once
// The training engine every trainer (pretrain, sft, reward, ppo) shares, as two pieces you call
// (no hooks framework):
//   update()      one optimizer update over n micro-batches of any set of trainable modules:
//                 zero-grad, backward of each micro-batch's summed loss, gradient sync, division
//                 by the token count summed over micro-batches AND ranks (a masked loss is a true
//                 token-weighted mean), clipping, a non-finite check BEFORE stepping, the step, and
//                 the stats all-reduced in one collective.
//   run_steps()   the driver: lr schedule, logging of any stats to metrics.jsonl / TensorBoard,
//                 eval and checkpoint cadence, SIGINT/SIGTERM, and a per-step function that calls
//                 update() once (pretrain, sft, reward) or many times (ppo).
// Plus the small shared pieces: AdamW groups, warmup-cosine, the metrics file.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/device.h"
#include "dist/context.h"
#include "model/gpt.h"

namespace codex {

// One model being trained with its optimizer. `name` labels its gradient norm in the stats
// ("grad_norm" for the first, "grad_norm_<name>" for others).
struct Trainable {
  std::string name;
  std::vector<torch::Tensor> params;
  torch::optim::Optimizer* opt = nullptr;
  double lr_scale = 1.0;  // this optimizer's lr = schedule(step) * lr_scale
};

// What one micro-batch returns. `loss_sum` is the SUM of its per-token (or per-example) losses
// (differentiable); `count` the number of tokens/examples it covers. `stats` are sums too (e.g.
// {"correct": 3, "kl_sum": ...}); update() adds them over micro-batches and ranks.
struct MicroOut {
  torch::Tensor loss_sum;
  double count = 0;
  std::map<std::string, double> stats;
};

struct UpdateOut {
  double loss = 0;   // sum of loss_sum / sum of count, over micro-batches and ranks
  double count = 0;  // global count
  std::map<std::string, double> grad_norms;  // per trainable, before clipping
  std::map<std::string, double> stats;       // summed over micro-batches and ranks
};

// One update. micro(m) for m in [0, n_micro) is called on every rank (each rank its own slice).
// Gradients become d(global loss_sum)/dθ / (global count). When every count is 0 nothing is
// stepped (loss 0). A non-finite loss or gradient norm throws RunError before any step.
UpdateOut update(std::vector<Trainable>& trainables, DistContext& dist, int64_t n_micro,
                 const std::function<MicroOut(int64_t m)>& micro, double grad_clip, int64_t step_for_errors);

// AdamW with two groups: weight decay on every 2-D tensor (Linear weights and the embeddings,
// as GPT-2/nanoGPT do), none on biases and LayerNorm parameters.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const OptimConfig& o);
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

// What one driver step reports: the train loss, tokens processed (for tokens/s; global), and any
// scalars to log (e.g. accuracy, kl, clipfrac, grad_norm).
struct StepOut {
  double loss = 0;
  double tokens = 0;
  std::map<std::string, double> stats;
};

struct DriverSpec {
  std::string name = "train";          // progress label
  const Config* cfg = nullptr;
  DistContext* dist = nullptr;
  std::vector<Trainable>* trainables = nullptr;  // the driver sets their lr each step
  int64_t start_step = 0;              // steps already done (resume)
  int64_t max_steps = 0;
  // The work of step `step` (1-based) at learning rate `lr` (already set on the optimizers).
  std::function<StepOut(int64_t step, double lr)> step;
  // Eval metrics (e.g. {"val_loss": x}); called on eval steps. Optional.
  std::function<std::map<std::string, double>()> evaluate;
  // Saves a checkpoint after `step` (called on every rank; the implementation decides who writes).
  std::function<void(int64_t step)> save;
  MetricsLog* metrics = nullptr;
  // Extra scalars sink (TensorBoard). Optional.
  std::function<void(const std::string& tag, int64_t step, double v)> scalar;
  // Early stop: stop after `patience` evals without a lower `patience_key` (0 = off).
  int64_t patience = 0;
  std::string patience_key = "val_loss";
};

struct DriverResult {
  int64_t steps_done = 0;
  int stopped_by_signal = 0;  // SIGINT / SIGTERM (-1: a peer rank's) stopped the loop after steps_done
  bool stopped_early = false; // patience ran out (a checkpoint of that step was written)
  double first_loss = 0, last_loss = 0;
  std::map<std::string, double> last_eval;
  double seconds = 0, tokens_per_s = 0;
};

// Runs steps start_step+1 .. max_steps. SIGINT / SIGTERM stop it gracefully after the current
// step, which is then checkpointed (`stopped_by_signal`); a second signal has its usual effect.
DriverResult run_steps(DriverSpec& spec);

// Peak resident set size of this process (MB), from /proc/self/status.
double peak_rss_mb();

// Forward passes under bf16 autocast on CUDA (weights and optimizer stay fp32).
struct AutocastScope {
  bool on;
  explicit AutocastScope(bool enable);
  ~AutocastScope();
};

}  // namespace codex
