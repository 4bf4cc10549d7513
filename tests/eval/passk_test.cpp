#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "eval/passk.h"
#include "helpers.h"

using codex::eval::mean_pass_at_k;
using codex::eval::pass_at_k;

TEST_CASE("pass@k: hand-computed values", "[eval]") {
  CHECK(pass_at_k(5, 2, 1) == Approx(0.4).epsilon(1e-15));            // c / n
  CHECK(pass_at_k(10, 3, 2) == Approx(1.0 - 21.0 / 45.0).epsilon(1e-15));  // 1 - C(7,2)/C(10,2)
  CHECK(pass_at_k(4, 1, 2) == Approx(0.5).epsilon(1e-15));            // 1 - C(3,2)/C(4,2) = 1 - 3/6
  CHECK(pass_at_k(5, 2, 4) == 1.0);   // k > n - c: any 4 of 5 include a correct one
  CHECK(pass_at_k(5, 5, 1) == 1.0);
  CHECK(pass_at_k(7, 0, 3) == 0.0);
  CHECK(pass_at_k(1, 1, 1) == 1.0);
  // n = 200 as in the paper: products stay finite where C(200, 100) would not fit a double well.
  CHECK(pass_at_k(200, 1, 100) == Approx(0.5).epsilon(1e-12));  // 1 - C(199,100)/C(200,100) = 100/200
  CHECK_THROWS(pass_at_k(5, 2, 6));
  CHECK_THROWS(pass_at_k(5, 6, 1));
  CHECK_THROWS(pass_at_k(0, 0, 1));
}

TEST_CASE("pass@k: mean over problems keeps only k <= n of every problem", "[eval]") {
  auto m = mean_pass_at_k({{5, 2}, {10, 10}}, {1, 5, 10});
  REQUIRE(m.size() == 2);  // k = 10 > n = 5 of the first problem
  CHECK(m.at(1) == Approx((0.4 + 1.0) / 2));
  CHECK(m.at(5) == Approx(1.0));
  CHECK(mean_pass_at_k({}, {1}).empty());
}

TEST_CASE("pass@k: mean and 95% half-width of per-problem rates, hand-computed", "[eval]") {
  // {0, 0.5, 1}: mean 0.5, sample variance (0.25 + 0 + 0.25) / 2 = 0.25, SE = sqrt(0.25 / 3)
  auto r = codex::eval::mean_ci95({0.0, 0.5, 1.0});
  CHECK(r.count == 3);
  CHECK(r.mean == Approx(0.5).epsilon(1e-15));
  CHECK(r.ci95 == Approx(1.96 * std::sqrt(0.25 / 3.0)).epsilon(1e-15));
  // paired differences {+0.1, +0.1, +0.3, -0.1}: mean 0.1, variance (0 + 0 + 0.04 + 0.04) / 3
  auto d = codex::eval::mean_ci95({0.1, 0.1, 0.3, -0.1});
  CHECK(d.mean == Approx(0.1).epsilon(1e-12));
  CHECK(d.ci95 == Approx(1.96 * std::sqrt(0.08 / 3.0 / 4.0)).epsilon(1e-12));
  auto one = codex::eval::mean_ci95({0.7});  // one value: a mean, no interval
  CHECK(one.mean == 0.7);
  CHECK(one.ci95 == 0.0);
  CHECK(codex::eval::mean_ci95({}).count == 0);
}

TEST_CASE("pass@k: matches an independent exact-fraction Python estimator", "[eval]") {
  // Python computes 1 - C(n-c,k)/C(n,k) with exact integers (math.comb + fractions).
  std::ostringstream cases;
  std::vector<std::array<int64_t, 3>> grid;
  for (int64_t n : {1, 2, 5, 10, 37, 100, 200})
    for (int64_t c : {0, 1, 3, 17, 100, 200})
      for (int64_t k : {1, 2, 10, 100})
        if (c <= n && k <= n) grid.push_back({n, c, k});
  for (auto& g : grid) cases << g[0] << " " << g[1] << " " << g[2] << "\n";
  auto r = codex::test::run_shell(
      "/usr/bin/python3 -c \"import sys, math\nfrom fractions import Fraction\n"
      "for l in sys.stdin:\n    n, c, k = map(int, l.split())\n"
      "    print(repr(float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))))\"",
      cases.str());
  REQUIRE(r.code == 0);
  std::istringstream in(r.out);
  for (auto& g : grid) {
    double ref;
    REQUIRE(in >> ref);
    INFO("n=" << g[0] << " c=" << g[1] << " k=" << g[2]);
    CHECK(std::abs(pass_at_k(g[0], g[1], g[2]) - ref) <= 1e-12);
  }
}
