#pragma once
// A tiny prepared data folder for trainer tests: a learnable token stream (each token mostly
// determines the next) split into train/val shards, as `data prepare` would write them.
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace codex::test {

inline std::vector<int32_t> patterned_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  int32_t cur = 0;
  for (auto& x : t) {
    // 90%: a fixed successor; 10%: a random token (so the loss floor is well above zero).
    cur = (rng() % 10 == 0) ? static_cast<int32_t>(rng() % vocab) : static_cast<int32_t>((cur * 7 + 3) % vocab);
    x = cur;
  }
  return t;
}

inline void write_prepared_folder(const std::filesystem::path& dir, uint32_t seed = 1, int64_t vocab = 64) {
  std::filesystem::create_directories(dir);
  write_token_shard((dir / "train_00000.bin").string(), patterned_tokens(20000, vocab, seed), vocab);
  write_token_shard((dir / "val_00000.bin").string(), patterned_tokens(4000, vocab, 2), vocab);
}

// Overrides for a model and run small enough for a test (a few ms per step on one thread).
inline std::string tiny_run_args(const std::string& data, const std::string& run_dir) {
  return "pretrain --config " + std::string(CODEX_SOURCE_DIR) + "/configs/pretrain/tiny.yaml train.data=" + data +
         " run.dir=" + run_dir +
         " run.threads=1 model.n_layer=1 model.n_head=2 model.n_embd=32 model.block_size=32 train.batch_size=4"
         " train.eval_batches=2 optim.warmup_steps=5 optim.lr=3e-3";
}

}  // namespace codex::test
