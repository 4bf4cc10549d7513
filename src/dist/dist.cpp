#include "dist/dist.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CODEX_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include "config/device.h"
#include "util/error.h"

namespace codex {
namespace {

int parse_int(const char* name, const char* v, int lo, int hi) {
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (!*v || *end || x < lo || x > hi)
    throw UsageError(std::string("environment variable ") + name + "='" + v + "': expected an integer in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

}  // namespace

DistEnv read_dist_env(const std::function<const char*(const char*)>& get_in) {
  auto get = get_in ? get_in : [](const char* n) -> const char* { return std::getenv(n); };
  DistEnv e;
  const int kMax = 1 << 20;
  auto read = [&](const char* rank, const char* world, const char* lrank, const char* lworld) {
    e.world_size = parse_int(world, get(world), 1, kMax);
    e.rank = parse_int(rank, get(rank), 0, e.world_size - 1);
    e.local_rank = get(lrank) ? parse_int(lrank, get(lrank), 0, kMax) : 0;
    e.local_world_size = get(lworld) ? parse_int(lworld, get(lworld), 1, kMax) : 1;
  };
  if (get("RANK") && get("WORLD_SIZE")) {
    e.source = "torchrun";
    read("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
    // torchrun's agent already serves a TCPStore at MASTER_ADDR:MASTER_PORT; every rank joins it.
    const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
    e.agent_store = agent && std::string(agent) == "True";
    if (const char* rc = get("TORCHELASTIC_RESTART_COUNT")) e.store_prefix = std::string("restart") + rc + "/";
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    e.source = "slurm";
    read("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE");
  } else if (get("OMPI_COMM_WORLD_RANK") && get("OMPI_COMM_WORLD_SIZE")) {
    e.source = "openmpi";
    read("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE");
  } else {
    return e;
  }
  if (e.local_rank >= e.local_world_size)
    throw UsageError("local rank " + std::to_string(e.local_rank) + " is not below the local world size " +
                     std::to_string(e.local_world_size));
  if (get("MASTER_ADDR")) e.master_addr = get("MASTER_ADDR");
  if (get("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", get("MASTER_PORT"), 1, 65535);
  return e;
}

namespace {
// c10d's TCPStore logs every failed connect / bind attempt through glog; our own one-line error
// says what went wrong, so those lines are muted while the store is set up.
struct QuietLibTorchLog {
#ifdef C10_USE_GLOG
  int saved = FLAGS_minloglevel;
  QuietLibTorchLog() { FLAGS_minloglevel = google::GLOG_FATAL; }
  ~QuietLibTorchLog() { FLAGS_minloglevel = saved; }
#endif
};
}  // namespace

std::shared_ptr<Dist> Dist::init(const DistConfig& cfg, const DistEnv& env, const torch::Device& device) {
  std::shared_ptr<Dist> d(new Dist());
  d->env_ = env;
  d->device_ = device;
  d->timeout_ = std::chrono::milliseconds(static_cast<int64_t>(cfg.timeout_s * 1000));
  if (env.world_size == 1) return d;

  std::string backend = cfg.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  if (backend == "nccl" && !device.is_cuda())
    throw UsageError("dist.backend=nccl needs CUDA tensors (run.device=cuda); use dist.backend=gloo on CPU");
  d->backend_ = backend;

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = env.rank == 0 && !env.agent_store;
  so.numWorkers = env.world_size;
  so.waitWorkers = !env.agent_store;  // every non-agent rank checks in; the server waits for all
  so.timeout = d->timeout_;
  std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    QuietLibTorchLog quiet;
    d->store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    if (so.isServer)
      throw UsageError("rank 0 cannot serve the rendezvous at " + where + " (port in use?): " + what);
    throw UsageError("rank " + std::to_string(env.rank) + " cannot reach the rendezvous at " + where + " within " +
                     fmt::format("{:g}", cfg.timeout_s) + " s (MASTER_ADDR/MASTER_PORT wrong or rank 0 not started): " + what);
  }
  // Every rank publishes its view of the world size; a mismatch is a launch error, not a hang.
  d->store_->set("codex/" + env.store_prefix + "world/" + std::to_string(env.rank), std::vector<uint8_t>{});
  d->store_->set("codex/" + env.store_prefix + "ws/" + std::to_string(env.rank),
                 [&] { auto s = std::to_string(env.world_size); return std::vector<uint8_t>(s.begin(), s.end()); }());
  for (int r = 0; r < env.world_size; ++r) {
    std::vector<uint8_t> v;
    try {
      v = d->store_->get("codex/" + env.store_prefix + "ws/" + std::to_string(r));
    } catch (const std::exception&) {
      throw UsageError("timed out after " + fmt::format("{:g}", cfg.timeout_s) + " s waiting for rank " + std::to_string(r) +
                       " of WORLD_SIZE=" + std::to_string(env.world_size) + " at " + where);
    }
    std::string s(v.begin(), v.end());
    if (s != std::to_string(env.world_size))
      throw UsageError("world size mismatch: this rank has WORLD_SIZE=" + std::to_string(env.world_size) + ", rank " +
                       std::to_string(r) + " has " + s);
  }

  auto pg_store = c10::make_intrusive<c10d::PrefixStore>("codex/" + env.store_prefix + "pg", d->store_);
  if (backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(d->timeout_);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (env.master_addr == "127.0.0.1" || env.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    d->pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, env.rank, env.world_size, opts);
  } else {
#ifdef CODEX_WITH_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = d->timeout_;
    d->pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, env.rank, env.world_size, opts);
#else
    throw UsageError("dist.backend=nccl: this build's LibTorch has no NCCL (build with scripts/build.sh --cuda)");
#endif
  }
  return d;
}

Dist::~Dist() = default;

namespace {
void wait_or_throw(const c10::intrusive_ptr<c10d::Work>& w, std::chrono::milliseconds timeout, const char* what) {
  try {
    w->wait(timeout);
  } catch (const std::exception& e) {
    std::string m = e.what();
    throw RunError(std::string(what) + " failed (a peer rank died or timed out): " + m.substr(0, m.find('\n')));
  }
}
}  // namespace

void Dist::barrier() {
  if (!pg_) return;
  wait_or_throw(pg_->barrier(), timeout_, "barrier");
}

void Dist::all_reduce_sum(torch::Tensor& t) {
  if (!pg_) return;
  std::vector<torch::Tensor> v{t};
  wait_or_throw(pg_->allreduce(v), timeout_, "all-reduce");
}

void Dist::broadcast(torch::Tensor& t, int root) {
  if (!pg_) return;
  std::vector<torch::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  wait_or_throw(pg_->broadcast(v, o), timeout_, "broadcast");
}

torch::Tensor Dist::all_gather(const torch::Tensor& t) {
  if (!pg_) return t.unsqueeze(0).clone();
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < world_size(); ++r) out[0].push_back(torch::empty_like(t));
  std::vector<torch::Tensor> in{t.contiguous()};
  wait_or_throw(pg_->allgather(out, in), timeout_, "all-gather");
  return torch::stack(out[0]);
}

struct GradSync::Bucket {
  torch::Tensor flat;              // (numel,) gradients of this bucket's parameters
  std::vector<size_t> params;      // indices into params_
  size_t ready = 0;
  c10::intrusive_ptr<c10d::Work> work;
  bool launched = false;
};

GradSync::GradSync(std::shared_ptr<Dist> dist, std::vector<torch::Tensor> params, double bucket_mb)
    : dist_(std::move(dist)), params_(std::move(params)) {
  if (dist_->world_size() == 1) return;
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024));
  where_.resize(params_.size());
  std::shared_ptr<Bucket> cur;
  int64_t bytes = 0, offset = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    int64_t nb = p.numel() * static_cast<int64_t>(p.element_size());
    if (!cur || (bytes + nb > cap && bytes > 0)) {
      cur = std::make_shared<Bucket>();
      buckets_.push_back(cur);
      bytes = 0;
      offset = 0;
    }
    cur->params.push_back(k);
    where_[k] = {buckets_.size() - 1, offset};
    offset += p.numel();
    bytes += nb;
  }
  for (auto& b : buckets_) {
    int64_t n = 0;
    for (size_t k : b->params) n += params_[k].numel();
    b->flat = torch::zeros({n}, params_[b->params[0]].options());
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    params_[k].register_hook([this, k](torch::Tensor grad) {
      on_grad(k, grad);
      return grad;
    });
  }
}

void GradSync::on_grad(size_t k, const torch::Tensor& grad) {
  if (!sync_) return;
  auto [bi, off] = where_[k];
  auto& b = *buckets_[bi];  // NOLINT
  auto slice = b.flat.narrow(0, off, params_[k].numel());
  slice.copy_(grad.reshape(-1));
  // earlier accumulation micro-steps left their sum in .grad
  const auto& acc = params_[k].grad();
  if (acc.defined()) slice.add_(acc.reshape(-1));
  if (++b.ready < b.params.size()) return;
  // Launch complete buckets strictly in index order, so every rank issues the same sequence.
  for (auto& bk : buckets_) {
    if (bk->launched) continue;
    if (bk->ready < bk->params.size()) break;
    std::vector<torch::Tensor> v{bk->flat};
    bk->work = dist_->pg()->allreduce(v);
    bk->launched = true;
  }
}

void GradSync::finish() {
  if (dist_->world_size() == 1) return;
  for (auto& b : buckets_) {
    if (!b->launched) {
      // Some parameter got no gradient this step (or an earlier bucket was incomplete): after
      // backward, .grad holds exactly what the hooks would have packed, so pack from it.
      for (size_t k : b->params) {
        auto off = where_[k].second;
        auto slice = b->flat.narrow(0, off, params_[k].numel());
        const auto& g = params_[k].grad();
        if (g.defined()) slice.copy_(g.reshape(-1));
        else slice.zero_();
      }
      std::vector<torch::Tensor> v{b->flat};
      b->work = dist_->pg()->allreduce(v);
      b->launched = true;
    }
  }
  const double inv = 1.0 / dist_->world_size();
  for (auto& b : buckets_) {
    wait_or_throw(b->work, dist_->timeout(), "gradient all-reduce");
    b->flat.mul_(inv);
    for (size_t k : b->params) {
      auto off = where_[k].second;
      auto& p = params_[k];
      auto avg = b->flat.narrow(0, off, p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(avg);
      else p.mutable_grad() = avg.clone();
    }
    b->ready = 0;
    b->launched = false;
    b->work.reset();
  }
}

// ---- ZeRO-1 ---------------------------------------------------------------------------------

Zero1::Zero1(std::shared_ptr<Dist> dist, std::vector<torch::Tensor> params)
    : dist_(std::move(dist)), params_(std::move(params)), owner_(params_.size()) {
  std::vector<int64_t> load(dist_->world_size(), 0);
  for (size_t i = 0; i < params_.size(); ++i) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owner_[i] = r;
    load[r] += params_[i].numel();
  }
}

std::vector<size_t> Zero1::owned_by(int rank) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] == rank) out.push_back(i);
  return out;
}

int64_t Zero1::owned_numel(int rank) const {
  int64_t n = 0;
  for (size_t i : owned_by(rank)) n += params_[i].numel();
  return n;
}

void Zero1::step(torch::optim::Optimizer& opt) {
  // AdamW skips (and never allocates state for) parameters without a gradient.
  std::vector<torch::Tensor> stash(params_.size());
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] != dist_->rank()) {
      stash[i] = params_[i].grad();
      params_[i].mutable_grad() = torch::Tensor();
    }
  opt.step();
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] != dist_->rank()) params_[i].mutable_grad() = stash[i];
  // One all-gather: every rank contributes its updated parameters, packed and padded to the
  // largest share, and unpacks everyone else's.
  torch::NoGradGuard ng;
  const int W = dist_->world_size();
  int64_t widest = 0;
  for (int r = 0; r < W; ++r) widest = std::max(widest, owned_numel(r));
  if (widest == 0) return;
  auto mine = torch::zeros({widest}, params_[0].options());
  int64_t off = 0;
  for (size_t i : owned_by(dist_->rank())) {
    const int64_t n = params_[i].numel();
    mine.slice(0, off, off + n).copy_(params_[i].detach().reshape(-1));
    off += n;
  }
  auto all = dist_->all_gather(mine);  // (W, widest)
  for (int r = 0; r < W; ++r) {
    if (r == dist_->rank()) continue;
    off = 0;
    for (size_t i : owned_by(r)) {
      const int64_t n = params_[i].numel();
      params_[i].detach().copy_(all[r].slice(0, off, off + n).view_as(params_[i]));
      off += n;
    }
  }
}

namespace {
torch::optim::AdamWParamState* adamw_state(torch::optim::Optimizer& opt, const torch::Tensor& p) {
  auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
  if (it == opt.state().end()) return nullptr;
  auto* st = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get());
  TORCH_CHECK(st, "dist.zero1 supports AdamW only");
  return st;
}
}  // namespace

void Zero1::gather_state(torch::optim::Optimizer& opt) {
  torch::NoGradGuard ng;
  for (int r = 1; r < dist_->world_size(); ++r) {  // rank 0's own state is already there
    auto idx = owned_by(r);
    if (idx.empty()) continue;
    int64_t numel = 0;
    for (size_t i : idx) numel += params_[i].numel();
    // One buffer per owner: the AdamW step of each parameter (-1: no state yet), exp_avg, exp_avg_sq.
    auto opts = params_[idx[0]].options().dtype(torch::kFloat64);
    auto steps = torch::full({static_cast<int64_t>(idx.size())}, -1.0, opts);
    auto moments = torch::zeros({2, numel}, params_[idx[0]].options());
    if (r == dist_->rank()) {
      int64_t off = 0;
      for (size_t j = 0; j < idx.size(); ++j) {
        const auto& p = params_[idx[j]];
        if (auto* st = adamw_state(opt, p)) {
          steps[j] = static_cast<double>(st->step());
          moments[0].slice(0, off, off + p.numel()).copy_(st->exp_avg().reshape(-1));
          moments[1].slice(0, off, off + p.numel()).copy_(st->exp_avg_sq().reshape(-1));
        }
        off += p.numel();
      }
    }
    dist_->broadcast(steps, r);
    dist_->broadcast(moments, r);
    if (dist_->rank() != 0) continue;
    auto host_steps = steps.cpu();
    int64_t off = 0;
    for (size_t j = 0; j < idx.size(); ++j) {
      const auto& p = params_[idx[j]];
      const double step = host_steps[j].item<double>();
      if (step >= 0) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(static_cast<int64_t>(step));
        st->exp_avg(moments[0].slice(0, off, off + p.numel()).view_as(p).clone());
        st->exp_avg_sq(moments[1].slice(0, off, off + p.numel()).view_as(p).clone());
        opt.state()[c10::guts::to_string(p.unsafeGetTensorImpl())] = std::move(st);
      }
      off += p.numel();
    }
  }
}

void Zero1::shard_state(torch::optim::Optimizer& opt) {
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] != dist_->rank()) opt.state().erase(c10::guts::to_string(params_[i].unsafeGetTensorImpl()));
}

namespace {

class C10dContext : public DistContext {
 public:
  C10dContext(std::shared_ptr<Dist> d, double bucket_mb, bool zero1)
      : dist_(std::move(d)), bucket_mb_(bucket_mb), zero1_(zero1) {}
  int rank() const override { return dist_->rank(); }
  int world_size() const override { return dist_->world_size(); }
  void watch(const std::vector<torch::Tensor>& params) override {
    // Same weights everywhere, whatever each rank initialised or loaded.
    for (auto p : params) {
      torch::NoGradGuard ng;
      dist_->broadcast(p, 0);
    }
    sync_ = std::make_unique<GradSync>(dist_, params, bucket_mb_);
    if (zero1_) {
      zero_ = std::make_unique<Zero1>(dist_, params);
      int64_t total = 0;
      for (auto& p : params) total += p.numel();
      spdlog::info("dist.zero1: optimizer state sharded over {} ranks; rank 0 owns {} of {} parameter elements",
                   world_size(), zero_->owned_numel(0), total);
    }
  }
  void optimizer_step(torch::optim::Optimizer& opt) override {
    if (zero_) zero_->step(opt);
    else opt.step();
  }
  void gather_optimizer_state(torch::optim::Optimizer& opt) override {
    if (zero_) zero_->gather_state(opt);
  }
  void shard_optimizer_state(torch::optim::Optimizer& opt) override {
    if (zero_) zero_->shard_state(opt);
  }
  void begin_micro_step(bool last) override {
    if (sync_) sync_->set_sync(last);
  }
  void all_reduce_grads() override {
    TORCH_CHECK(sync_, "DistContext::watch(params) must be called before training");
    sync_->finish();
  }
  std::vector<double> all_reduce_sum(std::vector<double> v) override {
    if (v.empty()) return v;
    // On the group's device: NCCL takes CUDA tensors only.
    auto t = torch::tensor(v, torch::kFloat64).to(dist_->device());
    dist_->all_reduce_sum(t);
    t = t.cpu();
    for (size_t i = 0; i < v.size(); ++i) v[i] = t[static_cast<int64_t>(i)].item<double>();
    return v;
  }
  void barrier() override { dist_->barrier(); }

 private:
  std::shared_ptr<Dist> dist_;
  double bucket_mb_;
  bool zero1_;
  std::unique_ptr<GradSync> sync_;
  std::unique_ptr<Zero1> zero_;
};

}  // namespace

std::shared_ptr<DistContext> single_process_context() { return std::make_shared<DistContext>(); }

std::shared_ptr<DistContext> make_dist_context(const DistConfig& cfg, torch::Device& device) {
  DistEnv env = read_dist_env();
  if (env.world_size == 1) {
    if (cfg.zero1) spdlog::info("dist.zero1: a single process has nothing to shard; ignored");
    return single_process_context();
  }
  if (device.is_cuda()) {
    // Rank k computes on cuda:LOCAL_RANK and makes it the current device before anything runs
    // there: kernels launch on the current device's stream, and NCCL binds each rank's
    // communicator to the device current when it is created.
    device = torch::Device(torch::kCUDA, env.local_rank);
    make_current_device(device);
  }
  auto d = Dist::init(cfg, env, device);
  spdlog::info("dist: rank {}/{} (local {}), backend {}, rendezvous {}:{} ({})", env.rank, env.world_size,
               env.local_rank, d->backend(), env.master_addr, env.master_port, env.source);
  if (env.rank != 0) spdlog::set_level(spdlog::level::warn);  // logs and progress from rank 0 only
  return std::make_shared<C10dContext>(d, cfg.bucket_mb, cfg.zero1);
}

}  // namespace codex
