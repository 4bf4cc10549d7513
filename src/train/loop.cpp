#include "train/loop.h"

#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "ops/cross_entropy.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

std::shared_ptr<DistContext> single_process_context() { return std::make_shared<DistContext>(); }

// ---- setup ----------------------------------------------------------------------------------

int configure_threads(int64_t requested) {
  // Measured on the 2-core CI machine (docs/pretrain.md): the tiny config's small matmuls lose
  // more to thread synchronisation than they gain, so one thread is the default.
  int n = requested > 0 ? static_cast<int>(requested) : 1;
  torch::set_num_threads(n);
  // LibTorch calls OpenBLAS for matmuls; OpenBLAS (pthread build) has its own pool, sized to
  // every core unless told otherwise. Looked up at run time so no link dependency is added.
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
  return n;
}

torch::Device pick_device(const RunConfig& run) {
  if (run.device == "cpu") return torch::kCPU;
  if (run.device == "cuda") {
    if (!torch::cuda::is_available()) throw UsageError("run.device=cuda but LibTorch sees no CUDA device");
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

bool use_bf16_autocast(const TrainConfig& train, const torch::Device& device) {
  if (train.dtype == "fp32") return false;
  if (train.dtype == "bf16" && !device.is_cuda()) throw UsageError("train.dtype=bf16 needs a CUDA device (autocast)");
  return device.is_cuda();
}

namespace {
// Forward passes under bf16 autocast on CUDA (weights and optimizer stay fp32).
struct AutocastScope {
  bool on;
  explicit AutocastScope(bool enable) : on(enable) {
    if (!on) return;
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  }
  ~AutocastScope() {
    if (!on) return;
    at::autocast::clear_cache();
    at::autocast::set_enabled(false);
  }
};

}  // namespace

torch::Tensor lm_loss(GPT& model, const torch::Tensor& x, const torch::Tensor& y, bool bf16, bool fused) {
  if (fused && !bf16) {
    auto hid = model->hidden(x);  // (B, T, C)
    return linear_cross_entropy(hid.reshape({-1, hid.size(-1)}), model->wte->weight, y.reshape(-1));
  }
  AutocastScope ac(bf16);
  auto logits = model->forward(x);  // (B, T, V)
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), y.reshape(-1));
}

// ---- data -----------------------------------------------------------------------------------

BatchSampler::BatchSampler(const TokenDataset& data, int64_t block, int64_t global_batch, uint64_t seed, int rank,
                           int world)
    : data_(data), block_(block), global_batch_(global_batch), rng_(seed) {
  if (global_batch % world != 0)
    throw UsageError("train.batch_size (" + std::to_string(global_batch) + ") must be divisible by the world size (" +
                     std::to_string(world) + ")");
  if (data.size() < block + 1)
    throw UsageError("training data has " + std::to_string(data.size()) + " tokens, fewer than block_size + 1 = " +
                     std::to_string(block + 1));
  lo_ = global_batch / world * rank;
  hi_ = lo_ + global_batch / world;
}

std::pair<torch::Tensor, torch::Tensor> BatchSampler::next() {
  const uint64_t range = static_cast<uint64_t>(data_.size() - block_);  // window starts in [0, N - block - 1]
  auto buf = torch::empty({hi_ - lo_, block_ + 1}, torch::kLong);       // (B_local, T + 1)
  for (int64_t i = 0; i < global_batch_; ++i) {
    const int64_t start = static_cast<int64_t>(rng_() % range);  // every rank draws every row
    if (i >= lo_ && i < hi_) data_.read(start, block_ + 1, buf[i - lo_].data_ptr<int64_t>());
  }
  return {buf.slice(1, 0, block_), buf.slice(1, 1, block_ + 1)};
}

std::string BatchSampler::state() const {
  std::ostringstream os;
  os << rng_;
  return os.str();
}

void BatchSampler::set_state(const std::string& s) {
  std::istringstream is(s);
  is >> rng_;
  if (!is) throw UsageError("checkpoint: unreadable data-loader state");
}

double eval_lm_loss(GPT& model, const TokenDataset& val, int64_t block, int64_t batch, int64_t batches,
                    DistContext& dist, const torch::Device& device, bool bf16, bool fused) {
  if (val.size() < block + 1)
    throw UsageError("validation data has " + std::to_string(val.size()) + " tokens, fewer than block_size + 1");
  const int64_t W = dist.world_size(), lo = batch / W * dist.rank(), n_local = batch / W;
  const int64_t windows = batch * batches, span = val.size() - block - 1;
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  double sum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto buf = torch::empty({n_local, block + 1}, torch::kLong);  // (B_local, T + 1)
    for (int64_t i = 0; i < n_local; ++i) {
      const int64_t w = b * batch + lo + i;
      const int64_t start = windows > 1 ? span * w / (windows - 1) : 0;
      val.read(start, block + 1, buf[i].data_ptr<int64_t>());
    }
    buf = buf.to(device);
    sum += lm_loss(model, buf.slice(1, 0, block), buf.slice(1, 1, block + 1), bf16, fused).item<double>();
  }
  if (was_training) model->train();
  return dist.all_reduce_mean(sum / static_cast<double>(batches));
}

// ---- optimizer ------------------------------------------------------------------------------

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, const OptimConfig& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto opts = torch::optim::AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(opts).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(opts).weight_decay(0.0)));
  return std::make_unique<torch::optim::AdamW>(std::move(groups), opts);
}

double lr_at(const OptimConfig& o, int64_t step, int64_t max_steps) {
  if (o.warmup_steps > 0 && step <= o.warmup_steps)
    return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  const double min_lr = o.lr * o.min_lr_ratio;
  const int64_t decay_steps = max_steps - o.warmup_steps;
  if (decay_steps <= 0) return o.lr;
  const double t = std::min(1.0, static_cast<double>(step - o.warmup_steps) / static_cast<double>(decay_steps));
  return min_lr + 0.5 * (o.lr - min_lr) * (1.0 + std::cos(M_PI * t));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) {
    if (auto* a = dynamic_cast<torch::optim::AdamWOptions*>(&g.options())) a->lr(lr);
    else if (auto* b = dynamic_cast<torch::optim::AdamOptions*>(&g.options())) b->lr(lr);
    else if (auto* c = dynamic_cast<torch::optim::SGDOptions*>(&g.options())) c->lr(lr);
    else throw std::logic_error("set_lr: unsupported optimizer");
  }
}

// ---- metrics --------------------------------------------------------------------------------

MetricsLog::MetricsLog(const std::string& run_dir, int64_t resume_step)
    : path_((fs::path(run_dir) / "metrics.jsonl").string()) {
  make_output_dir(run_dir, "run.dir");
  if (fs::is_directory(path_)) throw UsageError("cannot write '" + path_ + "': a folder is in the way");
  std::string kept;
  if (resume_step > 0 && fs::exists(path_)) {
    std::istringstream in(read_file(path_));
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      try {
        if (json::parse(line).value("step", int64_t{0}) <= resume_step) kept += line + "\n";
      } catch (const json::exception&) {
        // A line torn by a kill: it belongs to the part being redone.
      }
    }
  }
  write_file_atomic(path_, kept);
}

void MetricsLog::write(const json& line) {
  std::ofstream f(path_, std::ios::app);
  f << line.dump() << "\n";
  f.flush();
}

// ---- the loop -------------------------------------------------------------------------------

namespace {

std::atomic<int> g_stop_signal{0};  // lock-free: safe to store from a signal handler
static_assert(std::atomic<int>::is_always_lock_free);

std::atomic<bool> g_caught_int{false}, g_caught_term{false};  // which ones on_stop_signal handles

// First SIGINT/SIGTERM: remember it, and let the next one of either act as usual.
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0) return;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  if (g_caught_int) ::sigaction(SIGINT, &dfl, nullptr);
  if (g_caught_term) ::sigaction(SIGTERM, &dfl, nullptr);
}

// After a stop was requested and the loop has ended: keep swallowing SIGINT/SIGTERM while the
// process winds down (a launcher signals the remaining ranks when the first one exits).
extern "C" void swallow_signal(int) {}

void set_handler(int sig, void (*fn)(int)) {
  struct sigaction sa {};
  sa.sa_handler = fn;
  sa.sa_flags = SA_RESTART;  // interrupted writes (log pipes) and waits resume
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
}

// SIGINT / SIGTERM during the loop ask for a graceful stop (finish the step, checkpoint, exit);
// a second signal acts as usual. A signal the process inherited as ignored (`cmd &` in a
// non-interactive shell ignores SIGINT) stays ignored.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    for (int i = 0; i < 2; ++i) {
      ::sigaction(kSignals[i], nullptr, &old_[i]);
      const bool catch_it = old_[i].sa_handler != SIG_IGN;
      (kSignals[i] == SIGINT ? g_caught_int : g_caught_term) = catch_it;
      if (catch_it) set_handler(kSignals[i], on_stop_signal);
    }
  }
  ~StopSignals() {
    for (int i = 0; i < 2; ++i) {
      if (old_[i].sa_handler == SIG_IGN) continue;
      if (stopping_) set_handler(kSignals[i], swallow_signal);
      else ::sigaction(kSignals[i], &old_[i], nullptr);
    }
  }
  void stopping() { stopping_ = true; }  // the loop stops because of a signal (here or on a peer)

 private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  struct sigaction old_[2];
  bool stopping_ = false;
};

}  // namespace

LoopResult run_train_loop(LoopSpec& s) {
  TORCH_CHECK(s.cfg && s.model && s.opt && s.dist && s.micro_loss, "run_train_loop: incomplete LoopSpec");
  const TrainConfig& tc = s.cfg->train;
  const int64_t accum = tc.grad_accum;
  std::vector<torch::Tensor> params = s.model->parameters();
  using clock = std::chrono::steady_clock;
  LoopResult r;
  double train_seconds = 0, window_seconds = 0;
  int64_t window_tokens = 0;
  const auto t_start = clock::now();

  s.model->train();
  StopSignals stop_signals;
  for (int64_t step = s.start_step + 1; step <= s.max_steps; ++step) {
    const auto t0 = clock::now();
    const double lr = lr_at(s.cfg->optim, step, s.max_steps);
    set_lr(*s.opt, lr);
    s.opt->zero_grad();
    double loss_sum = 0;
    for (int64_t m = 0; m < accum; ++m) {
      s.dist->begin_micro_step(m == accum - 1);
      auto loss = s.micro_loss(step, m);
      (loss / static_cast<double>(accum)).backward();
      loss_sum += loss.item<double>();
    }
    s.dist->all_reduce_grads(params);
    const double loss = s.dist->all_reduce_mean(loss_sum / static_cast<double>(accum));
    const double max_norm = tc.grad_clip > 0 ? tc.grad_clip : std::numeric_limits<double>::infinity();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
    if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
      std::ostringstream os;
      os << "step " << step << ": non-finite " << (!std::isfinite(loss) ? "loss" : "gradient norm") << " (loss "
         << loss << ", grad_norm " << grad_norm << "); stopped before the optimizer step, nothing from this step "
         << "was saved. Try a lower optim.lr or train.grad_clip, or resume from the last checkpoint.";
      throw RunError(os.str());
    }
    s.dist->optimizer_step(*s.opt);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    train_seconds += dt;
    window_seconds += dt;
    window_tokens += s.tokens_per_step;
    if (step == s.start_step + 1) r.first_loss = loss;
    r.last_loss = loss;
    r.steps_done = step;

    const bool eval_now = s.evaluate && tc.eval_every > 0 && (step % tc.eval_every == 0 || step == s.max_steps);
    const bool log_now = eval_now || step % tc.log_every == 0 || step == 1 || step == s.max_steps;
    std::map<std::string, double> ev;
    if (eval_now) ev = s.evaluate();
    if (log_now) {
      const double tps = window_seconds > 0 ? static_cast<double>(window_tokens) / window_seconds : 0;
      window_seconds = 0;
      window_tokens = 0;
      json line = {{"step", step}, {"loss", loss}, {"lr", lr}, {"tokens_per_s", tps}, {"grad_norm", grad_norm}};
      for (auto& [k, v] : ev) line[k] = v;
      if (s.dist->is_main()) {
        if (s.metrics) s.metrics->write(line);
        if (s.scalar) {
          s.scalar("train/loss", step, loss);
          s.scalar("train/lr", step, lr);
          s.scalar("train/grad_norm", step, grad_norm);
          s.scalar("train/tokens_per_s", step, tps);
          for (auto& [k, v] : ev) s.scalar("eval/" + k, step, v);
        }
        const double done = static_cast<double>(step - s.start_step), left = static_cast<double>(s.max_steps - step);
        std::string val = ev.count("val_loss") ? fmt::format(" val_loss {:.4f}", ev["val_loss"]) : "";
        spdlog::info("{} step {}/{} loss {:.4f}{} lr {:.3g} grad_norm {:.3f} {:.0f} tok/s ETA {}", s.name, step,
                     s.max_steps, loss, val, lr, grad_norm, tps, human_duration(train_seconds / done * left));
      }
      if (ev.count("val_loss")) r.last_val_loss = ev["val_loss"];
    }
    const bool saved = (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) || step == s.max_steps;
    if (s.save && saved) s.save(step);
    // Every rank stops at the same step when any one was signalled (the launcher signals all).
    const double signalled = s.dist->all_reduce_mean(g_stop_signal != 0 ? 1.0 : 0.0);
    if (signalled > 0 && step < s.max_steps) {
      if (s.save && !saved) s.save(step);
      stop_signals.stopping();
      r.stopped_by_signal = g_stop_signal != 0 ? static_cast<int>(g_stop_signal) : -1;
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  const int64_t steps = r.steps_done > s.start_step ? r.steps_done - s.start_step : 0;
  r.tokens_per_s = train_seconds > 0 ? static_cast<double>(steps * s.tokens_per_step) / train_seconds : 0;
  return r;
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0;
}

}  // namespace codex
