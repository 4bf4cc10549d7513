#pragma once
// The math of PPO / GRPO / RLOO as small pure functions over tensors (docs/rlhf.md has the
// formulas). Layout: (B, T) per-token tensors over response tokens, `mask` (B, T) float 1 on real
// response tokens (the end token included), 0 on padding after a response ends.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace codex::rl {

// The per-token KL estimates (k1, k2, k3) are codex::kl_estimate in ops/logprob.h: one definition
// for the fused scoring op, the penalty and the logged KL.

// GAE (Schulman et al. 2016) per row, over the masked steps: delta_t = r_t + gamma V_{t+1} - V_t
// (V after the last real token = 0), A_t = delta_t + gamma lambda A_{t+1}; returns R = A + V
// (before any whitening). Padding positions get 0.
struct GAE {
  torch::Tensor advantages, returns;
};
GAE gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
        double lam);

// Sums numbers over every rank of a job (DistContext::all_reduce_sum). Empty: this process alone.
using SumOverRanks = std::function<std::vector<double>(const std::vector<double>&)>;

// (x - mean) / sqrt(var + 1e-8) over masked entries (population variance); padding stays 0.
// With `over_ranks`, mean and variance are those of the masked entries of every rank together
// (each rank passes its own x), so a job of W ranks whitens as one process with the whole batch.
torch::Tensor whiten(const torch::Tensor& x, const torch::Tensor& mask, const SumOverRanks& over_ranks = {});

// Critic-free advantages for rewards (P * k) laid out prompt-major (k samples per prompt):
// grpo: (r - mean_group) / (std_group + eps) (population std); rloo: r - mean of the other k - 1.
torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t k, const std::string& mode, double eps = 1e-6);

// Clipped policy surrogate per token: max(-A rho, -A clip(rho, 1 - eps, 1 + eps)),
// rho = exp(clamp(logp - old_logp, -20, 20)). Also which tokens were clipped (float) and the
// approximate KL (old_logp - logp), per token.
struct PolicyLoss {
  torch::Tensor loss, clipped, approx_kl;
};
PolicyLoss policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& adv,
                       double clip);

// Clipped value loss per token: 0.5 max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2).
torch::Tensor value_loss(const torch::Tensor& v, const torch::Tensor& v_old, const torch::Tensor& returns,
                         double clip_value);

// The per-token rewards and the advantages of one PPO rollout (ppo.cpp's wiring, as a function):
//   kl_t      = kl_estimate(logp, ref_logp) on response tokens (0 elsewhere)
//   r_t       = -kl_coef * kl_t, plus the sequence reward at the row's end token, which left
//               padding puts in the last column of every row
//   gae:      A, R = gae(r, values * resp) (returns before whitening), A whitened over response
//             tokens of every rank when `whiten`
//   grpo/rloo: one reward per row, sum_t r_t = seq_reward - kl_coef * sum_t kl_t, grouped
//             prompt-major (rows [p k, p k + k) are prompt p's samples), broadcast over resp
struct AdvantageInputs {
  torch::Tensor logp, ref_logp;  // (R, W) log-probs of the sampled tokens: policy (old), reference
  torch::Tensor resp;            // (R, W) float: 1 on response tokens (the end token included)
  torch::Tensor values;          // (R, W) the value model's values (gae only)
  torch::Tensor seq_reward;      // (R)
  std::string mode = "gae";      // gae | grpo | rloo
  std::string estimator = "k1";  // k1 | k2 | k3
  double kl_coef = 0.1, gamma = 1.0, lam = 0.95;
  int64_t group = 1;  // samples per prompt (grpo / rloo)
  bool whiten = true;
  SumOverRanks over_ranks;
};
struct Advantages {
  torch::Tensor kl, rewards, advantages, returns;  // (R, W) each; returns only for gae
};
Advantages ppo_advantages(const AdvantageInputs& in);

// PPO-ptx: the demonstration paired with response row `row` (of `rows_per_rank`) on `rank` of
// `world` in update epoch `epoch` of iteration `step`: the row's index in the whole job's rollout
// picks it, so ranks train on different demonstrations and the set does not depend on the world
// size: (step * 7919 + (epoch * world + rank) * rows_per_rank + row) mod n_demos.
size_t ptx_demo_index(int64_t step, int64_t epoch, int rank, int world, int64_t rows_per_rank, int64_t row,
                      size_t n_demos);

// The adaptive KL controller of Ziegler et al. (2019): e = clip(KL / target - 1, -0.2, 0.2),
// coef <- coef * (1 + e * n_steps / horizon). With target <= 0 the coefficient stays fixed.
struct KLController {
  double coef = 0.1, target = 0, horizon = 10000;
  void update(double kl, double n_steps);
};

// 1 - Var(returns - values) / Var(returns) over masked entries (how much the critic explains).
double explained_variance(const torch::Tensor& values, const torch::Tensor& returns, const torch::Tensor& mask);

}  // namespace codex::rl
