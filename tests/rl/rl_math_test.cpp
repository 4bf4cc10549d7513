// PPO / GRPO / RLOO math against hand-computed values.
#include "rl/rl_math.h"
#include "ops/logprob.h"

#include <catch2/catch.hpp>
#include <cmath>

using namespace codex;
using namespace codex::rl;

namespace {
torch::Tensor T(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }
void near(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-9) {
  INFO(a << "\nvs\n" << b);
  REQUIRE(a.sizes() == b.sizes());
  REQUIRE((a - b).abs().max().item<double>() < tol);
}
}  // namespace

TEST_CASE("rl: k1 / k3 KL estimates (Schulman) by hand", "[rl]") {
  auto logp = T({std::log(0.5), std::log(0.25)}), ref = T({std::log(0.25), std::log(0.5)});
  // log r = ref - logp = -log 2, +log 2
  near(kl_estimate(logp, ref, "k1"), T({std::log(2.0), -std::log(2.0)}));          // k1 can be negative
  near(kl_estimate(logp, ref, "k3"), T({0.5 - 1 + std::log(2.0), 2 - 1 - std::log(2.0)}));  // >= 0
  REQUIRE((kl_estimate(logp, ref, "k3") >= 0).all().item<bool>());
  near(kl_estimate(logp, logp, "k3"), T({0, 0}));
}

TEST_CASE("rl: GAE and returns by hand, padding after a response ends", "[rl]") {
  auto rewards = torch::stack({T({0, 0, 1}), T({0, 2, 0})});
  auto values = torch::stack({T({0.5, 0.6, 0.7}), T({0.2, 0.4, 9.0})});
  auto mask = torch::stack({T({1, 1, 1}), T({1, 1, 0})});
  auto g = gae(rewards, values, mask, 1.0, 0.95);
  // row 0: delta = (0.1, 0.1, 0.3); A2 = 0.3, A1 = 0.1 + 0.95*0.3, A0 = 0.1 + 0.95*A1
  // row 1: t=2 is padding; delta1 = 2 - 0.4 = 1.6, delta0 = 0.4 - 0.2 = 0.2, A0 = 0.2 + 0.95*1.6
  near(g.advantages, torch::stack({T({0.46575, 0.385, 0.3}), T({1.72, 1.6, 0})}));
  near(g.returns, torch::stack({T({0.96575, 0.985, 1.0}), T({1.92, 2.0, 0})}));
  // gamma < 1: delta_t = r_t + gamma V_{t+1} - V_t
  auto g2 = gae(T({0, 1}).unsqueeze(0), T({0.5, 0.5}).unsqueeze(0), T({1, 1}).unsqueeze(0), 0.9, 1.0);
  near(g2.advantages, T({(0.9 * 0.5 - 0.5) + 0.9 * 0.5, 0.5}).unsqueeze(0));
}

TEST_CASE("rl: whitening over masked entries", "[rl]") {
  auto w = whiten(T({1, 2, 3, 100}), T({1, 1, 1, 0}));
  const double s = std::sqrt(2.0 / 3.0 + 1e-8);
  near(w, T({-1 / s, 0, 1 / s, 0}));
}

TEST_CASE("rl: GRPO and RLOO advantages by hand", "[rl]") {
  auto r = T({1, 0, 0, 1, 2, 3});
  const double s1 = std::sqrt(2.0 / 9.0), s2 = std::sqrt(2.0 / 3.0);
  near(group_advantages(r, 3, "grpo", 0.0),
       T({(2.0 / 3) / s1, (-1.0 / 3) / s1, (-1.0 / 3) / s1, -1 / s2, 0, 1 / s2}));
  near(group_advantages(r, 3, "rloo"), T({1, -0.5, -0.5, -1.5, 0, 1.5}));
  // A group whose rewards are all equal gives no signal.
  near(group_advantages(T({2, 2}), 2, "grpo"), T({0, 0}));
}

TEST_CASE("rl: clipped policy surrogate and clipped value loss by hand", "[rl]") {
  auto old = T({std::log(0.2), std::log(0.2), std::log(0.2), std::log(0.2)});
  auto logp = T({std::log(0.3), std::log(0.3), std::log(0.1), std::log(0.1)});  // ratio 1.5, 1.5, 0.5, 0.5
  auto adv = T({1, -1, 1, -1});
  auto pl = policy_loss(logp, old, adv, 0.2);
  near(pl.loss, T({-1.2, 1.5, -0.5, 0.8}));
  near(pl.clipped, T({1, 0, 0, 1}));
  near(pl.approx_kl, old - logp);
  auto vl = value_loss(T({1.0, 3.0}), T({0.5, 2.5}), T({2.0, 2.0}), 0.2);
  near(vl, T({0.5 * 1.69, 0.5}));
  // the gradient flows through the unclipped branch only where it is the max
  auto lp = logp.clone().requires_grad_(true);
  policy_loss(lp, old, adv, 0.2).loss.sum().backward();
  near(lp.grad(), T({0, 1.5, -0.5, 0}));  // d(-A rho)/dlogp = -A rho
}

TEST_CASE("rl: adaptive KL controller (Ziegler et al.) and explained variance", "[rl]") {
  KLController c{0.1, 6.0, 10000};
  c.update(9.0, 256);  // e = clip(9/6 - 1) = 0.2
  REQUIRE(c.coef == Approx(0.1 * (1 + 0.2 * 256 / 10000.0)).epsilon(1e-12));
  c.update(3.0, 256);  // e = clip(-0.5) = -0.2
  REQUIRE(c.coef == Approx(0.1 * (1 + 0.2 * 0.0256) * (1 - 0.2 * 0.0256)).epsilon(1e-12));
  KLController fixed{0.05, 0, 10000};
  fixed.update(100, 1000);
  REQUIRE(fixed.coef == 0.05);
  auto m = T({1, 1, 1, 0});
  REQUIRE(explained_variance(T({1, 2, 3, 7}), T({1, 2, 3, 0}), m) == Approx(1.0));
  REQUIRE(explained_variance(T({2, 2, 2, 0}), T({1, 2, 3, 0}), m) == Approx(0.0).margin(1e-12));
}

TEST_CASE("rl: whitening over two ranks uses the statistics of both ranks' tokens (by hand)", "[rl][dist]") {
  // Two ranks hold x = {1, 2} and {3, 10} (all response tokens). Together: mean 4,
  // population variance ((1-4)^2 + (2-4)^2 + (3-4)^2 + (10-4)^2) / 4 = 12.5.
  const double mean = 4.0, s = std::sqrt(12.5 + 1e-8);
  const std::vector<double> other = {3, 10};
  // Rank 0's view of the sum over ranks: its own numbers plus rank 1's (the all-reduce).
  SumOverRanks sum = [&](const std::vector<double>& v) -> std::vector<double> {
    if (v.size() == 2) return {v[0] + other[0] + other[1], v[1] + 2};                   // sum, count
    return {v[0] + (other[0] - mean) * (other[0] - mean) + (other[1] - mean) * (other[1] - mean)};  // squares
  };
  near(whiten(T({1, 2}), T({1, 1}), sum), T({(1 - mean) / s, (2 - mean) / s}), 1e-12);
  // Rank 0 alone would whiten to -1, +1 (the defect: each rank its own statistics).
  near(whiten(T({1, 2}), T({1, 1})), T({-0.5 / std::sqrt(0.25 + 1e-8), 0.5 / std::sqrt(0.25 + 1e-8)}), 1e-12);
  // One process: the reduction is the identity and agrees with the local form.
  SumOverRanks self = [](const std::vector<double>& v) { return v; };
  near(whiten(T({1, 2, 3, 10}), T({1, 1, 1, 1}), self), T({-3 / s, -2 / s, -1 / s, 6 / s}), 1e-12);
}

TEST_CASE("rl: PPO-ptx demonstrations differ between ranks and do not depend on the world size", "[rl][dist]") {
  // step 1, epoch 0, 6 rows in the job: (7919 + row) mod 100 = 19 .. 24
  std::vector<size_t> one, r0, r1;
  for (int64_t row = 0; row < 6; ++row) one.push_back(ptx_demo_index(1, 0, 0, 1, 6, row, 100));
  for (int64_t row = 0; row < 3; ++row) r0.push_back(ptx_demo_index(1, 0, 0, 2, 3, row, 100));
  for (int64_t row = 0; row < 3; ++row) r1.push_back(ptx_demo_index(1, 0, 1, 2, 3, row, 100));
  CHECK(one == std::vector<size_t>{19, 20, 21, 22, 23, 24});
  CHECK(r0 == std::vector<size_t>{19, 20, 21});
  CHECK(r1 == std::vector<size_t>{22, 23, 24});
  // epoch 1 continues after the whole job's 6 rows: 7919 + 6 + row
  CHECK(ptx_demo_index(1, 1, 1, 2, 3, 0, 100) == 28);
  CHECK(ptx_demo_index(1, 1, 0, 1, 6, 3, 100) == 28);
}

TEST_CASE("rl: PPO wiring by hand: KL penalty sign, sequence reward at the end token, masked values, GAE", "[rl]") {
  // Two left-padded rows of width 3: row 0 has 2 response tokens, row 1 has 1 (its end token).
  AdvantageInputs in;
  in.resp = torch::stack({T({0, 1, 1}), T({0, 0, 1})});
  in.logp = torch::stack({T({0, std::log(0.5), std::log(0.25)}), T({0, 0, std::log(0.5)})});
  in.ref_logp = torch::stack({T({0, std::log(0.25), std::log(0.25)}), T({0, 0, 0})});
  in.values = torch::stack({T({9, 0.5, 0.25}), T({9, 9, 0.5})});  // 9 on padding: must not count
  in.seq_reward = T({1.0, -1.0});
  in.mode = "gae";
  in.estimator = "k1";
  in.kl_coef = 0.5;
  in.gamma = 1.0;
  in.lam = 0.5;
  in.whiten = false;
  const double l2 = std::log(2.0);
  auto a = ppo_advantages(in);
  // k1 = log pi - log pi_ref on response tokens: row 0 (0, log 2, 0), row 1 (0, 0, -log 2)
  near(a.kl, torch::stack({T({0, l2, 0}), T({0, 0, -l2})}));
  // r_t = -0.5 kl_t; the sequence reward lands on the end token (the last column)
  near(a.rewards, torch::stack({T({0, -0.5 * l2, 1.0}), T({0, 0, 0.5 * l2 - 1.0})}));
  // row 0: delta_2 = 1 - 0.25 = 0.75 = A_2; delta_1 = -0.5 log 2 + 0.25 - 0.5, A_1 = delta_1 + 0.5 * 0.75
  // row 1: A_2 = 0.5 log 2 - 1 - 0.5; returns = A + V on response tokens only
  near(a.advantages, torch::stack({T({0, 0.125 - 0.5 * l2, 0.75}), T({0, 0, 0.5 * l2 - 1.5})}));
  near(a.returns, torch::stack({T({0, 0.625 - 0.5 * l2, 1.0}), T({0, 0, 0.5 * l2 - 1.0})}));
  // whitened over the three response tokens
  in.whiten = true;
  auto w = ppo_advantages(in);
  const double x0 = 0.125 - 0.5 * l2, x1 = 0.75, x2 = 0.5 * l2 - 1.5, m = (x0 + x1 + x2) / 3;
  const double sd = std::sqrt(((x0 - m) * (x0 - m) + (x1 - m) * (x1 - m) + (x2 - m) * (x2 - m)) / 3 + 1e-8);
  near(w.advantages, torch::stack({T({0, (x0 - m) / sd, (x1 - m) / sd}), T({0, 0, (x2 - m) / sd})}));
  near(w.returns, a.returns);  // returns come before whitening
}

TEST_CASE("rl: GRPO / RLOO wiring by hand: groups are consecutive rows, KL lowers the reward", "[rl]") {
  // 2 prompts x 2 samples, prompt-major: rows 0, 1 are prompt 0's; rows 2, 3 prompt 1's.
  AdvantageInputs in;
  in.resp = torch::stack({T({1, 1}), T({0, 1}), T({1, 1}), T({0, 1})});
  in.ref_logp = torch::stack({T({std::log(0.25), std::log(0.5)}), T({0, std::log(0.5)}),
                              T({std::log(0.5), std::log(0.5)}), T({0, std::log(0.5)})});
  in.logp = in.ref_logp.clone();
  in.logp[0][0] = std::log(0.5);  // row 0 alone departs from the reference: k1 = log 2
  in.seq_reward = T({1, 0, 2, 2});
  in.mode = "grpo";
  in.kl_coef = 1.0;
  in.group = 2;
  const double l2 = std::log(2.0);
  auto g = ppo_advantages(in);
  // totals (1 - log 2, 0 | 2, 2): group 0 -> +1, -1 (std = (1 - log 2) / 2); group 1 -> 0, 0
  near(g.advantages, torch::stack({T({1, 1}), T({0, -1}), T({0, 0}), T({0, 0})}), 1e-4);
  in.mode = "rloo";
  auto r = ppo_advantages(in);
  near(r.advantages, torch::stack({T({1 - l2, 1 - l2}), T({0, l2 - 1}), T({0, 0}), T({0, 0})}));
}
