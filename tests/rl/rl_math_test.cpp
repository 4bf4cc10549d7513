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
