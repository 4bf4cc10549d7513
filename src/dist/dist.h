#pragma once
// Multi-process training on LibTorch's c10d: TCPStore rendezvous, Gloo (CPU) or NCCL (CUDA)
// process groups, and bucketed gradient all-reduce that overlaps the backward pass.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "dist/context.h"
#include "util/torch_compat.h"  // CollectiveGroup: c10d::ProcessGroup (1.x) or c10d::Backend (2.x)

namespace c10d {
class Store;
}  // namespace c10d

namespace codex {

// Where this process sits in the job, read from torchrun's variables (RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), else Slurm's (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, ...), else Open MPI's (OMPI_COMM_WORLD_*). No variables: a single process.
struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // torchrun | slurm | openmpi | none
  bool agent_store = false;      // under torchrun: its agent serves the store, rank 0 only joins
  std::string store_prefix;      // per torchrun restart, so a restarted group starts with fresh keys
};
// `get` returns an environment variable or nullptr (injectable for tests). Bad values are a
// UsageError naming the variable.
DistEnv read_dist_env(const std::function<const char*(const char*)>& get = nullptr);

class Dist {
 public:
  // world_size 1: no process group, every collective is a no-op.
  static std::shared_ptr<Dist> init(const DistConfig& cfg, const DistEnv& env, const torch::Device& device);
  ~Dist();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  const std::string& backend() const { return backend_; }
  const torch::Device& device() const { return device_; }  // where collectives' tensors live

  void barrier();
  void all_reduce_sum(torch::Tensor& t);
  void broadcast(torch::Tensor& t, int root = 0);
  // Every rank gets every rank's `t` (same shape), concatenated along a new leading dim.
  torch::Tensor all_gather(const torch::Tensor& t);
  CollectiveGroup* pg() const { return pg_.get(); }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  Dist() = default;
  DistEnv env_;
  torch::Device device_{torch::kCPU};
  std::string backend_ = "none";
  std::chrono::milliseconds timeout_{120000};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<CollectiveGroup> pg_;
};

// Data-parallel gradient averaging. Parameters are packed (in reverse registration order, which
// is roughly the order backward produces their gradients) into buckets of ~bucket_mb; a tensor
// hook copies each gradient into its bucket and, when a bucket is complete, starts an async
// all-reduce while backward goes on. finish() waits and writes the averaged gradient back.
// On non-final accumulation micro-steps call set_sync(false): hooks then do nothing and the
// gradients accumulate locally.
class GradSync {
 public:
  GradSync(std::shared_ptr<Dist> dist, std::vector<torch::Tensor> params, double bucket_mb);
  void set_sync(bool on) { sync_ = on; }
  void finish();  // call after backward of the final micro-step
  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Bucket;
  void on_grad(size_t param_index, const torch::Tensor& grad);
  std::shared_ptr<Dist> dist_;
  std::vector<torch::Tensor> params_;
  std::vector<std::shared_ptr<Bucket>> buckets_;
  std::vector<std::pair<size_t, int64_t>> where_;  // param -> (bucket, offset)
  bool sync_ = true;
};

// ZeRO stage 1 at parameter granularity (as PyTorch's ZeroRedundancyOptimizer): each parameter
// tensor is owned by one rank (greedy balance of element counts); a rank keeps AdamW state only
// for what it owns, steps only that, then one all-gather of every rank's updated parameters
// (packed, padded to the largest share) brings every rank up to date. Gradients are still all-reduced by GradSync (Gloo in LibTorch 1.13 has no
// reduce-scatter), so this saves optimizer memory (2 x params x (W-1)/W floats per rank), not
// traffic. Results equal plain data parallelism bit for bit: the same AdamW math per parameter.
class Zero1 {
 public:
  Zero1(std::shared_ptr<Dist> dist, std::vector<torch::Tensor> params);
  int owner(size_t param_index) const { return owner_[param_index]; }
  int64_t owned_numel(int rank) const;
  void step(torch::optim::Optimizer& opt);
  void gather_state(torch::optim::Optimizer& opt);  // rank 0 ends up with every parameter's state
  void shard_state(torch::optim::Optimizer& opt);   // drop the state of parameters owned elsewhere

 private:
  std::vector<size_t> owned_by(int rank) const;
  std::shared_ptr<Dist> dist_;
  std::vector<torch::Tensor> params_;
  std::vector<int> owner_;
};

// The trainers' view of the job (dist/context.h DistContext): single-process when the
// environment names no world, else c10d with bucketed gradient sync (and ZeRO-1 when
// dist.zero1). `device` becomes
// cuda:<LOCAL_RANK> for CUDA runs.
std::shared_ptr<DistContext> make_dist_context(const DistConfig& cfg, torch::Device& device);

}  // namespace codex
