#include "ops/logprob.h"

#include <catch2/catch.hpp>
#include <cmath>

#include "util/error.h"

using namespace codex;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Result {
  torch::Tensor logp, ent, dh, dw;
};

// The plain definition: full (N, V) logits, log_softmax, gather; entropy -sum p log p; autograd.
// The scalar differentiated is sum(a * logp + b * entropy) for fixed random a, b.
Result plain(const torch::Tensor& h0, const torch::Tensor& w0, const torch::Tensor& y, double temp,
             const torch::Tensor& a, const torch::Tensor& b) {
  auto h = h0.detach().clone().requires_grad_(), w = w0.detach().clone().requires_grad_();
  auto logsm = torch::log_softmax(torch::mm(h, w.t()) / temp, 1);
  auto logp = logsm.gather(1, y.unsqueeze(1)).squeeze(1);
  auto ent = -(logsm.exp() * logsm).sum(1);
  (a * logp + b * ent).sum().backward();
  return {logp.detach(), ent.detach(), h.grad(), w.grad()};
}

Result chunked(const torch::Tensor& h0, const torch::Tensor& w0, const torch::Tensor& y, double temp,
               const torch::Tensor& a, const torch::Tensor& b, int64_t chunk, bool h_grad = true, bool w_grad = true,
               int64_t vocab_block = 0) {
  auto h = h0.detach().clone().requires_grad_(h_grad), w = w0.detach().clone().requires_grad_(w_grad);
  auto r = token_logprobs(h, w, y, temp, /*with_entropy=*/true, chunk, vocab_block);
  (a * r.logprobs + b * r.entropy).sum().backward();
  return {r.logprobs.detach(), r.entropy.detach(), h.grad(), w.grad()};
}
}  // namespace

TEST_CASE("token_logprobs: log-probs, entropy and gradients equal log_softmax/gather (float64)", "[ops]") {
  torch::manual_seed(5);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t N = 37, C = 6, V = 23;
  auto h = torch::randn({N, C}, opts) * 2, w = torch::randn({V, C}, opts);
  auto y = torch::randint(0, V, {N}, torch::kLong);
  auto a = torch::randn({N}, opts), b = torch::randn({N}, opts);
  for (double temp : {1.0, 0.7, 1.9}) {
    auto ref = plain(h, w, y, temp, a, b);
    for (int64_t chunk : {1, 5, 16, 37, 1024})
    for (int64_t vb : {0, 1, 4, 7, 23}) {  // vocabulary blocks: auto (one), single columns, 4 (V = 23 is not a multiple), 7, all
      INFO("temperature " << temp << ", chunk " << chunk << ", vocab block " << vb);
      auto got = chunked(h, w, y, temp, a, b, chunk, true, true, vb);
      REQUIRE(max_diff(got.logp, ref.logp) < 1e-10);
      REQUIRE(max_diff(got.ent, ref.ent) < 1e-10);
      REQUIRE(max_diff(got.dh, ref.dh) < 1e-10);
      REQUIRE(max_diff(got.dw, ref.dw) < 1e-10);
    }
  }
  SECTION("without entropy: log-probs only, gradients of logp alone") {
    auto ref = plain(h, w, y, 0.8, a, torch::zeros({N}, opts));
    auto hh = h.clone().requires_grad_(), ww = w.clone().requires_grad_();
    auto r = token_logprobs(hh, ww, y, 0.8, /*with_entropy=*/false, 8);
    REQUIRE(!r.entropy.defined());
    (a * r.logprobs).sum().backward();
    REQUIRE(max_diff(r.logprobs, ref.logp) < 1e-10);
    REQUIRE(max_diff(hh.grad(), ref.dh) < 1e-10);
    REQUIRE(max_diff(ww.grad(), ref.dw) < 1e-10);
  }
  SECTION("only the entropy used: its gradient alone") {
    auto ref = plain(h, w, y, 1.3, torch::zeros({N}, opts), b);
    auto hh = h.clone().requires_grad_(), ww = w.clone().requires_grad_();
    auto r = token_logprobs(hh, ww, y, 1.3, true, 7);
    (b * r.entropy).sum().backward();
    REQUIRE(max_diff(hh.grad(), ref.dh) < 1e-10);
    REQUIRE(max_diff(ww.grad(), ref.dw) < 1e-10);
  }
  SECTION("only the input that requires a gradient gets one") {
    auto ref = plain(h, w, y, 1.0, a, b);
    auto only_h = chunked(h, w, y, 1.0, a, b, 8, true, false);
    REQUIRE(max_diff(only_h.dh, ref.dh) < 1e-10);
    REQUIRE(!only_h.dw.defined());
    auto only_w = chunked(h, w, y, 1.0, a, b, 8, false, true);
    REQUIRE(max_diff(only_w.dw, ref.dw) < 1e-10);
    REQUIRE(!only_w.dh.defined());
  }
  SECTION("no gradient recorded under NoGradGuard") {
    auto want = plain(h, w, y, 1.0, a, b).logp;
    torch::NoGradGuard ng;
    auto r = token_logprobs(h.clone().requires_grad_(), w, y, 1.0, true, 8);
    REQUIRE(!r.logprobs.requires_grad());
    REQUIRE(max_diff(r.logprobs, want) < 1e-10);
  }
}

TEST_CASE("token_logprobs: float32 within tolerance of the float64 definition", "[ops]") {
  torch::manual_seed(6);
  const int64_t N = 50, C = 16, V = 301;
  auto h = torch::randn({N, C}, torch::kFloat64), w = torch::randn({V, C}, torch::kFloat64) * 0.5;
  auto y = torch::randint(0, V, {N}, torch::kLong);
  auto a = torch::randn({N}, torch::kFloat64), b = torch::randn({N}, torch::kFloat64);
  auto ref = plain(h, w, y, 0.9, a, b);
  auto got = chunked(h.to(torch::kFloat), w.to(torch::kFloat), y, 0.9, a.to(torch::kFloat), b.to(torch::kFloat), 16);
  REQUIRE(max_diff(got.logp.to(torch::kFloat64), ref.logp) < 1e-4);
  REQUIRE(max_diff(got.ent.to(torch::kFloat64), ref.ent) < 1e-4);
  REQUIRE(max_diff(got.dh.to(torch::kFloat64), ref.dh) < 1e-4);
  REQUIRE(max_diff(got.dw.to(torch::kFloat64), ref.dw) < 1e-4);
}

TEST_CASE("token_logprobs: hand-computed values", "[ops]") {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  SECTION("two tokens, logits 0 and ln 3: p = 1/4, 3/4; at temperature 2 logits 0 and ln 3 / 2") {
    auto h = torch::tensor({1.0}, opts).view({1, 1});
    auto w = torch::tensor({0.0, std::log(3.0)}, opts).view({2, 1});
    auto y = torch::tensor({int64_t{1}}, torch::kLong);
    auto r = token_logprobs(h, w, y, 1.0, true);
    REQUIRE(r.logprobs.item<double>() == Approx(std::log(0.75)).epsilon(1e-12));
    REQUIRE(r.entropy.item<double>() == Approx(-(0.25 * std::log(0.25) + 0.75 * std::log(0.75))).epsilon(1e-12));
    auto r2 = token_logprobs(h, w, y * 0, 2.0, true);  // target 0; p0 = 1 / (1 + sqrt 3)
    const double p0 = 1.0 / (1.0 + std::sqrt(3.0)), p1 = 1.0 - p0;
    REQUIRE(r2.logprobs.item<double>() == Approx(std::log(p0)).epsilon(1e-12));
    REQUIRE(r2.entropy.item<double>() == Approx(-(p0 * std::log(p0) + p1 * std::log(p1))).epsilon(1e-12));
  }
  SECTION("a zero head gives the uniform distribution: log-prob -ln V, entropy ln V") {
    const int64_t V = 11;
    auto r = token_logprobs(torch::randn({4, 3}, opts), torch::zeros({V, 3}, opts),
                            torch::tensor({0, 3, 10, 5}, torch::kLong), 0.5, true, 3);
    REQUIRE(max_diff(r.logprobs, torch::full({4}, -std::log(11.0), opts)) < 1e-12);
    REQUIRE(max_diff(r.entropy, torch::full({4}, std::log(11.0), opts)) < 1e-12);
  }
}

TEST_CASE("policy_ref_logprobs: both sides, k1 and k3, gradient to the policy only", "[ops]") {
  torch::manual_seed(8);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t N = 19, C = 5, Cr = 3, V = 17;
  auto h = torch::randn({N, C}, opts), w = torch::randn({V, C}, opts);
  auto hr = torch::randn({N, Cr}, opts).requires_grad_(), wr = torch::randn({V, Cr}, opts).requires_grad_();
  auto y = torch::randint(0, V, {N}, torch::kLong);
  auto a = torch::randn({N}, opts), b = torch::randn({N}, opts), c = torch::randn({N}, opts);
  // Plain: log_softmax / gather on both, k1 = logp - ref, k3 = e^(ref - logp) - 1 - (ref - logp).
  auto hp = h.clone().requires_grad_(), wp = w.clone().requires_grad_();
  auto lsm = torch::log_softmax(torch::mm(hp, wp.t()) / 0.9, 1);
  auto logp = lsm.gather(1, y.unsqueeze(1)).squeeze(1);
  auto ent = -(lsm.exp() * lsm).sum(1);
  auto ref = torch::log_softmax(torch::mm(hr, wr.t()) / 0.9, 1).gather(1, y.unsqueeze(1)).squeeze(1).detach();
  auto k1 = logp - ref, lr = ref - logp, k3 = lr.exp() - 1 - lr;
  (a * k1 + b * k3 + c * ent).sum().backward();

  auto hf = h.clone().requires_grad_(), wf = w.clone().requires_grad_();
  auto r = policy_ref_logprobs(hf, wf, hr, wr, y, 0.9, true, 4);
  (a * r.k1 + b * r.k3 + c * r.entropy).sum().backward();
  REQUIRE(max_diff(r.logp, logp) < 1e-10);
  REQUIRE(max_diff(r.ref_logp, ref) < 1e-10);
  REQUIRE(max_diff(r.k1, k1) < 1e-10);
  REQUIRE(max_diff(r.k3, k3) < 1e-10);
  REQUIRE(max_diff(r.entropy, ent) < 1e-10);
  REQUIRE(max_diff(hf.grad(), hp.grad()) < 1e-10);
  REQUIRE(max_diff(wf.grad(), wp.grad()) < 1e-10);
  REQUIRE(!r.ref_logp.requires_grad());
  REQUIRE(!hr.grad().defined());  // the reference side is never differentiated
}

TEST_CASE("token_logprobs: bad inputs are refused with a message", "[ops]") {
  auto h = torch::randn({3, 4}), w = torch::randn({5, 4});
  REQUIRE_THROWS_WITH(token_logprobs(h, w, torch::tensor({0, 5, 1}, torch::kLong)), Catch::Contains("[0, 5)"));
  REQUIRE_THROWS_WITH(token_logprobs(h, w, torch::tensor({0, -1, 1}, torch::kLong)), Catch::Contains("[0, 5)"));
  REQUIRE_THROWS_WITH(token_logprobs(h, w.to(torch::kFloat64), torch::zeros({3}, torch::kLong)),
                      Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(token_logprobs(h, w, torch::zeros({3}, torch::kLong), 0.0), Catch::Contains("temperature"));
  REQUIRE_THROWS_WITH(token_logprobs(h, w, torch::zeros({2}, torch::kLong)), Catch::Contains("expected hidden"));
}

TEST_CASE("kl_estimate: k1, k2, k3 by hand", "[ops]") {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  // log_ratio = ref - policy = -0.5, 1, 0, -3
  auto logp = torch::tensor({-1.0, -2.0, -0.5, -0.25}, opts);
  auto ref = torch::tensor({-1.5, -1.0, -0.5, -3.25}, opts);
  auto k1 = kl_estimate(logp, ref, "k1"), k2 = kl_estimate(logp, ref, "k2"), k3 = kl_estimate(logp, ref, "k3");
  const double e = std::exp(1.0);
  const double want_k1[] = {0.5, -1.0, 0.0, 3.0};
  const double want_k2[] = {0.125, 0.5, 0.0, 4.5};
  const double want_k3[] = {0.10653065971263342, e - 2.0, 0.0, 0.049787068367863944 + 2.0};
  for (int i = 0; i < 4; ++i) {
    INFO("element " << i);
    REQUIRE(k1[i].item<double>() == Approx(want_k1[i]).margin(1e-15));
    REQUIRE(k2[i].item<double>() == Approx(want_k2[i]).margin(1e-15));
    REQUIRE(k3[i].item<double>() == Approx(want_k3[i]).epsilon(1e-14).margin(1e-15));
  }
  REQUIRE((k3 >= 0).all().item<bool>());
  // k3's gradient w.r.t. the policy log-prob: d/dlogp [exp(ref - logp) - 1 - (ref - logp)] = 1 - exp(ref - logp).
  auto lp = logp.clone().requires_grad_();
  kl_estimate(lp, ref, "k3").sum().backward();
  REQUIRE(max_diff(lp.grad(), 1.0 - (ref - logp).exp()) < 1e-15);
  REQUIRE_THROWS_AS(kl_estimate(logp, ref, "k4"), UsageError);
  REQUIRE_THROWS_WITH(kl_estimate(logp, ref, "kl"), Catch::Contains("expected k1, k2 or k3"));
}
