#include "ops/attention.h"

#include <catch2/catch.hpp>

using namespace codex;

static double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST_CASE("attention: matches the per-row reference (causal, KV offset, padding mask)", "[model]") {
  torch::manual_seed(3);
  const int64_t B = 2, H = 3, D = 5;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  SECTION("causal, Tq == Tk") {
    auto q = torch::randn({B, H, 7, D}, opts), k = torch::randn({B, H, 7, D}, opts), v = torch::randn({B, H, 7, D}, opts);
    REQUIRE(max_diff(attention(q, k, v, true), attention_reference(q, k, v, true)) < 1e-12);
    // Row 0 sees key 0 only: the output is exactly v[..., 0, :].
    REQUIRE(max_diff(attention(q, k, v, true).select(2, 0), v.select(2, 0)) < 1e-12);
  }
  SECTION("KV-cache offset: 3 new queries over 8 keys") {
    auto q = torch::randn({B, H, 3, D}, opts), k = torch::randn({B, H, 8, D}, opts), v = torch::randn({B, H, 8, D}, opts);
    auto out = attention(q, k, v, true);
    REQUIRE(max_diff(out, attention_reference(q, k, v, true)) < 1e-12);
    // The last query of a cached step sees every key: same as non-causal attention.
    REQUIRE(max_diff(out.select(2, 2), attention(q, k, v, false).select(2, 2)) < 1e-12);
  }
  SECTION("left padding mask") {
    auto q = torch::randn({B, H, 6, D}, opts), k = torch::randn({B, H, 6, D}, opts), v = torch::randn({B, H, 6, D}, opts);
    auto mask = torch::ones({B, 6}, torch::kBool);
    mask[1].slice(0, 0, 2).fill_(false);  // sequence 1 is left-padded by 2
    auto out = attention(q, k, v, true, mask);
    REQUIRE(max_diff(out, attention_reference(q, k, v, true, mask)) < 1e-12);
    REQUIRE(torch::isfinite(out).all().item<bool>());  // fully masked pad rows: no NaN
    // Sequence 1 from position 2 on equals attention over its unpadded suffix alone.
    auto sub = [](const torch::Tensor& t) { return t.slice(0, 1, 2).slice(2, 2, 6); };
    REQUIRE(max_diff(out.slice(0, 1, 2).slice(2, 2, 6), attention(sub(q), sub(k), sub(v), true)) < 1e-12);
  }
  SECTION("closed form: one query, two keys") {
    // q = (1, 0), k0 = (0, 0), k1 = (sqrt(2) ln 3, 0): scores 0 and ln 3 -> weights 1/4, 3/4.
    auto q = torch::tensor({1.0, 0.0}, opts).view({1, 1, 1, 2});
    auto k = torch::tensor({0.0, 0.0, std::sqrt(2.0) * std::log(3.0), 0.0}, opts).view({1, 1, 2, 2});
    auto v = torch::tensor({4.0, 0.0, 8.0, 4.0}, opts).view({1, 1, 2, 2});
    auto out = attention(q, k, v, true);
    REQUIRE(out[0][0][0][0].item<double>() == Approx(7.0));
    REQUIRE(out[0][0][0][1].item<double>() == Approx(3.0));
  }
}

TEST_CASE("attention: bad shapes are refused with a message", "[model]") {
  auto q = torch::randn({1, 2, 4, 8}), k = torch::randn({1, 2, 3, 8});
  REQUIRE_THROWS_WITH(attention(q, k, k, true), Catch::Contains("fewer keys"));
  REQUIRE_THROWS_WITH(attention(q, q, q, true, torch::ones({1, 5}, torch::kBool)), Catch::Contains("key_mask"));
}
