#pragma once
// The reward model (Bradley-Terry on preference pairs): the GPT trunk with a scalar reward head,
// read at each sequence's last real token (its end-of-text token). A recipe over the engine.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/gpt.h"

namespace codex {

class Tokenizer;
struct Preference;
struct Sequence;

// Pairwise loss terms of a batch of scores: loss_i = -log sigma(r_c - r_r - margin_i)
// + center_coef * (r_c + r_r)^2. Returns (B) per-pair losses (differentiable).
torch::Tensor bradley_terry_loss(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected,
                                 const torch::Tensor& margin, double center_coef);

// Scores of sequences (B) with `model`'s reward_head (or value_head) at each row's last real token.
torch::Tensor score_sequences(GPT& model, const std::vector<const Sequence*>& rows, const Tokenizer& tok,
                              const torch::Device& device, const std::string& head = "reward_head");

struct PairMetrics {
  double accuracy = 0, mean_margin = 0, loss = 0;
  int64_t pairs = 0;
};
// Held-out metrics of a reward model on preference pairs (batched, no grad).
PairMetrics evaluate_pairs(GPT& model, const Tokenizer& tok, const std::vector<Preference>& prefs,
                           const torch::Device& device, int64_t batch = 16, double center_coef = 0);

// Trains (or resumes) the reward model run cfg.run.dir; returns the summary JSON.
nlohmann::json train_reward(const Config& cfg);

}  // namespace codex
