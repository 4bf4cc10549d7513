#pragma once
// How trainers talk to other processes. The default is a single process (every call a no-op);
// the c10d-backed implementation (dist/dist.h, make_dist_context) overrides these.
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace codex {

struct DistContext {
  virtual ~DistContext() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  bool is_main() const { return rank() == 0; }
  // Called once with every trainable parameter before training: broadcast rank 0's weights and
  // register gradient hooks (bucketed all-reduce overlapping backward).
  virtual void watch(const std::vector<torch::Tensor>& params) {}
  // Called before each micro-step's backward; `last` is true on the final micro-step of an update
  // (where bucketed all-reduce should run; earlier ones only accumulate locally).
  virtual void begin_micro_step(bool last) {}
  // After the final backward: average the watched gradients over ranks (in place).
  virtual void all_reduce_grads() {}
  // The optimizer step. ZeRO-1 steps only the parameters this rank owns, then shares them.
  virtual void optimizer_step(torch::optim::Optimizer& opt) { opt.step(); }
  // ZeRO-1: before a checkpoint (every rank calls it), rank 0 receives every rank's optimizer state
  // so checkpoints always hold the full state (resumable with any world size, ZeRO or not)...
  virtual void gather_optimizer_state(torch::optim::Optimizer& opt) {}
  // ...and after a save or a load each rank drops the state of parameters it does not own.
  virtual void shard_optimizer_state(torch::optim::Optimizer& opt) {}
  // Element-wise sum over ranks of a few scalars, in ONE collective (losses, token counts, stats).
  virtual std::vector<double> all_reduce_sum(std::vector<double> v) { return v; }
  double all_reduce_mean(double v) { return all_reduce_sum({v})[0] / world_size(); }
  virtual void barrier() {}
};
std::shared_ptr<DistContext> single_process_context();

}  // namespace codex
