#include "train/run.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include "dist/dist.h"
#include "util/error.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

std::string content_checksum(const std::string& path) {
  const fs::path p(path);
  if (fs::is_regular_file(p)) {
    const std::string bytes = read_file(p);
    return hex64(fnv1a64(bytes.data(), bytes.size()));
  }
  if (!fs::is_directory(p)) return "missing";
  std::vector<fs::path> files;
  for (auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  uint64_t h = fnv1a64("", 0);
  for (auto& f : files) {
    const std::string rel = fs::relative(f, p).string();
    h = fnv1a64(rel.data(), rel.size(), h);
    const std::string bytes = read_file(f);
    h = fnv1a64(bytes.data(), bytes.size(), h);
  }
  return hex64(h);
}

const std::vector<std::string>& resumable_keys() {
  static const std::vector<std::string> keys = {
      "train.max_steps", "train.log_every", "train.eval_every", "train.eval_batches", "train.checkpoint_every",
      "train.keep_checkpoints", "train.patience", "run.threads", "run.dir", "dist.timeout_s", "dist.backend",
      "dist.zero1", "dist.bucket_mb", "resume", "overwrite",
      "sft.epochs", "reward.epochs"};
  return keys;
}

namespace {

void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten(it->second, prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>(), out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  }
}

std::map<std::string, std::string> flat(const Config& c) {
  std::map<std::string, std::string> out;
  flatten(YAML::Load(config_to_yaml(c)), "", out);
  return out;
}

}  // namespace

std::vector<std::string> config_changes(const Config& saved, const Config& now, std::vector<std::string>* allowed) {
  auto a = flat(saved), b = flat(now);
  std::vector<std::string> changes;
  std::set<std::string> keys;
  for (auto& [k, v] : a) keys.insert(k);
  for (auto& [k, v] : b) keys.insert(k);
  const auto& ok = resumable_keys();
  for (auto& k : keys) {
    const std::string va = a.count(k) ? a[k] : "(unset)", vb = b.count(k) ? b[k] : "(unset)";
    if (va == vb) continue;
    const std::string line = k + ": " + va + " -> " + vb;
    if (std::find(ok.begin(), ok.end(), k) != ok.end()) {
      if (allowed && k != "resume" && k != "run.dir" && k != "overwrite") allowed->push_back(line);
    } else {
      changes.push_back(line);
    }
  }
  return changes;
}

std::string StartPoint::weights_checksum() const { return content_checksum((fs::path(dir) / "model.pt").string()); }

StartPoint load_start_point(const std::string& key, const std::string& spec, const std::string& expected) {
  if (spec.empty()) throw UsageError(key + ": expected " + expected);
  StartPoint s;
  s.dir = resolve_checkpoint(spec);
  s.loaded = load_model(s.dir);
  s.tokenizer_path = s.loaded.tokenizer_path;
  if (s.tokenizer_path.empty()) throw UsageError(key + ": checkpoint " + s.dir + " carries no tokenizer");
  return s;
}

int64_t steps_for_epochs(const Config& cfg, int64_t n, int64_t epochs) {
  const TrainConfig& tc = cfg.train;
  if (tc.max_steps > 0 && cfg.explicitly_set.count("train.max_steps")) return tc.max_steps;
  const int64_t per_step = tc.batch_size * tc.grad_accum;
  return epochs * ((n + per_step - 1) / per_step);
}

void Run::require_divisible(const std::string& key, int64_t value) {
  const int W = dist_->world_size();
  if (value % W != 0)
    throw UsageError(key + " (" + std::to_string(value) + ") must be divisible by the world size (" +
                     std::to_string(W) + ")");
}

Run::Run(const Config& cfg, std::string trainer) : cfg_(cfg), trainer_(std::move(trainer)) {
  threads_ = configure_threads(cfg_.run.threads);
  device_ = pick_device(cfg_.run);
  bf16_ = use_bf16_autocast(cfg_.train, device_);
  // One process, or one rank of a torchrun/Slurm/MPI-launched job (c10d; cuda:<LOCAL_RANK>).
  dist_ = make_dist_context(cfg_.dist, device_);
  make_current_device(device_);
  configure_float32_math(cfg_.train, device_);
  const fs::path dir(cfg_.run.dir);
  if (dist_->is_main()) {
    std::error_code ec;
    created_dir_ = !fs::exists(dir, ec);
    make_output_dir(dir, "run.dir");
    created_lock_ = !fs::exists(dir / ".lock", ec);
    lock_ = std::make_unique<DirLock>(dir);  // one run per run.dir (held until the process ends)
    // Found now rather than at the first checkpoint, after minutes of training.
    created_ckpts_ = !fs::exists(dir / "checkpoints", ec);
    make_output_dir(dir / "checkpoints", "checkpoint folder");
  }
  try {
    open_start();
  } catch (...) {
    discard_if_unstarted();  // a refused run leaves nothing behind (no .lock, no empty checkpoints/)
    throw;
  }
}

void Run::open_start() {
  const fs::path dir(cfg_.run.dir);
  if (!cfg_.resume && fs::exists(dir / "checkpoints" / "latest"))
    throw UsageError("run.dir '" + cfg_.run.dir + "' already holds a run with checkpoints; pass resume=true to continue "
                     "it, or choose another run.dir (nothing was changed)");
  if (cfg_.resume) {
    resume_from_ = find_resume_checkpoint(cfg_.run.dir);
    if (!resume_from_ && cfg_.resume_must)
      throw UsageError("resume=must: no checkpoint to continue under '" + cfg_.run.dir +
                       "/checkpoints' (check run.dir; resume=true starts a fresh run instead)");
    if (!resume_from_)
      spdlog::info("resume: no checkpoint under {}/checkpoints yet; a fresh run starts there", cfg_.run.dir);
  }
}

Run::~Run() { discard_if_unstarted(); }

void Run::discard_if_unstarted() noexcept {
  if (started_ || !dist_ || !dist_->is_main()) return;
  const fs::path dir(cfg_.run.dir);
  std::error_code ec;
  // Only what this run created, and only while empty: a refused run leaves the folder as it found it.
  if (created_ckpts_ && fs::is_empty(dir / "checkpoints", ec)) fs::remove(dir / "checkpoints", ec);
  if (created_lock_ && lock_) fs::remove(dir / ".lock", ec);
  lock_.reset();
  if (created_dir_ && fs::is_empty(dir, ec)) fs::remove(dir, ec);
  created_ckpts_ = created_lock_ = created_dir_ = false;
}

TrainState Run::attach(GPT& model, const nlohmann::json& resume_state) {
  model->to(device_);
  dist_->watch(model->parameters());
  TrainState t;
  t.opt = make_adamw(*model, cfg_.optim);
  t.trainables = {{"", model->parameters(), t.opt.get()}};
  if (resume_from_) {
    load_optimizer_and_rng(*resume_from_, *t.opt);
    dist_->shard_optimizer_state(*t.opt);
    t.start_step = resume_state.at("step");
  }
  return t;
}

json Run::check_resume(const Fingerprint& fp) {
  TORCH_CHECK(resume_from_, "Run::check_resume without a checkpoint");
  const std::string& ck = *resume_from_;
  const json st = read_checkpoint_state(ck);
  // Data and tokenizer: a changed content is never resumable.
  if (st.contains("fingerprint")) {
    for (auto& [k, v] : fp) {
      if (!st["fingerprint"].contains(k)) continue;
      const std::string old = st["fingerprint"][k].get<std::string>();
      if (old != v)
        throw UsageError("resume: the run's " + k + " changed since checkpoint " + ck + " (checksum " + old + " -> " + v +
                         "); resume the run with the same " + k + ", or start a new run.dir");
    }
  }
  const fs::path saved_cfg = fs::path(ck) / "config.yaml";
  if (fs::exists(saved_cfg)) {
    Config saved = load_config(saved_cfg.string(), {});
    std::vector<std::string> allowed;
    auto changes = config_changes(saved, cfg_, &allowed);
    if (!changes.empty()) {
      std::string msg = "resume: the config changed since " + ck + ": ";
      for (size_t i = 0; i < changes.size(); ++i) msg += (i ? "; " : "") + changes[i];
      msg += " (only the step count, cadences, threads and keep_checkpoints may change on resume; use a new run.dir)";
      throw UsageError(msg);
    }
    if (!allowed.empty() && dist_->is_main()) {
      std::string msg;
      for (size_t i = 0; i < allowed.size(); ++i) msg += (i ? "; " : "") + allowed[i];
      spdlog::info("resume: allowed config changes: {}", msg);
    }
  }
  if (dist_->is_main()) spdlog::info("{}: resuming from step {} ({})", trainer_, st.value("step", int64_t{0}), ck);
  return st;
}

void Run::start(int64_t start_step, const Fingerprint& fp, DriverSpec& spec) {
  fp_ = fp;
  started_ = true;
  if (dist_->is_main()) {
    write_file_atomic(fs::path(cfg_.run.dir) / "config.yaml", config_to_yaml(cfg_));
    metrics_ = std::make_unique<MetricsLog>(cfg_.run.dir, start_step);
    tb_ = std::make_unique<TensorBoardWriter>(cfg_.run.dir);
  }
  spec.name = trainer_;
  spec.cfg = &cfg_;
  spec.dist = dist_.get();
  spec.start_step = start_step;
  spec.metrics = metrics_.get();
  if (tb_) spec.scalar = [this](const std::string& tag, int64_t step, double v) { tb_->add_scalar(tag, step, v); };
}

std::string Run::save(int64_t step, const std::vector<ModuleRef>& modules, const std::string& tokenizer_path,
                      json state) {
  for (auto& m : modules)
    if (m.opt) dist_->gather_optimizer_state(*m.opt);
  if (dist_->is_main()) {
    json fpj = json::object();
    for (auto& [k, v] : fp_) fpj[k] = v;
    state["fingerprint"] = fpj;
    state["trainer"] = trainer_;
    last_ckpt_ = save_training_checkpoint(cfg_.run.dir, step, modules, cfg_, tokenizer_path, state);
  }
  for (auto& m : modules)
    if (m.opt) dist_->shard_optimizer_state(*m.opt);
  if (tb_) tb_->flush();
  dist_->barrier();
  return last_ckpt_;
}

json Run::finish(const DriverResult& r, int64_t start_step, json extra) {
  if (r.stopped_by_signal != 0) {
    const std::string by = r.stopped_by_signal > 0 ? strsignal(r.stopped_by_signal) : std::string("a peer rank's signal");
    throw RunError("interrupted (" + by + ") after step " + std::to_string(r.steps_done) + "; checkpoint " +
                   (last_ckpt_.empty() ? std::string("(rank 0 wrote it)") : last_ckpt_) +
                   " written; rerun the same command" + (cfg_.resume ? std::string() : std::string(" with resume=true")) +
                   " to continue");
  }
  if (tb_) tb_->flush();
  const int64_t done = std::max<int64_t>(0, r.steps_done - start_step);
  std::string ev;
  for (auto& [k, v] : r.last_eval) ev += fmt::format(", {} {:.4f}", k, v);
  if (dist_->is_main())
    spdlog::info("{}: done, {} steps in {} ({:.0f} tok/s); loss {:.4f} -> {:.4f}{}; checkpoint {}", trainer_, done,
                 human_duration(r.seconds), r.tokens_per_s, r.first_loss, r.last_loss, ev,
                 last_ckpt_.empty() ? "(none)" : last_ckpt_);
  json out = {{"steps", std::max(r.steps_done, start_step)}, {"loss", r.last_loss}, {"tokens_per_s", r.tokens_per_s},
              {"seconds", r.seconds}, {"checkpoint", last_ckpt_}};
  if (r.stopped_early) out["stopped_early"] = true;
  for (auto& [k, v] : r.last_eval) out[k] = v;
  for (auto& [k, v] : extra.items()) out[k] = v;
  return out;
}

json Run::already_complete(int64_t step, int64_t max_steps) {
  spdlog::info("{}: the run is already complete (step {} of {}); nothing to do", trainer_, step, max_steps);
  return json{{"steps", step}, {"checkpoint", *resume_from_}, {"complete", true}};
}

}  // namespace codex
