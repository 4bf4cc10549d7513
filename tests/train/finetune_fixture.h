#pragma once
// A tiny LM checkpoint with a real tokenizer (random weights) for the fine-tuning trainers' tests,
// and small data files in their formats.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "helpers.h"
#include "model/gpt.h"
#include "tokenizer/tiny_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace codex::test {

// <dir>/m0: a weights checkpoint (1 layer, 32 wide, block 64) + its tokenizer. Returns its path.
inline std::string make_lm_checkpoint(const std::filesystem::path& dir, int64_t block = 64, uint64_t seed = 5) {
  const std::string tok_path = train_tiny_tokenizer(dir, true, 400);
  Tokenizer tok(tok_path);
  Config cfg = load_config("", {"model.n_layer=1", "model.n_head=2", "model.n_embd=32",
                                "model.block_size=" + std::to_string(block), "optim.lr=0.1"});
  torch::manual_seed(seed);
  GPT m(GPTConfig::from(cfg.model, tok.vocab_size()));
  const std::string out = (dir / "m0").string();
  save_model_checkpoint(out, m, cfg, tok_path);
  return out;
}

// Every line of <run>/metrics.jsonl.
inline std::vector<nlohmann::json> metrics_of(const std::filesystem::path& run) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(run / "metrics.jsonl"));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

// Common overrides for a fast fine-tuning run.
inline std::string tiny_ft_args(const std::string& run_dir) {
  return " run.dir=" + run_dir + " run.threads=1 train.batch_size=4 train.log_every=1 train.eval_every=0"
         " train.checkpoint_every=0 optim.warmup_steps=2";
}

}  // namespace codex::test
