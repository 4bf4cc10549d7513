#include "ops/cross_entropy.h"

#include <catch2/catch.hpp>
#include <limits>

using namespace codex;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct Grads {
  torch::Tensor loss, dh, dw;
};

// The unfused definition: full logits, PyTorch's cross_entropy (mean over non-ignored targets).
Grads reference(const torch::Tensor& h0, const torch::Tensor& w0, const torch::Tensor& y, int64_t ignore) {
  auto h = h0.detach().clone().requires_grad_(), w = w0.detach().clone().requires_grad_();
  auto loss = torch::nn::functional::cross_entropy(
      torch::mm(h, w.t()), y, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore));
  loss.backward();
  return {loss.detach(), h.grad(), w.grad()};
}

Grads fused(const torch::Tensor& h0, const torch::Tensor& w0, const torch::Tensor& y, int64_t ignore, int64_t chunk,
            double upstream = 1.0, bool h_grad = true, bool w_grad = true) {
  auto h = h0.detach().clone().requires_grad_(h_grad), w = w0.detach().clone().requires_grad_(w_grad);
  auto loss = linear_cross_entropy(h, w, y, ignore, chunk);
  (loss * upstream).backward();
  return {loss.detach(), h.grad(), w.grad()};
}
}  // namespace

TEST_CASE("linear_cross_entropy: loss and gradients equal cross_entropy(h w^T) (float64)", "[model]") {
  torch::manual_seed(11);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t N = 37, C = 6, V = 23;
  auto h = torch::randn({N, C}, opts) * 2, w = torch::randn({V, C}, opts);
  auto y = torch::randint(0, V, {N}, torch::kLong);
  auto ref = reference(h, w, y, -100);
  for (int64_t chunk : {1, 5, 16, 37, 100}) {
    INFO("chunk " << chunk);
    auto got = fused(h, w, y, -100, chunk);
    REQUIRE(got.loss.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-12));
    REQUIRE(max_diff(got.dh, ref.dh) < 1e-12);
    REQUIRE(max_diff(got.dw, ref.dw) < 1e-12);
  }
  SECTION("only the input that requires a gradient gets one") {
    auto only_h = fused(h, w, y, -100, 8, 1.0, true, false);
    REQUIRE(max_diff(only_h.dh, ref.dh) < 1e-12);
    REQUIRE(!only_h.dw.defined());
    auto only_w = fused(h, w, y, -100, 8, 1.0, false, true);
    REQUIRE(max_diff(only_w.dw, ref.dw) < 1e-12);
    REQUIRE(!only_w.dh.defined());
  }
  SECTION("the incoming gradient scales both gradients") {
    auto got = fused(h, w, y, -100, 8, 0.25);
    REQUIRE(max_diff(got.dh, ref.dh * 0.25) < 1e-12);
    REQUIRE(max_diff(got.dw, ref.dw * 0.25) < 1e-12);
  }
  SECTION("a hand-computed case: uniform logits give log V and gradient (1/V - onehot)/N") {
    auto z = torch::zeros({2, C}, opts);
    auto yy = torch::tensor({3, 7}, torch::kLong);
    auto got = fused(z, w, yy, -100, 1);
    REQUIRE(got.loss.item<double>() == Approx(std::log(static_cast<double>(V))).epsilon(1e-14));
    auto g = torch::full({2, V}, 1.0 / V, opts);
    g[0][3] -= 1;
    g[1][7] -= 1;
    REQUIRE(max_diff(got.dh, torch::mm(g / 2, w)) < 1e-14);
    REQUIRE(max_diff(got.dw, torch::zeros({V, C}, opts)) < 1e-14);  // h == 0
  }
}

TEST_CASE("linear_cross_entropy: ignored targets count for nothing, all ignored: NaN loss, zero grads (PyTorch)",
          "[model]") {
  torch::manual_seed(12);
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t N = 20, C = 4, V = 9;
  auto h = torch::randn({N, C}, opts), w = torch::randn({V, C}, opts);
  auto y = torch::randint(0, V, {N}, torch::kLong);
  y.slice(0, 0, 7).fill_(-1);  // a left-padded prompt's positions, say
  auto ref = reference(h, w, y, -1);
  auto got = fused(h, w, y, -1, 6);
  REQUIRE(got.loss.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-12));
  REQUIRE(max_diff(got.dh, ref.dh) < 1e-12);
  REQUIRE(max_diff(got.dw, ref.dw) < 1e-12);
  REQUIRE(max_diff(got.dh.slice(0, 0, 7), torch::zeros({7, C}, opts)) == 0);
  SECTION("an ignore_index that is also a real class") {
    auto y0 = torch::randint(0, 3, {N}, torch::kLong);  // many zeros, ignored
    auto r0 = reference(h, w, y0, 0);
    auto g0 = fused(h, w, y0, 0, 4);
    REQUIRE(g0.loss.item<double>() == Approx(r0.loss.item<double>()).epsilon(1e-12));
    REQUIRE(max_diff(g0.dh, r0.dh) < 1e-12);
    REQUIRE(max_diff(g0.dw, r0.dw) < 1e-12);
  }
  SECTION("every target ignored") {
    auto all = torch::full({N}, -1, torch::kLong);
    auto r = reference(h, w, all, -1);
    auto g = fused(h, w, all, -1, 6);
    REQUIRE(std::isnan(r.loss.item<double>()));
    REQUIRE(std::isnan(g.loss.item<double>()));
    REQUIRE(max_diff(r.dh, torch::zeros({N, C}, opts)) == 0);
    REQUIRE(max_diff(g.dh, r.dh) == 0);
    REQUIRE(max_diff(g.dw, r.dw) == 0);
  }
  SECTION("an ignored row with non-finite logits does not leak into the loss") {
    auto hh = h.clone();
    hh[0][0] = std::numeric_limits<double>::infinity();
    REQUIRE(std::isfinite(linear_cross_entropy(hh, w, y, -1, 6).item<double>()));
    // ignored rows never reach the head: the weight gradient stays finite and equals the one
    // without that row's garbage (a masked-by-zero row would give inf * 0 = NaN in dW)
    auto g = fused(hh, w, y, -1, 6);
    auto r = reference(h, w, y, -1);
    REQUIRE(max_diff(g.dw, r.dw) < 1e-12);
    REQUIRE(max_diff(g.dh.slice(0, 0, 7), torch::zeros({7, C}, opts)) == 0);
  }
}

TEST_CASE("linear_cross_entropy: float32 over several default-sized chunks, NoGradGuard", "[model]") {
  torch::manual_seed(13);
  const int64_t N = 3000, C = 32, V = 1000;  // default chunk: 2^20 / 1000 = 1048 rows -> 3 chunks
  auto h = torch::randn({N, C}), w = torch::randn({V, C}) * 0.1;
  auto y = torch::randint(0, V, {N}, torch::kLong);
  auto ref = reference(h, w, y, -100);
  auto got = fused(h, w, y, -100, 0);  // default chunking
  REQUIRE(got.loss.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-5));
  REQUIRE(max_diff(got.dh, ref.dh) < 1e-7);  // entries ~1e-4 / N
  REQUIRE(max_diff(got.dw, ref.dw) < 1e-6);
  torch::NoGradGuard ng;
  auto l = linear_cross_entropy(h.requires_grad_(), w.requires_grad_(), y);
  REQUIRE(!l.requires_grad());
  REQUIRE(l.item<double>() == Approx(ref.loss.item<double>()).epsilon(1e-5));
}

TEST_CASE("linear_cross_entropy: shape and dtype errors are clear", "[model]") {
  auto h = torch::randn({4, 3}), w = torch::randn({5, 3});
  REQUIRE_THROWS_WITH(linear_cross_entropy(h, w, torch::zeros({3}, torch::kLong)), Catch::Contains("expected h (N, C)"));
  REQUIRE_THROWS_WITH(linear_cross_entropy(h, w, torch::zeros({4})), Catch::Contains("int64"));
  REQUIRE_THROWS_WITH(linear_cross_entropy(h, w.to(torch::kFloat64), torch::zeros({4}, torch::kLong)),
                      Catch::Contains("float32"));
  REQUIRE_THROWS_WITH(linear_cross_entropy(h.to(torch::kInt), w.to(torch::kInt), torch::zeros({4}, torch::kLong)),
                      Catch::Contains("float32"));
}
