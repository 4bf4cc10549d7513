#pragma once
// Checkpoints: one folder per save, `<run.dir>/checkpoints/step_<8 digits>/`:
//   model.pt        weights, a pickled {name: float32 tensor} dict (our = HF GPT-2 names)
//   optim.pt        optimizer state (AdamW moments and step counts); training checkpoints only
//   rng.pt          every RNG state (torch CPU, CUDA when present); training checkpoints only
//   state.json      step, GPT shape, data-loader position (sampler RNG), trainer extras
//   config.yaml     the resolved config of the run
//   tokenizer.model a copy of the tokenizer, so generate / eval / export need nothing else
//                   (tokenizer.json for a byte-level BPE tokenizer)
//   MANIFEST.json   written last: magic, format version, size + FNV-1a 64 of every file above
// A folder is built as `.tmp-step_XXXXXXXX.<pid>` and renamed into place only when complete;
// `checkpoints/latest` (a one-line text file) then names it. A folder is valid only if its
// manifest parses, has our magic and version, and every listed file has its size and checksum.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"

namespace codex {

constexpr const char* kCheckpointMagic = "CODEX-TRAIN-CHECKPOINT";
constexpr int kCheckpointVersion = 1;

// A loaded model for inference/export. `dir` may be a checkpoint folder
// (<run.dir>/checkpoints/step_XXXXXXXX) or a run dir (then checkpoints/latest is used).
struct LoadedModel {
  GPT model{nullptr};
  GPTConfig gpt;
  Config config;
  std::string tokenizer_path;  // "<dir>/tokenizer.model" or ".json", or "" when the checkpoint has none
  std::string dir;             // the checkpoint folder actually read (absolute, canonical)
  int64_t step = 0;
};
// The model carries the heads the checkpoint records.
LoadedModel load_model(const std::string& dir, torch::Device device = torch::kCPU);
// Resolves a user-given model path (checkpoint folder, run dir, checkpoints/latest) to the checkpoint
// folder load_model would read; UsageError when there is none.
std::string resolve_checkpoint(const std::string& dir);

// Writes a weights-only checkpoint folder (used by `import hf`): model + config + tokenizer copy,
// loadable by load_model and usable as train.init_from.
void save_model_checkpoint(const std::string& dir, GPT& model, const Config& cfg, const std::string& tokenizer_path);

// ---- training checkpoints -------------------------------------------------------------------

std::string checkpoint_name(int64_t step);  // "step_00000123"

// A checkpoint holds named modules, each a GPT trunk with its heads and, for training
// checkpoints, its optimizer state. The main one is "model" (model.pt / optim.pt: the files every
// command reads); others (PPO's "value") are <name>.pt / <name>.optim.pt. state.json records each
// module's shape and heads ("gpt", "heads" for the main one; "modules": {name: {...}} for others).
struct ModuleRef {
  std::string name = "model";
  GPT model{nullptr};
  torch::optim::Optimizer* opt = nullptr;  // null: weights only
};

// Saves a full training checkpoint of `step` under <run_dir>/checkpoints/, points `latest` at it
// and deletes all but the newest train.keep_checkpoints *valid* ones (a corrupt one is moved
// aside to corrupt-step_..., never counted). A failed write (a full disk) leaves no temporary
// folder and says why (RunError). `state` is merged into state.json (the
// trainer's data position and extras). The first module must be "model".
std::string save_training_checkpoint(const std::string& run_dir, int64_t step, const std::vector<ModuleRef>& modules,
                                     const Config& cfg, const std::string& tokenizer_path,
                                     const nlohmann::json& state);
std::string save_training_checkpoint(const std::string& run_dir, int64_t step, GPT& model,
                                     torch::optim::Optimizer* opt, const Config& cfg,
                                     const std::string& tokenizer_path, const nlohmann::json& state);

// Pre-flight before training: the disk holding <run_dir>/checkpoints must have room for two
// checkpoints (a new one is complete before the oldest is pruned): twice the size of the newest
// existing one, else twice `estimate_bytes` (weights + optimizer state of a fresh run). A
// UsageError giving both figures when it does not.
void check_checkpoint_space(const std::string& run_dir, int64_t estimate_bytes);

// Throws std::runtime_error saying what is wrong when `dir` is not a complete, intact checkpoint.
void verify_checkpoint(const std::string& dir);

// The checkpoint a resumed run starts from: `latest` if valid, else the newest valid step_*
// folder (each corrupt one skipped with a warning). nullopt when there is no checkpoint at all;
// a UsageError (exit 2) when checkpoints exist but none is valid.
std::optional<std::string> find_resume_checkpoint(const std::string& run_dir);

// Reads state.json of a (verified) checkpoint.
nlohmann::json read_checkpoint_state(const std::string& dir);

// How weights load into a model. strict: every parameter, both ways. trunk: the transformer only —
// scalar-head parameters are skipped on both sides (a reward/value model starting from an LM
// checkpoint keeps its fresh head; an LM starting from a reward model drops the head).
enum class LoadMode { strict, trunk };

// Copies module `module`'s weights into `model`. Refuses (UsageError) a checkpoint whose parameter
// names or shapes differ, naming the differing keys.
void load_weights(const std::string& dir, GPT& model, LoadMode mode = LoadMode::strict,
                  const std::string& module = "model");

// The heads a checkpoint's module has ("lm" for checkpoints written before heads existed).
std::vector<std::string> checkpoint_heads(const std::string& dir, const std::string& module = "model");

// Restores one module's optimizer state.
void load_optimizer(const std::string& dir, torch::optim::Optimizer& opt, const std::string& module = "model");
// Restores every RNG state saved by save_training_checkpoint.
void load_rng(const std::string& dir);
// Both (the main module's optimizer).
void load_optimizer_and_rng(const std::string& dir, torch::optim::Optimizer& opt);

// A model used without training (a reference or reward model in PPO): no gradients, eval mode.
void freeze(GPT& model);

}  // namespace codex
