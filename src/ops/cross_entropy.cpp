#include "ops/cross_entropy.h"

#include "util/torch_compat.h"

namespace codex {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LinearCrossEntropy : torch::autograd::Function<LinearCrossEntropy> {
  // need_dh / need_dw: decided by the caller (inside forward grad mode is always off).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w,
                               const torch::Tensor& y, int64_t ignore_index, int64_t chunk_rows, bool need_dh,
                               bool need_dw) {
    const int64_t n = h.size(0);
    const bool need_grad = need_dh || need_dw;
    auto valid = y.ne(ignore_index);
    auto safe_y = y.masked_fill(valid.logical_not(), 0).unsqueeze(1);  // gather/scatter index
    const auto n_valid = valid.sum().to(h.scalar_type());               // 0 -> NaN loss, as PyTorch
    // d loss / d row loss: 1/n_valid for counted rows, 0 for ignored ones (and all-ignored: zero
    // gradients, as PyTorch's nll_loss backward).
    const auto scale = torch::where(valid, n_valid.clamp_min(1).reciprocal(), torch::zeros({}, h.options()));
    auto loss_sum = torch::zeros({}, h.options());
    torch::Tensor dh = need_dh ? torch::empty_like(h) : torch::Tensor();
    torch::Tensor dw = need_dw ? torch::zeros_like(w) : torch::Tensor();
    const auto minus_one = torch::full({std::min(n, chunk_rows), 1}, -1.0, h.options());
    const auto wt = w.t();
    for (int64_t s = 0; s < n; s += chunk_rows) {
      const int64_t e = std::min(n, s + chunk_rows);
      auto hc = h.slice(0, s, e);
      auto yc = safe_y.slice(0, s, e);
      auto vc = valid.slice(0, s, e);
      auto logp = torch::log_softmax(torch::mm(hc, wt), 1);  // (rows, V)
      // Ignored rows are selected out (not multiplied by 0): a non-finite row cannot leak in.
      loss_sum.sub_(torch::where(vc, logp.gather(1, yc).squeeze(1), torch::zeros({}, h.options())).sum());
      if (!need_grad) continue;
      // logp -> softmax -> softmax - one_hot, in place. The per-row scale is applied to the
      // small (rows, C) operands instead of the (rows, V) chunk: dh = (G w) * s, dW += G^T (h * s).
      auto g = logp.exp_();
      g.scatter_add_(1, yc, minus_one.slice(0, 0, e - s));
      auto sc = scale.slice(0, s, e).unsqueeze(1);
      if (need_dh) {
        auto dh_rows = dh.slice(0, s, e);
        torch::mm_out(dh_rows, g, w);
        dh_rows.mul_(sc);
      }
      if (need_dw) dw.addmm_(g.t(), hc * sc);
    }
    ctx->save_for_backward({dh, dw});
    return loss_sum / n_valid;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    TORCH_CHECK(!torch::GradMode::is_enabled(), "linear_cross_entropy does not support double backward");
    auto saved = ctx->get_saved_variables();
    const auto& g = grad_out[0];
    auto scaled = [&](const torch::Tensor& t) { return t.defined() ? t * g : torch::Tensor(); };
    return {scaled(saved[0]), scaled(saved[1]), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor linear_cross_entropy(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& y,
                                   int64_t ignore_index, int64_t chunk_rows) {
  TORCH_CHECK(h.dim() == 2 && w.dim() == 2 && y.dim() == 1 && h.size(0) == y.size(0) && h.size(1) == w.size(1),
              "linear_cross_entropy: expected h (N, C), w (V, C), y (N), got ", h.sizes(), ", ", w.sizes(), ", ",
              y.sizes());
  TORCH_CHECK(h.scalar_type() == w.scalar_type() &&
                  (h.scalar_type() == torch::kFloat || h.scalar_type() == torch::kDouble),
              "linear_cross_entropy: h and w must both be float32 or both float64");
  TORCH_CHECK(y.scalar_type() == torch::kLong, "linear_cross_entropy: targets must be int64");
  TORCH_CHECK(h.device() == w.device() && h.device() == y.device(),
              "linear_cross_entropy: h, w and y must be on one device");
  TORCH_CHECK(!cuda_autocast_enabled(), "linear_cross_entropy: not for autocast regions (fp32/fp64 only)");
  if (chunk_rows <= 0) {
    // ~4 MB of logits per chunk on CPU (stays in cache); on CUDA ~256 MB and at least 1024 rows,
    // so each chunk's GEMMs are large enough to fill the GPU.
    const bool cuda = h.is_cuda();
    const int64_t budget = cuda ? (int64_t{64} << 20) : (int64_t{1} << 20);  // floats
    chunk_rows = std::max<int64_t>(cuda ? 1024 : 32, budget / std::max<int64_t>(1, w.size(0)));
  }
  const bool grad = torch::GradMode::is_enabled();
  // Only the counted rows go through the head: an SFT batch's prompt and padding positions
  // (ignored targets) cost no (rows, V) logits. index_select's backward scatters dh back, zeros
  // at the ignored rows, as before. Every row counted (pretraining) or none (NaN): as is.
  const auto valid = y.ne(ignore_index);
  const int64_t n_valid = valid.sum().item<int64_t>();
  if (n_valid > 0 && n_valid < y.size(0)) {
    const auto rows = valid.nonzero().squeeze(1);
    return LinearCrossEntropy::apply(h.index_select(0, rows), w, y.index_select(0, rows), ignore_index, chunk_rows,
                                     grad && h.requires_grad(), grad && w.requires_grad());
  }
  return LinearCrossEntropy::apply(h, w, y, ignore_index, chunk_rows, grad && h.requires_grad(),
                                   grad && w.requires_grad());
}

}  // namespace codex
