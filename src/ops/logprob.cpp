#include "ops/logprob.h"

#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>
#include <limits>

#include "ops/cpu/logprob_kernel.h"
#ifdef CODEX_WITH_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>

#include "kl/logprob_params.h"
#endif
#include "util/error.h"

namespace codex {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Autocast off for the duration (the logits and their reductions stay in the inputs' dtype).
struct NoAutocast {
  c10::impl::ExcludeDispatchKeyGuard guard{c10::autocast_dispatch_keyset};
};

// With x the tempered logits of one row (x = z / T, z = h W^T), lse = logsumexp(x), p = softmax(x),
// t the target:
//   logp = x_t - lse,   H = lse - sum_j p_j x_j
//   d logp / d x_j = [j = t] - p_j,   d H / d x_j = -p_j (x_j - lse + H)
// so with upstream gradients g1 (logp) and g2 (H):
//   dx_j = [j = t] g1 - p_j (g1 + g2 (x_j - lse + H)),   dz = dx / T,
// and dh = dz W, dW = dz^T h.

struct Blocks {
  int64_t rows, vocab;
};

Blocks cpu_blocks(int64_t n, int64_t v, int64_t chunk_rows, int64_t vocab_block) {
  const int64_t rows = std::min(n, chunk_rows);
  // ~1 MB of float logits per block: stays in L2 between the GEMM and the row pass.
  const int64_t vb = vocab_block > 0 ? vocab_block : std::max<int64_t>(64, (int64_t{1} << 18) / std::max<int64_t>(rows, 1));
  return {std::max<int64_t>(rows, 1), std::min(v, vb)};
}

// A (rows x cols) contiguous view into a flat scratch buffer.
torch::Tensor block_view(const torch::Tensor& buf, int64_t rows, int64_t cols) {
  return buf.slice(0, 0, rows * cols).view({rows, cols});
}

cpu::LogprobBlock make_block(const torch::Tensor& z, const torch::Tensor& targets, int64_t v0, double inv_t,
                             int64_t r0, int64_t r1) {
  cpu::LogprobBlock b;
  b.rows = r1 - r0;
  b.cols = z.size(1);
  b.ld = z.size(1);
  b.v0 = v0;
  b.inv_temp = inv_t;
  b.f64 = z.scalar_type() == torch::kDouble;
  b.z = static_cast<char*>(z.data_ptr()) + r0 * b.ld * z.element_size();
  b.targets = targets.data_ptr<int64_t>() + r0;
  return b;
}

// Pointer to element `r` of a 1-D tensor (or null when undefined).
void* at_row(const torch::Tensor& t, int64_t r) {
  return t.defined() ? static_cast<char*>(t.data_ptr()) + r * t.element_size() : nullptr;
}

// CPU forward: lse, logp and (optionally) entropy of every row.
void cpu_forward(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                 double inv_t, const Blocks& blk, torch::Tensor& logp, torch::Tensor& lse, torch::Tensor& ent) {
  const int64_t n = hidden.size(0), V = weight.size(0);
  auto opts = hidden.options();
  auto m = torch::full({n}, -std::numeric_limits<double>::infinity(), opts);
  auto s = torch::zeros({n}, opts), xt = torch::zeros({n}, opts);
  auto t = ent.defined() ? torch::zeros({n}, opts) : torch::Tensor();
  auto buf = torch::empty({blk.rows * blk.vocab}, opts);
  for (int64_t r0 = 0; r0 < n; r0 += blk.rows) {
    const int64_t r1 = std::min(n, r0 + blk.rows);
    auto hc = hidden.slice(0, r0, r1);
    auto tc = targets.slice(0, r0, r1);
    for (int64_t v0 = 0; v0 < V; v0 += blk.vocab) {
      const int64_t v1 = std::min(V, v0 + blk.vocab);
      auto z = block_view(buf, r1 - r0, v1 - v0);
      torch::mm_out(z, hc, weight.slice(0, v0, v1).t());
      at::parallel_for(0, r1 - r0, 8, [&](int64_t a, int64_t e) {
        auto b = make_block(z, tc, v0, inv_t, a, e);
        b.m = at_row(m, r0 + a);
        b.s = at_row(s, r0 + a);
        b.t = at_row(t, r0 + a);
        b.xt = at_row(xt, r0 + a);
        cpu::logprob_block_update(b);
      });
    }
  }
  lse.copy_(m + s.log());
  logp.copy_(xt - lse);
  if (ent.defined()) ent.copy_(lse - t / s);
}

void cpu_backward(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                  double inv_t, const Blocks& blk, const torch::Tensor& lse, const torch::Tensor& ent,
                  const torch::Tensor& g1, const torch::Tensor& g2, torch::Tensor& dh, torch::Tensor& dw) {
  const int64_t n = hidden.size(0), V = weight.size(0);
  auto buf = torch::empty({blk.rows * blk.vocab}, hidden.options());
  for (int64_t r0 = 0; r0 < n; r0 += blk.rows) {
    const int64_t r1 = std::min(n, r0 + blk.rows);
    auto hc = hidden.slice(0, r0, r1);
    auto tc = targets.slice(0, r0, r1);
    torch::Tensor dhc = dh.defined() ? dh.slice(0, r0, r1) : torch::Tensor();
    if (dhc.defined()) dhc.zero_();
    for (int64_t v0 = 0; v0 < V; v0 += blk.vocab) {
      const int64_t v1 = std::min(V, v0 + blk.vocab);
      auto wb = weight.slice(0, v0, v1);
      auto z = block_view(buf, r1 - r0, v1 - v0);
      torch::mm_out(z, hc, wb.t());
      at::parallel_for(0, r1 - r0, 8, [&](int64_t a, int64_t e) {
        auto b = make_block(z, tc, v0, inv_t, a, e);
        b.lse = at_row(lse, r0 + a);
        b.ent = at_row(ent, r0 + a);
        b.g1 = at_row(g1, r0 + a);
        b.g2 = at_row(g2, r0 + a);
        cpu::logprob_block_grad(b);
      });
      if (dhc.defined()) dhc.addmm_(z, wb);
      if (dw.defined()) dw.slice(0, v0, v1).addmm_(z.t(), hc);
    }
  }
}

#ifdef CODEX_WITH_CUDA_KERNELS
kernels::LogprobParams cuda_params(const torch::Tensor& z, const torch::Tensor& targets, double inv_t) {
  kernels::LogprobParams p{};
  p.rows = static_cast<int32_t>(z.size(0));
  p.V = static_cast<int32_t>(z.size(1));
  p.inv_temp = static_cast<float>(inv_t);
  p.logits = z.data_ptr<float>();
  p.targets = targets.data_ptr<int64_t>();
  return p;
}

void check_cuda(int err, const char* what) {
  TORCH_CHECK(err == 0, what, ": ", cudaGetErrorString(static_cast<cudaError_t>(err)));
}
#endif

// Any device, any float dtype: row chunks of (rows, V) logits with LibTorch ops; on CUDA builds the
// row pass over each chunk is one kernel (kernels/kl/).
void chunk_forward(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                   double inv_t, int64_t chunk_rows, torch::Tensor& logp, torch::Tensor& lse, torch::Tensor& ent) {
  const c10::DeviceGuard device_guard(hidden.device());  // kernels launch on the current device's stream
  const int64_t n = hidden.size(0);
  const auto wt = weight.t();
  const auto tgt = targets.unsqueeze(1);
  for (int64_t s = 0; s < n; s += chunk_rows) {
    const int64_t e = std::min(n, s + chunk_rows);
    auto hc = hidden.slice(0, s, e);
#ifdef CODEX_WITH_CUDA_KERNELS
    if (hidden.is_cuda() && hidden.scalar_type() == torch::kFloat) {
      auto z = torch::mm(hc, wt).contiguous();
      auto tc = targets.slice(0, s, e).contiguous();
      auto p = cuda_params(z, tc, inv_t);
      p.logp = logp.data_ptr<float>() + s;
      p.lse = lse.data_ptr<float>() + s;
      p.entropy = ent.defined() ? ent.data_ptr<float>() + s : nullptr;
      check_cuda(kernels::logprob_forward_cuda(p, at::cuda::getCurrentCUDAStream().stream()), "log-prob kernel");
      continue;
    }
#endif
    if (inv_t != 1.0) hc = hc * inv_t;
    auto z = torch::mm(hc, wt);                           // (rows, V)
    auto l = torch::logsumexp(z, {1}, /*keepdim=*/true);  // (rows, 1)
    logp.slice(0, s, e).copy_((z.gather(1, tgt.slice(0, s, e)) - l).squeeze(1));
    lse.slice(0, s, e).copy_(l.squeeze(1));
    if (ent.defined()) {
      auto p = (z - l).exp_();
      ent.slice(0, s, e).copy_(l.squeeze(1) - p.mul_(z).sum(1));
    }
  }
}

void chunk_backward(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                    double inv_t, int64_t chunk_rows, const torch::Tensor& lse, const torch::Tensor& ent,
                    const torch::Tensor& g1, const torch::Tensor& g2, torch::Tensor& dh, torch::Tensor& dw) {
  const c10::DeviceGuard device_guard(hidden.device());
  const int64_t n = hidden.size(0);
  const auto wt = weight.t();
  for (int64_t s = 0; s < n; s += chunk_rows) {
    const int64_t e = std::min(n, s + chunk_rows);
    auto hraw = hidden.slice(0, s, e);
    torch::Tensor dz;  // d loss / d (h W^T), (rows, V)
#ifdef CODEX_WITH_CUDA_KERNELS
    if (hidden.is_cuda() && hidden.scalar_type() == torch::kFloat) {
      dz = torch::mm(hraw, wt).contiguous();
      auto tc = targets.slice(0, s, e).contiguous();
      auto p = cuda_params(dz, tc, inv_t);
      p.lse = const_cast<float*>(lse.data_ptr<float>()) + s;
      p.entropy = ent.defined() ? const_cast<float*>(ent.data_ptr<float>()) + s : nullptr;
      p.g_logp = g1.data_ptr<float>() + s;
      p.g_entropy = g2.defined() ? g2.data_ptr<float>() + s : nullptr;
      check_cuda(kernels::logprob_backward_cuda(p, at::cuda::getCurrentCUDAStream().stream()),
                 "log-prob backward kernel");
    }
#endif
    if (!dz.defined()) {
      auto hc = inv_t != 1.0 ? hraw * inv_t : hraw;
      auto x = torch::mm(hc, wt);
      auto l = lse.slice(0, s, e).unsqueeze(1);
      auto g1c = g1.slice(0, s, e).unsqueeze(1);
      if (g2.defined()) {
        auto p = (x - l).exp_();
        dz = x.sub_(l).add_(ent.slice(0, s, e).unsqueeze(1)).mul_(g2.slice(0, s, e).unsqueeze(1)).add_(g1c).mul_(p).neg_();
      } else {
        dz = x.sub_(l).exp_().mul_(-g1c);
      }
      dz.scatter_add_(1, targets.slice(0, s, e).unsqueeze(1), g1c);
      if (inv_t != 1.0) dz.mul_(inv_t);
    }
    if (dh.defined()) {
      auto rows = dh.slice(0, s, e);
      torch::mm_out(rows, dz, weight);
    }
    if (dw.defined()) dw.addmm_(dz.t(), hraw);
  }
}

struct TokenLogprobsFn : torch::autograd::Function<TokenLogprobsFn> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, double temperature, bool with_entropy,
                               int64_t chunk_rows, int64_t vocab_block, bool need_dh, bool need_dw) {
    NoAutocast no_autocast;
    const int64_t n = hidden.size(0);
    const double inv_t = 1.0 / temperature;
    auto logp = torch::empty({n}, hidden.options());
    auto lse = torch::empty({n}, hidden.options());
    torch::Tensor ent = with_entropy ? torch::empty({n}, hidden.options()) : torch::Tensor();
    auto h = hidden.contiguous(), w = weight.contiguous(), y = targets.contiguous();
    if (h.device().is_cpu()) cpu_forward(h, w, y, inv_t, cpu_blocks(n, w.size(0), chunk_rows, vocab_block), logp, lse, ent);
    else chunk_forward(h, w, y, inv_t, chunk_rows, logp, lse, ent);
    ctx->save_for_backward({h, w, y, lse, ent});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk_rows"] = chunk_rows;
    ctx->saved_data["vocab_block"] = vocab_block;
    ctx->saved_data["need_dh"] = need_dh;
    ctx->saved_data["need_dw"] = need_dw;
    if (with_entropy) return {logp, ent};
    return {logp};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    TORCH_CHECK(!torch::GradMode::is_enabled(), "token_logprobs does not support double backward");
    NoAutocast no_autocast;
    auto saved = ctx->get_saved_variables();
    const auto &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3], &ent = saved[4];
    const double inv_t = 1.0 / ctx->saved_data["temperature"].toDouble();
    const int64_t chunk_rows = ctx->saved_data["chunk_rows"].toInt();
    const int64_t vocab_block = ctx->saved_data["vocab_block"].toInt();
    const bool need_dh = ctx->saved_data["need_dh"].toBool(), need_dw = ctx->saved_data["need_dw"].toBool();
    const int64_t n = hidden.size(0);
    auto g1 = grad_out[0].defined() ? grad_out[0].contiguous() : torch::zeros({n}, hidden.options());
    torch::Tensor g2 = grad_out.size() > 1 && grad_out[1].defined() ? grad_out[1].contiguous() : torch::Tensor();
    torch::Tensor dh = need_dh ? torch::empty_like(hidden) : torch::Tensor();
    torch::Tensor dw = need_dw ? torch::zeros_like(weight) : torch::Tensor();
    if (need_dh || need_dw) {
      if (hidden.device().is_cpu())
        cpu_backward(hidden, weight, targets, inv_t, cpu_blocks(n, weight.size(0), chunk_rows, vocab_block), lse, ent,
                     g1, g2, dh, dw);
      else
        chunk_backward(hidden, weight, targets, inv_t, chunk_rows, lse, ent, g1, g2, dh, dw);
    }
    return {dh,
            dw,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

TokenLogprobs token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                             double temperature, bool with_entropy, int64_t chunk_rows, int64_t vocab_block) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0) &&
                  hidden.size(1) == weight.size(1),
              "token_logprobs: expected hidden (N, C), weight (V, C), targets (N), got ", hidden.sizes(), ", ",
              weight.sizes(), ", ", targets.sizes());
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type() &&
                  (hidden.scalar_type() == torch::kFloat || hidden.scalar_type() == torch::kDouble),
              "token_logprobs: hidden and weight must both be float32 or both float64");
  TORCH_CHECK(targets.scalar_type() == torch::kLong, "token_logprobs: targets must be int64");
  TORCH_CHECK(hidden.device() == weight.device() && hidden.device() == targets.device(),
              "token_logprobs: hidden, weight and targets must be on one device");
  TORCH_CHECK(temperature > 0 && std::isfinite(temperature), "token_logprobs: temperature must be > 0, got ",
              temperature);
  TORCH_CHECK(chunk_rows > 0 && vocab_block >= 0, "token_logprobs: chunk_rows must be > 0 and vocab_block >= 0");
  if (targets.numel() > 0) {
    const int64_t lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < weight.size(0), "token_logprobs: targets must lie in [0, ", weight.size(0),
                "), got [", lo, ", ", hi, "]");
  }
  const bool grad = torch::GradMode::is_enabled();
  auto out = TokenLogprobsFn::apply(hidden, weight, targets, temperature, with_entropy, chunk_rows, vocab_block,
                                    grad && hidden.requires_grad(), grad && weight.requires_grad());
  TokenLogprobs r;
  r.logprobs = out[0];
  if (with_entropy) r.entropy = out[1];
  return r;
}

torch::Tensor kl_estimate(const torch::Tensor& logp, const torch::Tensor& ref_logp, const std::string& estimator) {
  TORCH_CHECK(logp.sizes() == ref_logp.sizes(), "kl_estimate: logp ", logp.sizes(), " and ref_logp ",
              ref_logp.sizes(), " differ");
  auto log_ratio = ref_logp - logp;
  if (estimator == "k1") return -log_ratio;
  if (estimator == "k2") return 0.5 * log_ratio * log_ratio;
  if (estimator == "k3") return torch::expm1(log_ratio) - log_ratio;  // exp(x) - 1 - x, accurate near 0
  throw UsageError("KL estimator '" + estimator + "': expected k1, k2 or k3");
}

PolicyRefLogprobs policy_ref_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                      const torch::Tensor& ref_hidden, const torch::Tensor& ref_weight,
                                      const torch::Tensor& targets, double temperature, bool with_entropy,
                                      int64_t chunk_rows) {
  PolicyRefLogprobs r;
  {
    torch::NoGradGuard ng;
    r.ref_logp = token_logprobs(ref_hidden.detach(), ref_weight.detach(), targets, temperature, false, chunk_rows)
                     .logprobs.to(hidden.scalar_type());
  }
  auto pol = token_logprobs(hidden, weight, targets, temperature, with_entropy, chunk_rows);
  r.logp = pol.logprobs;
  r.entropy = pol.entropy;
  r.k1 = kl_estimate(r.logp, r.ref_logp, "k1");
  r.k3 = kl_estimate(r.logp, r.ref_logp, "k3");
  return r;
}

}  // namespace codex
