#include "train/engine.h"

#include <ATen/autocast_mode.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/torch_compat.h"

namespace codex {

using json = nlohmann::json;

AutocastScope::AutocastScope(bool enable) : on(enable) {
  if (on) set_cuda_autocast(true, at::kBFloat16);
}
AutocastScope::~AutocastScope() {
  if (!on) return;
  at::autocast::clear_cache();
  set_cuda_autocast(false);
}

// ---- the update step ------------------------------------------------------------------------

UpdateOut update(std::vector<Trainable>& trainables, DistContext& dist, int64_t n_micro,
                 const std::function<MicroOut(int64_t m)>& micro, double grad_clip, int64_t step_for_errors) {
  TORCH_CHECK(n_micro >= 1, "update: n_micro must be >= 1");
  for (auto& t : trainables) t.opt->zero_grad();
  double loss_sum = 0, count = 0;
  std::map<std::string, double> stats;
  for (int64_t m = 0; m < n_micro; ++m) {
    dist.begin_micro_step(m == n_micro - 1);
    MicroOut out = micro(m);
    TORCH_CHECK(out.loss_sum.defined() && out.loss_sum.numel() == 1, "update: micro-batch loss must be a scalar");
    // Every rank runs backward on every micro-batch (gradient hooks of bucketed all-reduce fire
    // there), also when a micro-batch covers no tokens (its loss is 0 * something then).
    out.loss_sum.backward();
    loss_sum += out.loss_sum.item<double>();
    count += out.count;
    for (auto& [k, v] : out.stats) stats[k] += v;
  }
  dist.all_reduce_grads();
  // One collective for every scalar: loss, count, then the stats in key order (every rank
  // reports the same keys).
  std::vector<double> packed = {loss_sum, count};
  for (auto& [k, v] : stats) packed.push_back(v);
  packed = dist.all_reduce_sum(std::move(packed));
  UpdateOut r;
  r.count = packed[1];
  r.loss = r.count > 0 ? packed[0] / r.count : 0.0;
  size_t i = 2;
  for (auto& [k, v] : stats) r.stats[k] = packed[i++];
  if (r.count <= 0) {  // nothing to learn from (e.g. every row masked): no step, no moment update
    for (auto& t : trainables) r.grad_norms[t.name] = 0;
    return r;
  }
  // Gradients were averaged over ranks: (1/W) sum_r grad(loss_sum_r). Scale to grad(sum)/count.
  const double scale = static_cast<double>(dist.world_size()) / r.count;
  {
    torch::NoGradGuard ng;
    for (auto& t : trainables)
      for (auto& p : t.params)
        if (p.grad().defined()) p.grad().mul_(scale);
  }
  const double max_norm = grad_clip > 0 ? grad_clip : std::numeric_limits<double>::infinity();
  bool finite = std::isfinite(r.loss);
  std::string bad = finite ? "" : "loss";
  for (auto& t : trainables) {
    const double gn = torch::nn::utils::clip_grad_norm_(t.params, max_norm);
    r.grad_norms[t.name] = gn;
    if (!std::isfinite(gn) && finite) {
      finite = false;
      bad = "gradient norm" + (t.name.empty() ? std::string() : " of " + t.name);
    }
  }
  if (!finite) {
    std::ostringstream os;
    os << "step " << step_for_errors << ": non-finite " << bad << " (loss " << r.loss << "); stopped before the "
       << "optimizer step, nothing from this step was saved. Try a lower optim.lr or train.grad_clip, or resume from "
       << "the last checkpoint.";
    throw RunError(os.str());
  }
  for (auto& t : trainables) dist.optimizer_step(*t.opt);
  return r;
}

// ---- optimizer ------------------------------------------------------------------------------

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& model, const OptimConfig& o) {
  return make_adamw(model.parameters(), o);
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const OptimConfig& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
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

// The metrics line, TensorBoard scalars and progress line of a logged step (rank 0 only).
void log_step(const DriverSpec& s, int64_t step, double lr, double tps, const StepOut& out,
              const std::map<std::string, double>& ev, double train_seconds) {
  json line = {{"step", step}, {"loss", out.loss}, {"lr", lr}, {"tokens_per_s", tps}};
  for (auto& [k, v] : out.stats) line[k] = v;
  for (auto& [k, v] : ev) line[k] = v;
  if (!s.dist->is_main()) return;
  if (s.metrics) s.metrics->write(line);
  if (s.scalar) {
    s.scalar("train/loss", step, out.loss);
    s.scalar("train/lr", step, lr);
    s.scalar("train/tokens_per_s", step, tps);
    for (auto& [k, v] : out.stats) s.scalar("train/" + k, step, v);
    for (auto& [k, v] : ev) s.scalar("eval/" + k, step, v);
  }
  const double done = static_cast<double>(step - s.start_step), left = static_cast<double>(s.max_steps - step);
  std::string extra;
  for (auto& [k, v] : ev) extra += fmt::format(" {} {:.4f}", k, v);
  for (const char* k : {"grad_norm", "reward", "kl", "accuracy"})
    if (out.stats.count(k)) extra += fmt::format(" {} {:.4g}", k, out.stats.at(k));
  spdlog::info("{} step {}/{} loss {:.4f}{} lr {:.3g} {:.0f} tok/s ETA {}", s.name, step, s.max_steps, out.loss,
               extra, lr, tps, human_duration(train_seconds / done * left));
}

}  // namespace

DriverResult run_steps(DriverSpec& s) {
  TORCH_CHECK(s.cfg && s.dist && s.trainables && s.step, "run_steps: incomplete DriverSpec");
  const TrainConfig& tc = s.cfg->train;
  using clock = std::chrono::steady_clock;
  DriverResult r;
  double train_seconds = 0, window_seconds = 0, window_tokens = 0, tokens_total = 0;
  double best = std::numeric_limits<double>::infinity();
  int64_t evals_without_gain = 0;
  const auto t_start = clock::now();

  StopSignals stop_signals;
  for (int64_t step = s.start_step + 1; step <= s.max_steps; ++step) {
    const auto t0 = clock::now();
    const double lr = lr_at(s.cfg->optim, step, s.max_steps);
    for (auto& t : *s.trainables) set_lr(*t.opt, lr * t.lr_scale);
    StepOut out = s.step(step, lr);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    train_seconds += dt;
    window_seconds += dt;
    window_tokens += out.tokens;
    tokens_total += out.tokens;
    if (step == s.start_step + 1) r.first_loss = out.loss;
    r.last_loss = out.loss;
    r.steps_done = step;

    const bool eval_now = s.evaluate && tc.eval_every > 0 && (step % tc.eval_every == 0 || step == s.max_steps);
    const bool log_now = eval_now || step % tc.log_every == 0 || step == 1 || step == s.max_steps;
    std::map<std::string, double> ev;
    if (eval_now) {
      ev = s.evaluate();
      r.last_eval = ev;
    }
    if (log_now) {
      const double tps = window_seconds > 0 ? window_tokens / window_seconds : 0;
      window_seconds = 0;
      window_tokens = 0;
      log_step(s, step, lr, tps, out, ev, train_seconds);
    }
    bool stop_early = false;
    if (eval_now && s.patience > 0 && ev.count(s.patience_key)) {
      if (ev[s.patience_key] < best) {
        best = ev[s.patience_key];
        evals_without_gain = 0;
      } else if (++evals_without_gain >= s.patience && step < s.max_steps) {
        stop_early = true;
      }
    }
    const bool saved = (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0) || step == s.max_steps;
    if (s.save && (saved || stop_early)) s.save(step);
    if (stop_early) {
      if (s.dist->is_main())
        spdlog::info("{}: {} did not improve for {} evals (train.patience); stopping at step {}", s.name,
                     s.patience_key, s.patience, step);
      r.stopped_early = true;
      break;
    }
    // Every rank stops at the same step when any one was signalled (the launcher signals all).
    const double signalled = s.dist->all_reduce_sum({g_stop_signal != 0 ? 1.0 : 0.0})[0];
    if (signalled > 0 && step < s.max_steps) {
      if (s.save && !saved) s.save(step);
      stop_signals.stopping();
      r.stopped_by_signal = g_stop_signal != 0 ? static_cast<int>(g_stop_signal) : -1;
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  r.tokens_per_s = train_seconds > 0 ? tokens_total / train_seconds : 0;
  return r;
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  return 0;
}

}  // namespace codex
