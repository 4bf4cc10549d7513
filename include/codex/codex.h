#pragma once
// codex-train's C++ API: the seeds' names over the same library functions the command line uses.
//
//   #include <codex/codex.h>          CMake: find_package(codex_train)
//                                            target_link_libraries(app codex_train::codex_train)
//
// Every function throws codex::Error (a std::runtime_error) with the same one-line message the
// command line prints after "codex-train: error:". A run folder holds what the command line would
// write (config.yaml, metrics.jsonl, checkpoints/); an empty run_dir means a fresh temporary folder.
// `overrides` take any dotted config key of the command line ("model.n_layer" -> "4"); they are
// applied after the struct's own fields, so they win.
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace codex {
// The API's types and functions live in an inline namespace: users write codex::Demo, while the
// library's own (internal) codex:: names never collide with them at link time.
inline namespace v1 {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Demo { std::string prompt, response; };
struct Preference { std::string prompt, chosen, rejected; };

struct PretrainCfg    { int64_t steps = 200; double lr = 1e-3; uint64_t seed = 0; std::string run_dir;
                        std::map<std::string, std::string> overrides; };   // dotted config keys
struct SFTCfg         { int64_t epochs = 2; double lr = 1e-4; uint64_t seed = 0; std::string run_dir;
                        std::map<std::string, std::string> overrides; };
struct RewardModelCfg { int64_t epochs = 3; double lr = 1e-4; uint64_t seed = 0; std::string run_dir;
                        std::map<std::string, std::string> overrides; };
struct RLHFCfg        { int64_t steps = 20; double lr = 1e-5; double kl_coef = 0.1; uint64_t seed = 0;
                        std::string run_dir; std::map<std::string, std::string> overrides; };

struct Weights { std::string dir; };   // a checkpoint folder (weights, tokenizer, config)

struct ModelHandle {            // the seeds' ModelHandle: Weights + the disallowed-token set
  Weights weights; std::set<std::string> disallowed;
  // One completion of `prompt` (temperature 0 = greedy; seeded, so repeatable). Strings in
  // `disallowed` never appear in it; it stops at end-of-text or at the checkpoint's stop sequences
  // (generate.stop in its config.yaml).
  std::string generate(const std::string& prompt, int64_t max_new_tokens = 64, double temperature = 0) const;
  std::vector<int64_t> tokenize(const std::string& text) const;
  // A complete checkpoint folder (usable by `codex-train generate --checkpoint DIR`); the
  // disallowed set is kept in its config (generate.disallowed). Refuses a non-empty folder that
  // is not a checkpoint.
  void save(const std::string& dir) const;
};

struct RewardModelHandle { Weights weights; double score(const std::string& prompt, const std::string& completion) const; };

std::vector<int64_t> tokenize(const std::string& text, const ModelHandle& model);
// Tokenizer (its vocabulary shrunk to what a small corpus supports), data preparation, then
// pretraining: each element of `corpus` is one document (a source file's text).
ModelHandle pretrain(const std::vector<std::string>& corpus, const PretrainCfg& cfg);
ModelHandle sft(const ModelHandle& model, const std::vector<Demo>& demos, const SFTCfg& cfg);
// The reward model's trunk starts from the last model sft() returned in this process (else the
// last one pretrain() returned), as InstructGPT starts it from the supervised model; its scalar
// head starts fresh. cfg.overrides["reward.init"] (a weights or run folder) chooses another
// start. With neither, a codex::Error says so.
RewardModelHandle train_reward_model(const std::vector<Preference>& prefs, const RewardModelCfg& cfg);
ModelHandle rlhf_ppo(const ModelHandle& model, const RewardModelHandle& rm, const RLHFCfg& cfg);

}  // namespace v1
}  // namespace codex
