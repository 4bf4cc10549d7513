// Benchmarks of the fused ops, each printing ONE JSON line:
//   codex-train bench attention [--device cpu|cuda] [--reps N] [--batch B] [--heads H]
//     forward + backward time of the fused attention vs the LibTorch-ops reference (CPU), or on a
//     CUDA build with a GPU: parity of the CUDA kernel vs the float32 reference, the CPU kernel and
//     torch's scaled_dot_product_attention, and TFLOP/s of each.
//   codex-train bench logprob --variant fused|composed [--vocab V] [--rows N] [--embd C] [--reps N]
//     log-probs + entropy of sampled tokens, forward + backward, fused (ops/logprob.h) or composed
//     from LibTorch ops (mm, log_softmax, gather); peak memory is this process's resident high-water
//     mark above its level before the first run, so run one variant per process
//     (scripts/bench/logprob.sh does).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "cli/registry.h"
#include "ops/attention.h"
#include "ops/cpu/attention_kernel.h"
#include "ops/logprob.h"
#include "util/device.h"
#include "util/error.h"
#ifdef CODEX_WITH_CUDA_KERNELS
#include "kl/logprob_params.h"
#include <ATen/cuda/CUDAContext.h>
#endif

namespace codex {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Median seconds of `reps` runs of f after one warm-up run.
template <typename F>
double median_time(int64_t reps, const torch::Device& dev, F f) {
  f();
  sync(dev);
  std::vector<double> t;
  for (int64_t i = 0; i < reps; ++i) {
    const double t0 = now_s();
    f();
    sync(dev);
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Resident memory (MB) from /proc/self/status: "VmRSS" now, "VmHWM" the high-water mark.
double status_mb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return 0.0;
}

using AttnFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

// Forward + backward of f on (q, k, v) with upstream gradient g.
double time_attention(const AttnFn& f, const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0,
                      const torch::Tensor& g, int64_t reps) {
  auto q = q0.detach().requires_grad_(), k = k0.detach().requires_grad_(), v = v0.detach().requires_grad_();
  return median_time(reps, q.device(), [&] {
    q.mutable_grad() = torch::Tensor();
    k.mutable_grad() = torch::Tensor();
    v.mutable_grad() = torch::Tensor();
    f(q, k, v).backward(g);
  });
}

int run_bench_attention(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const std::string dev_name = inv.get("device", "cpu");
  if (dev_name != "cpu" && dev_name != "cuda") throw UsageError("--device: expected cpu or cuda, got '" + dev_name + "'");
  const int64_t reps = inv.get_int("reps", 5), B = inv.get_int("batch", 2), H = inv.get_int("heads", 4);
  if (reps < 1 || B < 1 || H < 1) throw UsageError("--reps, --batch and --heads must be >= 1");
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  nlohmann::json cases = nlohmann::json::array();
  double min_ratio = 1e30, log_sum = 0;
  int n = 0;
  if (dev_name == "cpu") {
    for (int64_t T : {256, 512, 1024})
      for (int64_t D : {32, 64, 128}) {
        auto q = torch::randn({B, H, T, D}), k = torch::randn({B, H, T, D}), v = torch::randn({B, H, T, D});
        auto g = torch::randn({B, H, T, D});
        const double ref = time_attention([](auto& a, auto& b, auto& c) { return attention_ops(a, b, c, true); }, q, k, v, g, reps);
        const double fused =
            time_attention([](auto& a, auto& b, auto& c) { return attention_fused_cpu(a, b, c, true); }, q, k, v, g, reps);
        const double ratio = ref / fused;
        min_ratio = std::min(min_ratio, ratio);
        log_sum += std::log(ratio);
        ++n;
        cases.push_back({{"T", T}, {"D", D}, {"reference_ms", 1e3 * ref}, {"fused_ms", 1e3 * fused}, {"ratio", ratio}});
      }
    nlohmann::json out = {{"bench", "attention"}, {"device", "cpu"},       {"isa", cpu::attention_cpu_isa()},
                          {"threads", threads},   {"batch", B},            {"heads", H},
                          {"causal", true},       {"dtype", "float32"},    {"what", "forward+backward"},
                          {"cases", cases},       {"min_ratio", min_ratio}, {"geomean_ratio", std::exp(log_sum / n)}};
    std::cout << out.dump() << std::endl;
    return 0;
  }
  if (!torch::cuda::is_available()) throw UsageError("bench attention --device cuda: no CUDA device is visible");
  const torch::Device dev(torch::kCUDA);
  nlohmann::json fails = nlohmann::json::array();
  for (auto dtype : {torch::kBFloat16, torch::kHalf})
    for (int64_t T : {512, 1024, 2048, 4096})
      for (int64_t D : {64, 128}) {
        const int64_t Bc = T >= 2048 ? 4 : 8, Hc = 16;
        auto o = torch::TensorOptions().dtype(dtype).device(dev);
        auto q = torch::randn({Bc, Hc, T, D}, o), k = torch::randn({Bc, Hc, T, D}, o), v = torch::randn({Bc, Hc, T, D}, o);
        auto g = torch::randn({Bc, Hc, T, D}, o);
        // Parity: the kernel vs float32 LibTorch ops (fwd + grads), on a slice small enough for ops.
        nlohmann::json c = {{"dtype", dtype == torch::kBFloat16 ? "bf16" : "fp16"}, {"T", T}, {"D", D}, {"B", Bc}, {"H", Hc}};
        {
          auto qs = q.slice(0, 0, 1).detach().requires_grad_(), ks = k.slice(0, 0, 1).detach().requires_grad_(),
               vs = v.slice(0, 0, 1).detach().requires_grad_();
          auto gs = g.slice(0, 0, 1);
          auto out = attention(qs, ks, vs, true);
          out.backward(gs);
          auto qf = qs.detach().to(torch::kFloat).requires_grad_(), kf = ks.detach().to(torch::kFloat).requires_grad_(),
               vf = vs.detach().to(torch::kFloat).requires_grad_();
          auto ref = attention_ops(qf, kf, vf, true);
          ref.backward(gs.to(torch::kFloat));
          auto err = [](const torch::Tensor& a, const torch::Tensor& b) {
            return (a.to(torch::kFloat) - b).abs().max().item<double>();
          };
          c["max_err_out"] = err(out, ref);
          c["max_err_dq"] = err(qs.grad(), qf.grad());
          c["max_err_dk"] = err(ks.grad(), kf.grad());
          c["max_err_dv"] = err(vs.grad(), vf.grad());
          if (T <= 1024) {  // the CPU kernel on the same inputs
            auto cpu = attention_fused_cpu(qf.detach().cpu(), kf.detach().cpu(), vf.detach().cpu(), true);
            c["max_err_vs_cpu_kernel"] = err(out.cpu(), cpu);
          }
          const double tol = dtype == torch::kBFloat16 ? 0.05 : 0.01;
          bool ok = true;
          for (const char* key : {"max_err_out", "max_err_dq", "max_err_dk", "max_err_dv"})
            ok = ok && c[key].get<double>() < tol * 4;
          c["parity_ok"] = ok;
          if (!ok) fails.push_back(c);
        }
        const double flops = 7.0 * static_cast<double>(Bc * Hc) * T * T * D;  // causal fwd (2) + bwd (5) matmuls, halved
        const double tk = time_attention([](auto& a, auto& b, auto& cc) { return attention(a, b, cc, true); }, q, k, v, g, reps);
        c["kernel_ms"] = 1e3 * tk;
        c["kernel_tflops"] = flops / tk / 1e12;
#if TORCH_VERSION_MAJOR >= 2
        const double ts = time_attention(
            [](auto& a, auto& b, auto& cc) { return at::scaled_dot_product_attention(a, b, cc, {}, 0.0, true); }, q, k, v,
            g, reps);
        c["torch_sdpa_ms"] = 1e3 * ts;
        c["torch_sdpa_tflops"] = flops / ts / 1e12;
        {
          auto qs = q.slice(0, 0, 1), ks = k.slice(0, 0, 1), vs = v.slice(0, 0, 1);
          c["max_err_vs_sdpa"] = (attention(qs, ks, vs, true).to(torch::kFloat) -
                                  at::scaled_dot_product_attention(qs, ks, vs, {}, 0.0, true).to(torch::kFloat))
                                     .abs()
                                     .max()
                                     .item<double>();
        }
#endif
        cases.push_back(c);
      }
  nlohmann::json out = {{"bench", "attention"},
                        {"device", "cuda"},
#ifdef CODEX_WITH_CUDA_KERNELS
                        {"gpu", at::cuda::getCurrentDeviceProperties()->name},
#endif
                        {"path", attention_path(torch::empty({1, 1, 1, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(dev)), 0.0, AttentionKind::Auto)},
                        {"cases", cases},
                        {"parity_failures", fails.size()}};
  std::cout << out.dump() << std::endl;
  return fails.empty() ? 0 : 1;
}

cli::Registrar reg_attention({"bench", "attention", "fused attention vs the reference, forward + backward (one JSON line)",
                              {{"device", true, "cpu (default) or cuda"},
                               {"reps", true, "timed runs per case, median reported (default 5)"},
                               {"batch", true, "batch size (default 2)"},
                               {"heads", true, "heads (default 4)"}},
                              false, run_bench_attention});

int run_bench_logprob(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const std::string variant = inv.require("variant");
  if (variant != "fused" && variant != "composed")
    throw UsageError("--variant: expected fused or composed, got '" + variant + "'");
  const std::string dev_name = inv.get("device", "cpu");
  if (dev_name != "cpu" && dev_name != "cuda") throw UsageError("--device: expected cpu or cuda, got '" + dev_name + "'");
  if (dev_name == "cuda" && !torch::cuda::is_available()) throw UsageError("--device cuda: no CUDA device is visible");
  const torch::Device dev(dev_name == "cuda" ? torch::kCUDA : torch::kCPU);
  const int64_t V = inv.get_int("vocab", 50257), N = inv.get_int("rows", 512), C = inv.get_int("embd", 256),
                reps = inv.get_int("reps", 3);
  if (V < 2 || N < 1 || C < 1 || reps < 1) throw UsageError("--vocab >= 2, --rows, --embd, --reps >= 1 expected");
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  auto o = torch::TensorOptions().device(dev);
  auto h = torch::randn({N, C}, o).requires_grad_(), w = (torch::randn({V, C}, o) * 0.05).requires_grad_();
  auto y = torch::randint(0, V, {N}, o.dtype(torch::kLong));
  auto a = torch::randn({N}, o), b = torch::randn({N}, o);
  const double temp = 0.9;
  const double rss0 = status_mb("VmRSS");
  auto step = [&] {
    h.mutable_grad() = torch::Tensor();
    w.mutable_grad() = torch::Tensor();
    torch::Tensor logp, ent;
    if (variant == "fused") {
      auto r = token_logprobs(h, w, y, temp, true);
      logp = r.logprobs;
      ent = r.entropy;
    } else {
      auto lsm = torch::log_softmax(torch::mm(h, w.t()) / temp, 1);
      logp = lsm.gather(1, y.unsqueeze(1)).squeeze(1);
      ent = -(lsm.exp() * lsm).sum(1);
    }
    (a * logp + b * ent).sum().backward();
  };
  const double t = median_time(reps, dev, step);
  nlohmann::json out = {{"bench", "logprob"}, {"variant", variant}, {"device", dev.str()}, {"threads", threads},
                        {"vocab", V},         {"rows", N},          {"embd", C},           {"ms", 1e3 * t},
                        {"what", "logprobs + entropy, forward + backward, float32"}};
  if (dev.is_cpu()) {
    out["peak_extra_mb"] = status_mb("VmHWM") - rss0;
  } else {
#ifdef CODEX_WITH_CUDA_KERNELS
    // The row kernels alone on a (rows, V) float logits chunk: bytes moved / time.
    auto z = torch::randn({N, V}, o);
    auto lse = torch::empty({N}, o), lp = torch::empty({N}, o), en = torch::empty({N}, o);
    kernels::LogprobParams p{};
    p.rows = static_cast<int32_t>(N);
    p.V = static_cast<int32_t>(V);
    p.inv_temp = static_cast<float>(1.0 / temp);
    p.logits = z.data_ptr<float>();
    p.targets = y.data_ptr<int64_t>();
    p.logp = lp.data_ptr<float>();
    p.lse = lse.data_ptr<float>();
    p.entropy = en.data_ptr<float>();
    auto stream = at::cuda::getCurrentCUDAStream().stream();
    const double tf = median_time(20, dev, [&] { kernels::logprob_forward_cuda(p, stream); });
    out["kernel_forward_gbps"] = static_cast<double>(N) * V * 4 / tf / 1e9;
    auto g1 = torch::randn({N}, o), g2 = torch::randn({N}, o);
    p.g_logp = g1.data_ptr<float>();
    p.g_entropy = g2.data_ptr<float>();
    const double tb = median_time(20, dev, [&] { kernels::logprob_backward_cuda(p, stream); });
    out["kernel_backward_gbps"] = static_cast<double>(N) * V * 8 / tb / 1e9;
#endif
  }
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg_logprob({"bench", "logprob", "fused vs composed log-probs + entropy, forward + backward (one JSON line)",
                            {{"variant", true, "fused or composed (one per process: peak memory)"},
                             {"device", true, "cpu (default) or cuda"},
                             {"vocab", true, "vocabulary size (default 50257)"},
                             {"rows", true, "tokens (default 512)"},
                             {"embd", true, "hidden width (default 256)"},
                             {"reps", true, "timed runs, median reported (default 3)"}},
                            false, run_bench_logprob});

}  // namespace
}  // namespace codex
