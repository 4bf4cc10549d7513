#pragma once
// The run context every trainer opens first: threads, device, processes, the run.dir lock,
// resume vs fresh (with the run's fingerprint checked), the output files (config.yaml,
// metrics.jsonl, TensorBoard), checkpoint saving across ranks, the interrupt message and the
// summary line. A trainer (pretrain.cpp, sft.cpp, reward.cpp, rl/ppo.cpp) is then only its recipe.
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "dist/context.h"
#include "train/engine.h"
#include "train/tensorboard.h"
#include "util/fs.h"

namespace codex {

// What a run was trained on: content checksums of its data and tokenizer (and anything else a
// trainer names). Saved in every checkpoint; resume=true refuses a run whose fingerprint changed.
using Fingerprint = std::map<std::string, std::string>;
// FNV-1a 64 over a file, or over every regular file of a folder (names + bytes, sorted).
std::string content_checksum(const std::string& path);

// Config keys that may change on resume (said in one line); any other change is refused.
const std::vector<std::string>& resumable_keys();
// "key: old -> new" for every differing key of two resolved configs, except the resumable ones
// (those go to `allowed`) and `resume` itself.
std::vector<std::string> config_changes(const Config& saved, const Config& now, std::vector<std::string>* allowed);

// The checkpoint a fine-tuning trainer starts from: `spec` resolved (a run folder -> its latest
// checkpoint) and loaded on the CPU; `key` (e.g. "sft.init") names it in messages. UsageError
// when it is unset, missing, or carries no tokenizer.
struct StartPoint {
  std::string dir;             // the resolved checkpoint folder
  LoadedModel loaded;          // released by the trainer once its own model holds the weights
  std::string tokenizer_path;  // the checkpoint's tokenizer
  // Content checksum of its weights (model.pt), for the run's fingerprint.
  std::string weights_checksum() const;
};
StartPoint load_start_point(const std::string& key, const std::string& spec, const std::string& expected);

// Steps of an epoch-based trainer: train.max_steps when given explicitly, else
// epochs x ceil(n / (train.batch_size x train.grad_accum)).
int64_t steps_for_epochs(const Config& cfg, int64_t n, int64_t epochs);

// A model's side of a run (Run::attach): its AdamW over every parameter, as the engine's one
// trainable, and the step to continue after (0 when fresh).
struct TrainState {
  std::unique_ptr<torch::optim::AdamW> opt;
  std::vector<Trainable> trainables;
  int64_t start_step = 0;
};

class Run {
 public:
  // `trainer` labels logs ("pretrain", "sft", ...). Refuses a run.dir that holds a run unless
  // resume=true; with resume=true finds the checkpoint to continue from.
  Run(const Config& cfg, std::string trainer);
  ~Run();

  const Config& cfg() const { return cfg_; }
  const std::string& trainer() const { return trainer_; }
  DistContext& dist() { return *dist_; }
  bool is_main() const { return dist_->is_main(); }
  const torch::Device& device() const { return device_; }
  bool bf16() const { return bf16_; }
  int threads() const { return threads_; }
  // UsageError unless `value` (config key `key`) divides evenly over the ranks.
  void require_divisible(const std::string& key, int64_t value);
  // The checkpoint to resume from (resume=true and one exists).
  const std::optional<std::string>& resume_from() const { return resume_from_; }

  // Resuming: checks the checkpoint's config and fingerprint against this run's (UsageError naming
  // what changed) and returns its state.json. Call before loading anything from it.
  nlohmann::json check_resume(const Fingerprint& fp);
  // The prologue every trainer with one model shares: the model onto the run's device, its
  // parameters watched by the gradient all-reduce, an AdamW from optim.*; resuming, the
  // checkpoint's optimizer state and RNG (ZeRO-sharded when on) and resume_state's "step".
  // Call after the weights are loaded.
  TrainState attach(GPT& model, const nlohmann::json& resume_state);
  // Opens config.yaml, metrics.jsonl and TensorBoard once the start step is known, and fills the
  // driver's outputs.
  void start(int64_t start_step, const Fingerprint& fp, DriverSpec& spec);
  // Saves a checkpoint of `modules` (every rank calls it; rank 0 writes; ZeRO state gathered).
  std::string save(int64_t step, const std::vector<ModuleRef>& modules, const std::string& tokenizer_path,
                   nlohmann::json state);
  const std::string& last_checkpoint() const { return last_ckpt_; }
  // After the driver: throws RunError on a signal stop (exit 1, "rerun the same command [with resume=true] to continue"),
  // else logs and returns the summary JSON (also printed on stdout by commands).
  nlohmann::json finish(const DriverResult& r, int64_t start_step, nlohmann::json extra = {});
  // A resumed run that is already complete: the summary to print.
  nlohmann::json already_complete(int64_t step, int64_t max_steps);

 private:
  Config cfg_;
  std::string trainer_;
  int threads_ = 1;
  torch::Device device_{torch::kCPU};
  bool bf16_ = false;
  std::shared_ptr<DistContext> dist_;
  std::unique_ptr<DirLock> lock_;
  // What the constructor created; removed again (when still empty) if the run never starts.
  bool created_dir_ = false, created_lock_ = false, created_ckpts_ = false, started_ = false;
  void open_start();
  void discard_if_unstarted() noexcept;
  std::optional<std::string> resume_from_;
  std::unique_ptr<MetricsLog> metrics_;
  std::unique_ptr<TensorBoardWriter> tb_;
  Fingerprint fp_;
  std::string last_ckpt_;
};

}  // namespace codex
