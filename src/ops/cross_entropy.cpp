#include "ops/cross_entropy.h"

namespace codex {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LinearCrossEntropy : torch::autograd::Function<LinearCrossEntropy> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& y, int64_t ignore_index, int64_t chunk_rows) {
    const int64_t n = h.size(0);
    const bool need_grad = h.requires_grad() || w.requires_grad();
    auto valid = y.ne(ignore_index);
    auto safe_y = y.masked_fill(valid.logical_not(), 0).unsqueeze(1);  // gather/scatter index
    auto weight = valid.to(h.scalar_type());                            // 1 counted, 0 ignored
    const auto n_valid = weight.sum();                                  // 0 -> NaN, as PyTorch
    auto loss_sum = torch::zeros({}, h.options());
    torch::Tensor dh, dw;
    if (need_grad) {
      dh = torch::empty_like(h);
      dw = torch::zeros_like(w);
    }
    const auto scale = weight / n_valid;  // d loss / d (row's loss)
    const auto wt = w.t();
    for (int64_t s = 0; s < n; s += chunk_rows) {
      const int64_t e = std::min(n, s + chunk_rows);
      auto hc = h.slice(0, s, e);
      auto yc = safe_y.slice(0, s, e);
      auto logits = torch::mm(hc, wt);  // (rows, V)
      auto lse = torch::logsumexp(logits, 1, /*keepdim=*/true);
      auto row_loss = (lse - logits.gather(1, yc)).squeeze(1);
      loss_sum.add_(torch::dot(row_loss, weight.slice(0, s, e)));
      if (!need_grad) continue;
      // logits -> softmax -> (softmax - one_hot) * scale, in place.
      logits.sub_(lse).exp_();
      logits.scatter_add_(1, yc, torch::full({e - s, 1}, -1.0, logits.options()));
      logits.mul_(scale.slice(0, s, e).unsqueeze(1));
      auto dh_rows = dh.slice(0, s, e);
      torch::mm_out(dh_rows, logits, w);
      dw.addmm_(logits.t(), hc);
    }
    if (need_grad) ctx->save_for_backward({dh, dw});
    return loss_sum / n_valid;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const auto& g = grad_out[0];
    return {saved[0] * g, saved[1] * g, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_cross_entropy(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& y,
                                   int64_t ignore_index, int64_t chunk_rows) {
  TORCH_CHECK(h.dim() == 2 && w.dim() == 2 && y.dim() == 1 && h.size(0) == y.size(0) && h.size(1) == w.size(1),
              "linear_cross_entropy: expected h (N, C), w (V, C), y (N), got ", h.sizes(), ", ", w.sizes(), ", ",
              y.sizes());
  TORCH_CHECK(h.scalar_type() == w.scalar_type(), "linear_cross_entropy: h and w differ in dtype");
  TORCH_CHECK(y.scalar_type() == torch::kLong, "linear_cross_entropy: targets must be int64");
  if (chunk_rows <= 0) chunk_rows = std::max<int64_t>(32, (int64_t{1} << 20) / std::max<int64_t>(1, w.size(0)));
  return LinearCrossEntropy::apply(h, w, y, ignore_index, chunk_rows);
}

}  // namespace codex
