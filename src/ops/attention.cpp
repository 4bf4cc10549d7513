#include "ops/attention.h"

#include <cmath>

namespace codex {
namespace {

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const torch::Tensor& key_mask) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be (B, H, T, D), got ",
              q.sizes(), " ", k.sizes(), " ", v.sizes());
  TORCH_CHECK(k.sizes() == v.sizes(), "attention: k ", k.sizes(), " and v ", v.sizes(), " differ");
  TORCH_CHECK(q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
              "attention: q ", q.sizes(), " does not match k ", k.sizes());
  TORCH_CHECK(k.size(2) >= q.size(2), "attention: fewer keys (", k.size(2), ") than queries (", q.size(2), ")");
  if (key_mask.defined())
    TORCH_CHECK(key_mask.dim() == 2 && key_mask.size(0) == k.size(0) && key_mask.size(1) == k.size(2),
                "attention: key_mask must be (B, Tk) = (", k.size(0), ", ", k.size(2), "), got ", key_mask.sizes());
}

// (Tq, Tk) bool, true where query i may see key j: j <= (Tk - Tq) + i.
torch::Tensor causal_keep(int64_t tq, int64_t tk, const torch::Device& dev) {
  return torch::ones({tq, tk}, torch::TensorOptions().dtype(torch::kBool).device(dev)).tril(tk - tq);
}

}  // namespace

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal,
                        const torch::Tensor& key_mask, double dropout_p) {
  check_shapes(q, k, v, key_mask);
  const int64_t tq = q.size(2), tk = k.size(2);
  // Scale q (Tq*D values) rather than the (Tq, Tk) scores.
  auto att = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(q.size(3)))), k.transpose(-2, -1));  // (B, H, Tq, Tk)
  torch::Tensor keep;  // broadcastable to (B, H, Tq, Tk); true = attend
  if (causal && tk > 1) keep = causal_keep(tq, tk, q.device());  // (Tq, Tk)
  if (key_mask.defined()) {
    auto km = key_mask.to(torch::kBool).view({key_mask.size(0), 1, 1, tk});  // (B, 1, 1, Tk)
    keep = keep.defined() ? keep.logical_and(km) : km;
  }
  if (keep.defined()) {
    // A large finite negative, not -inf: a fully masked row softmaxes to uniform, not NaN.
    // fp16 cannot hold -1e30; -1e4 is far enough below any real score there.
    att.masked_fill_(keep.logical_not(), att.scalar_type() == torch::kHalf ? -1e4 : -1e30);
  }
  att = torch::softmax(att, -1);
  if (dropout_p > 0) att = torch::dropout(att, dropout_p, /*train=*/true);
  return torch::matmul(att, v);  // (B, H, Tq, D)
}

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  bool causal, const torch::Tensor& key_mask) {
  check_shapes(q, k, v, key_mask);
  const int64_t B = q.size(0), H = q.size(1), tq = q.size(2), tk = k.size(2), D = q.size(3);
  const int64_t past = tk - tq;
  auto out = torch::zeros_like(q);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < tq; ++i) {
        std::vector<int64_t> keys;
        for (int64_t j = 0; j < tk; ++j) {
          if (causal && j > past + i) continue;
          if (key_mask.defined() && !key_mask[b][j].item<bool>()) continue;
          keys.push_back(j);
        }
        if (keys.empty()) {  // fully masked: uniform over every key
          out[b][h][i] = v[b][h].mean(0);
          continue;
        }
        auto idx = torch::tensor(keys, torch::kLong).to(q.device());
        auto kk = k[b][h].index_select(0, idx), vv = v[b][h].index_select(0, idx);  // (n, D)
        auto s = torch::mv(kk, q[b][h][i]) / std::sqrt(static_cast<double>(D));      // (n)
        out[b][h][i] = torch::mv(vv.t(), torch::softmax(s, 0));
      }
  return out;
}

}  // namespace codex
