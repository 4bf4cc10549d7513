#pragma once
// Pretraining (M0): next-token prediction on prepared token shards. A recipe over the engine.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "dist/context.h"
#include "model/gpt.h"

namespace codex {

// Trains (or resumes) the run cfg.run.dir from cfg.train.data; returns the summary JSON
// (steps, loss, val_loss, tokens_per_s, seconds, checkpoint). Throws UsageError / RunError.
nlohmann::json pretrain(const Config& cfg);

// Random windows of block+1 tokens, drawn from one mt19937_64 seeded by run.seed. Every rank
// draws the SAME global batch and keeps its rows [r*B/W, (r+1)*B/W), so the global batch does not
// depend on the world size. The generator state is the loader position saved in checkpoints.
class BatchSampler {
 public:
  BatchSampler(const TokenDataset& data, int64_t block, int64_t global_batch, uint64_t seed, int rank, int world);
  // x, y: (B_local, block) int64; y is x shifted by one token.
  std::pair<torch::Tensor, torch::Tensor> next();
  std::string state() const;
  void set_state(const std::string& s);

 private:
  const TokenDataset& data_;
  int64_t block_, global_batch_, lo_, hi_;
  std::mt19937_64 rng_;
};

// Mean next-token cross-entropy of x (B, T) -> y (B, T) over targets != ignore_index (-100);
// bf16: CUDA autocast for the forward. fused (fp32 only): LM head + loss in row chunks
// (ops/cross_entropy.h), no (B, T, V) logits. `attn_mask` (B, T) optional (left padding).
torch::Tensor lm_loss(GPT& model, const torch::Tensor& x, const torch::Tensor& y, bool bf16, bool fused = true,
                      const torch::Tensor& attn_mask = {});

// Fixed, evenly spaced validation windows (no RNG): the same val_loss for the same weights.
// Mean cross-entropy over `batches` batches of `batch` sequences (rank-sliced, then averaged).
double eval_lm_loss(GPT& model, const TokenDataset& val, int64_t block, int64_t batch, int64_t batches,
                    DistContext& dist, const torch::Device& device, bool bf16, bool fused = true);

}  // namespace codex
