#include "rl/rl_math.h"

#include <algorithm>
#include <cmath>

#include "ops/logprob.h"
#include "util/error.h"

namespace codex::rl {

GAE gae(const torch::Tensor& rewards, const torch::Tensor& values, const torch::Tensor& mask, double gamma,
        double lam) {
  TORCH_CHECK(rewards.sizes() == values.sizes() && rewards.sizes() == mask.sizes(), "gae: shape mismatch");
  const int64_t T = rewards.size(1);
  auto r = rewards * mask, v = values * mask;
  auto adv = torch::zeros_like(r);
  auto next_adv = torch::zeros({r.size(0)}, r.options());
  auto next_v = torch::zeros({r.size(0)}, r.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    auto m = mask.select(1, t);
    auto delta = r.select(1, t) + gamma * next_v - v.select(1, t);
    auto a = (delta + gamma * lam * next_adv) * m;
    adv.select(1, t).copy_(a);
    // Padding after a row's end keeps (0, 0) flowing back; inside a row the chain continues.
    next_adv = a;
    next_v = v.select(1, t) * m;
  }
  return {adv, (adv + v) * mask};
}

torch::Tensor whiten(const torch::Tensor& x, const torch::Tensor& mask, const SumOverRanks& over_ranks) {
  if (!over_ranks) {
    const auto n = mask.sum();
    auto mean = (x * mask).sum() / n;
    auto var = (((x - mean) * mask).pow(2)).sum() / n;
    return (x - mean) * torch::rsqrt(var + 1e-8) * mask;
  }
  // The same two passes with sums over every rank: the mean first, then the squared deviations.
  const auto s = over_ranks({(x * mask).sum().item<double>(), mask.sum().item<double>()});
  const double n = std::max(1.0, s[1]), mean = s[0] / n;
  const double var = over_ranks({(((x - mean) * mask).pow(2)).sum().item<double>()})[0] / n;
  return (x - mean) * (1.0 / std::sqrt(var + 1e-8)) * mask;
}

Advantages ppo_advantages(const AdvantageInputs& in) {
  TORCH_CHECK(in.logp.sizes() == in.resp.sizes() && in.ref_logp.sizes() == in.resp.sizes(),
              "ppo_advantages: log-probs and response mask must be (R, W)");
  TORCH_CHECK(in.seq_reward.dim() == 1 && in.seq_reward.size(0) == in.resp.size(0),
              "ppo_advantages: one sequence reward per row");
  Advantages out;
  const int64_t W = in.resp.size(1);
  out.kl = kl_estimate(in.logp, in.ref_logp, in.estimator) * in.resp;
  out.rewards = -in.kl_coef * out.kl;  // a penalty: more KL, less reward
  out.rewards.select(1, W - 1).add_(in.seq_reward.to(out.rewards.dtype()));
  if (in.mode == "gae") {
    auto g = gae(out.rewards, in.values * in.resp, in.resp, in.gamma, in.lam);
    out.returns = g.returns;
    out.advantages = in.whiten ? whiten(g.advantages, in.resp, in.over_ranks) : g.advantages;
  } else {
    out.advantages = group_advantages(out.rewards.sum(1), in.group, in.mode).unsqueeze(1) * in.resp;
  }
  return out;
}

size_t ptx_demo_index(int64_t step, int64_t epoch, int rank, int world, int64_t rows_per_rank, int64_t row,
                      size_t n_demos) {
  const uint64_t global = static_cast<uint64_t>((epoch * world + rank) * rows_per_rank + row);
  return static_cast<size_t>((static_cast<uint64_t>(step) * 7919ULL + global) % n_demos);
}

torch::Tensor group_advantages(const torch::Tensor& rewards, int64_t k, const std::string& mode, double eps) {
  TORCH_CHECK(rewards.dim() == 1 && rewards.size(0) % k == 0, "group_advantages: rewards must be (P * k)");
  auto g = rewards.view({-1, k});
  if (mode == "grpo") {
    auto mean = g.mean(1, true);
    auto std = ((g - mean).pow(2).mean(1, true)).sqrt();
    return ((g - mean) / (std + eps)).reshape(-1);
  }
  if (mode == "rloo") {
    TORCH_CHECK(k >= 2, "rloo needs at least 2 samples per prompt (ppo.rollout.samples_per_prompt)");
    auto sum = g.sum(1, true);
    return (g - (sum - g) / static_cast<double>(k - 1)).reshape(-1);
  }
  throw UsageError("ppo.advantage: expected gae, grpo or rloo, got '" + mode + "'");
}

PolicyLoss policy_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& adv,
                       double clip) {
  auto log_ratio = (logp - old_logp).clamp(-20.0, 20.0);
  auto ratio = torch::exp(log_ratio);
  auto unclipped = -adv * ratio;
  auto clipped = -adv * ratio.clamp(1.0 - clip, 1.0 + clip);
  PolicyLoss out;
  out.loss = torch::max(unclipped, clipped);
  out.clipped = (clipped > unclipped).to(logp.dtype()).detach();
  out.approx_kl = (old_logp - logp).detach();
  return out;
}

torch::Tensor value_loss(const torch::Tensor& v, const torch::Tensor& v_old, const torch::Tensor& returns,
                         double clip_value) {
  auto v_clipped = v_old + (v - v_old).clamp(-clip_value, clip_value);
  return 0.5 * torch::max((v - returns).pow(2), (v_clipped - returns).pow(2));
}

void KLController::update(double kl, double n_steps) {
  if (target <= 0) return;
  const double e = std::clamp(kl / target - 1.0, -0.2, 0.2);
  coef *= 1.0 + e * n_steps / horizon;
}

double explained_variance(const torch::Tensor& values, const torch::Tensor& returns, const torch::Tensor& mask) {
  const double n = mask.sum().item<double>();
  if (n < 2) return 0;
  auto var = [&](const torch::Tensor& x) {
    auto mean = (x * mask).sum() / n;
    return (((x - mean) * mask).pow(2)).sum().item<double>() / n;
  };
  const double vr = var(returns);
  return vr > 0 ? 1.0 - var(returns - values) / vr : 0.0;
}

}  // namespace codex::rl
