// Benchmarks and GPU parity checks of the fused ops, each printing ONE JSON line:
//   codex-train bench attention [--device cpu|cuda] [--reps N] [--batch B] [--heads H] [--peak-tflops P]
//     forward + backward time of the fused attention vs the LibTorch-ops reference (CPU), or on a
//     CUDA build with a GPU: parity of the CUDA kernel vs the float32 reference, the CPU kernel and
//     torch's scaled_dot_product_attention, and TFLOP/s (and MFU against P) of the kernel, SDPA and
//     the LibTorch-ops reference.
//   codex-train bench attention --device cuda|cpu --parity-only [--shapes all|small] [--no-baseline]
//     the CUDA kernel (called directly, whatever model.attention=auto picks) against float64
//     LibTorch ops on the CPU, forward output and dq, dk, dv, on the shapes the benchmark never
//     covers: T 1, 63, 65, 1000; decoding (Tq 1, Tk 513) and a prefill chunk (Tq 65, Tk 513);
//     key masks with fully masked query rows; non-causal; head dim 64 and 128; fp16 and bf16.
//     `small`: the smallest of them (compute-sanitizer runs, scripts/gpu_check.sh). Exit 1 when a
//     case fails or throws. `--device cpu` runs the same harness on the fused CPU kernel (float32).
//   codex-train bench logprob --variant fused|composed [--vocab V] [--rows N] [--embd C] [--reps N]
//     log-probs + entropy of sampled tokens, forward + backward, fused (ops/logprob.h) or composed
//     from LibTorch ops (mm, log_softmax, gather); peak memory is this process's resident high-water
//     mark above its level before the first run, so run one variant per process
//     (scripts/bench/logprob.sh does).
//   codex-train bench logprob --parity [--device cpu|cuda] [--vocabs V1,V2] [--rows N] [--embd C]
//     token_logprobs on the device in float32 (on a CUDA build: the log-prob kernel) against the
//     float64 CPU path, log-probs, entropy and both gradients, temperatures 1 and 0.7, with and
//     without entropy, several row chunks. Exit 1 when a case fails.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/registry.h"
#include "config/device.h"
#include "ops/attention.h"
#include "ops/cpu/attention_kernel.h"
#include "ops/logprob.h"
#include "util/error.h"
#ifdef CODEX_WITH_CUDA_KERNELS
#include "kl/logprob_params.h"
#include "ops/cuda/attention_cuda.h"
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

// The first line of an exception message (LibTorch appends a C++ stack trace to its own).
std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// The custom CUDA kernel itself, whatever `model.attention=auto` would pick (SDPA on LibTorch >= 2).
torch::Tensor kernel_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal,
                               const torch::Tensor& key_mask = {}) {
#ifdef CODEX_WITH_CUDA_KERNELS
  return attention_fused_cuda(q, k, v, causal, key_mask);
#else
  (void)q, (void)k, (void)v, (void)causal, (void)key_mask;
  throw UsageError("bench attention --device cuda: this build has no CUDA kernels (scripts/build.sh --cuda)");
#endif
}

// max |a - b| and max |b| (b the reference), in float64 on the CPU.
struct Err {
  double abs = 0, scale = 0;
  bool finite = true;
  double rel() const { return abs / std::max(scale, 1e-12); }
};
Err compare(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = a.detach().to(torch::kCPU, torch::kDouble), y = b.detach().to(torch::kCPU, torch::kDouble);
  Err e;
  e.finite = torch::isfinite(x).all().item<bool>();
  e.abs = x.numel() ? (x - y).abs().max().item<double>() : 0.0;
  e.scale = y.numel() ? y.abs().max().item<double>() : 0.0;
  return e;
}

// One parity shape of the CUDA attention kernel. mask: 0 none; 1 batch row 0 left-padded (30% of
// the keys; causal: its first query rows see no key), every other row fully masked; 2 row 0
// left-padded, row 1 with 15% of its keys masked at random (key 0 included).
struct AttnShape {
  std::string name;
  int64_t B, H, Tq, Tk;
  bool causal;
  int mask;
};

std::vector<AttnShape> attention_parity_shapes(const std::string& set) {
  if (set == "small")
    return {{"T1", 2, 1, 1, 1, true, 0},          {"T63", 2, 1, 63, 63, true, 0},
            {"T65", 2, 1, 65, 65, true, 0},        {"T65_mask", 2, 1, 65, 65, true, 1},
            {"T65_mask_noncausal", 2, 1, 65, 65, false, 1},
            {"decode_Tq1_Tk129_mask", 2, 1, 1, 129, true, 2}};
  if (set != "all") throw UsageError("--shapes: expected all or small, got '" + set + "'");
  return {{"T1", 2, 3, 1, 1, true, 0},
          {"T63", 2, 3, 63, 63, true, 0},
          {"T65", 2, 3, 65, 65, true, 0},
          {"T1000", 2, 3, 1000, 1000, true, 0},
          {"T63_noncausal", 2, 3, 63, 63, false, 0},
          {"T65_noncausal", 2, 3, 65, 65, false, 0},
          {"T1000_noncausal", 2, 3, 1000, 1000, false, 0},
          {"decode_Tq1_Tk513", 2, 3, 1, 513, true, 0},
          {"decode_Tq1_Tk513_mask", 2, 3, 1, 513, true, 1},
          {"prefill_Tq65_Tk513", 2, 3, 65, 513, true, 0},
          {"T65_mask", 2, 3, 65, 65, true, 1},
          {"T65_mask_noncausal", 2, 3, 65, 65, false, 1},
          {"T1000_mask_holes", 2, 3, 1000, 1000, true, 2},
          {"T1000_mask_holes_noncausal", 2, 3, 1000, 1000, false, 2}};
}

torch::Tensor parity_mask(const AttnShape& s) {
  if (s.mask == 0) return {};
  auto m = torch::ones({s.B, s.Tk}, torch::kBool);
  const int64_t pad = (s.Tk * 3) / 10;
  m[0].slice(0, 0, pad).fill_(false);
  for (int64_t b = 1; b < s.B; ++b) {
    if (s.mask == 1) {
      m[b].fill_(false);
    } else {
      m[b].copy_(torch::rand({s.Tk}) >= 0.15);
      m[b][0] = false;
    }
  }
  return m;
}

// One case of run_attention_parity: the kernel's output and gradients against the float64
// reference (and LibTorch's own error in the dtype, with `baseline`), into c (errors, "ok").
void attention_parity_case(nlohmann::json& c, const AttnShape& s, int64_t D, torch::ScalarType dtype,
                           const torch::Device& dev, bool baseline) {
  const char* names[4] = {"out", "dq", "dk", "dv"};
  try {
    auto mk = [&](int64_t t) { return torch::randn({s.B, s.H, t, D}, torch::kDouble).to(dtype); };
    auto q = mk(s.Tq), k = mk(s.Tk), v = mk(s.Tk), g = mk(s.Tq);
    auto mask = parity_mask(s);
    // Reference: float64 ops on the CPU.
    auto qd = q.to(torch::kDouble).requires_grad_(), kd = k.to(torch::kDouble).requires_grad_(),
         vd = v.to(torch::kDouble).requires_grad_();
    auto ref = attention_ops(qd, kd, vd, s.causal, mask);
    ref.backward(g.to(torch::kDouble));
    const torch::Tensor want[4] = {ref, qd.grad(), kd.grad(), vd.grad()};
    // Fresh leaves on the device for each run (on the CPU, .to() alone would hand back q itself
    // and the runs' gradients would pile up in one .grad).
    auto leaf = [&](const torch::Tensor& t) { return t.to(dev).clone().requires_grad_(); };
    // The kernel.
    auto qc = leaf(q), kc = leaf(k), vc = leaf(v);
    auto maskc = mask.defined() ? mask.to(dev) : torch::Tensor();
    auto out = dev.is_cuda() ? kernel_attention(qc, kc, vc, s.causal, maskc)
                             : attention_fused_cpu(qc, kc, vc, s.causal, maskc);
    out.backward(g.to(dev));
    if (dev.is_cuda()) torch::cuda::synchronize();
    const torch::Tensor got[4] = {out, qc.grad(), kc.grad(), vc.grad()};
    // Baseline: LibTorch's ops in the same dtype on the GPU.
    torch::Tensor base[4];
    if (baseline) {
      auto qb = leaf(q), kb = leaf(k), vb = leaf(v);
      auto ob = attention_ops(qb, kb, vb, s.causal, maskc);
      ob.backward(g.to(dev));
      base[0] = ob;
      base[1] = qb.grad();
      base[2] = kb.grad();
      base[3] = vb.grad();
    }
    const double tol = dtype == torch::kBFloat16 ? 2e-2 : dtype == torch::kHalf ? 5e-3 : 1e-4;
    bool ok = true;
    for (int i = 0; i < 4; ++i) {
      if (!got[i].defined()) {
        c[std::string("missing_") + names[i]] = true;
        ok = false;
        continue;
      }
      const Err e = compare(got[i], want[i]);
      const double scale1 = std::max(e.scale, 1.0);
      double bar = tol;  // allowed max |err| / max(1, max |ref|)
      c[std::string("err_") + names[i]] = e.abs;
      c[std::string("scale_") + names[i]] = e.scale;
      if (baseline && base[i].defined()) {
        // LibTorch's own error in this dtype may lift the bar, at most to 5 x tol.
        const Err eb = compare(base[i], want[i]);
        c[std::string("ops_err_") + names[i]] = eb.abs;
        bar = std::max(bar, std::min(2 * eb.abs / scale1, 5 * tol));
      }
      const bool pass = e.finite && e.abs <= bar * scale1;
      if (!e.finite) c[std::string("nonfinite_") + names[i]] = true;
      ok = ok && pass;
    }
    c["ok"] = ok;
  } catch (const std::exception& e) {
    c["ok"] = false;
    c["error"] = first_line(e.what());
  }
}

// The kernel vs float64 LibTorch ops on the CPU (inputs rounded to the kernel's dtype first, so
// only the kernel's arithmetic differs), forward and dq, dk, dv. Pass: for each tensor, max |err|
// <= tol * max(1, max |ref|) (bf16 2e-2, fp16 5e-3, float32 1e-4), or within twice the error
// LibTorch's own ops make in that dtype on that device (the baseline; skipped with --no-baseline),
// the bar lifted by the baseline to at most 5 x tol.
// Non-finite values always fail. On `--device cpu` the same harness checks the fused CPU kernel
// in float32 (so the harness itself is exercised where there is no GPU).
int run_attention_parity(cli::Invocation& inv, const torch::Device& dev) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  const std::string set = inv.get("shapes", "all");
  const bool baseline = !inv.has("no-baseline");
  const auto shapes = attention_parity_shapes(set);
  nlohmann::json cases = nlohmann::json::array();
  int64_t failures = 0;
  const std::vector<torch::ScalarType> dtypes =
      dev.is_cuda() ? std::vector<torch::ScalarType>{torch::kBFloat16, torch::kHalf} : std::vector<torch::ScalarType>{torch::kFloat};
  for (auto dtype : dtypes)
    for (int64_t D : {64, 128})
      for (const auto& s : shapes) {
        const char* dtype_name = dtype == torch::kBFloat16 ? "bf16" : dtype == torch::kHalf ? "fp16" : "fp32";
        nlohmann::json c = {{"case", s.name}, {"dtype", dtype_name}, {"D", D}, {"B", s.B}, {"H", s.H},
                            {"Tq", s.Tq}, {"Tk", s.Tk}, {"causal", s.causal}, {"mask", s.mask}};
        attention_parity_case(c, s, D, dtype, dev, baseline);
        if (!c["ok"].get<bool>()) ++failures;
        std::cerr << "parity attention: " << (c["ok"].get<bool>() ? "ok  " : "FAIL") << " " << c.dump() << "\n";
        cases.push_back(c);
      }
  nlohmann::json out = {{"bench", "attention_parity"},
                        {"device", dev.str()},
                        {"kernel", dev.is_cuda() ? "the custom CUDA kernel (attention_fused_cuda)" : "the fused CPU kernel"},
#ifdef CODEX_WITH_CUDA_KERNELS
                        {"gpu", dev.is_cuda() ? at::cuda::getCurrentDeviceProperties()->name : ""},
#endif
                        {"torch", TORCH_VERSION},
                        {"shapes", set},
                        {"reference", "float64 LibTorch ops on the CPU"},
                        {"baseline", baseline},
                        {"cases", cases.size()},
                        {"failures", failures},
                        {"results", cases}};
  std::cout << out.dump() << std::endl;
  return failures == 0 ? 0 : 1;
}

// The fused CPU kernel vs LibTorch ops, causal forward + backward in float32, T x D cases.
int bench_attention_cpu(int64_t B, int64_t H, int64_t reps, int threads) {
  nlohmann::json cases = nlohmann::json::array();
  double min_ratio = 1e30, log_sum = 0;
  int n = 0;
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

// One CUDA case of run_bench_attention: the kernel's parity with float32 ops (failures also go to
// `fails`), then the timings of the kernel, SDPA (LibTorch 2) and the ops reference.
nlohmann::json bench_attention_cuda_case(torch::ScalarType dtype, int64_t T, int64_t D, const torch::Device& dev,
                                         int64_t reps, double peak, nlohmann::json& fails) {
  const int64_t Bc = T >= 2048 ? 4 : 8, Hc = 16;
  auto o = torch::TensorOptions().dtype(dtype).device(dev);
  auto q = torch::randn({Bc, Hc, T, D}, o), k = torch::randn({Bc, Hc, T, D}, o), v = torch::randn({Bc, Hc, T, D}, o);
  auto g = torch::randn({Bc, Hc, T, D}, o);
  nlohmann::json c = {{"dtype", dtype == torch::kBFloat16 ? "bf16" : "fp16"}, {"T", T}, {"D", D}, {"B", Bc}, {"H", Hc}};
  try {
    // Parity: the kernel vs float32 LibTorch ops (fwd + grads), on a slice small enough for ops.
    auto qs = q.slice(0, 0, 1).detach().requires_grad_(), ks = k.slice(0, 0, 1).detach().requires_grad_(),
         vs = v.slice(0, 0, 1).detach().requires_grad_();
    auto gs = g.slice(0, 0, 1);
    auto out = kernel_attention(qs, ks, vs, true);
    out.backward(gs);
    auto qf = qs.detach().to(torch::kFloat).requires_grad_(), kf = ks.detach().to(torch::kFloat).requires_grad_(),
         vf = vs.detach().to(torch::kFloat).requires_grad_();
    auto ref = attention_ops(qf, kf, vf, true);
    ref.backward(gs.to(torch::kFloat));
    auto err = [](const torch::Tensor& x, const torch::Tensor& y) {
      return (x.to(torch::kFloat) - y.to(torch::kFloat)).abs().max().item<double>();
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
  } catch (const std::exception& e) {
    c["parity_ok"] = false;
    c["error"] = first_line(e.what());
    fails.push_back(c);
  }
  // Causal forward (2 matmuls) + backward (5 matmuls), each 2 T^2 D flops, halved by the mask.
  const double flops = 7.0 * static_cast<double>(Bc * Hc) * T * T * D;
  auto rate = [&](const char* name, const AttnFn& f) {
    try {
      const double t = time_attention(f, q, k, v, g, reps);
      c[std::string(name) + "_ms"] = 1e3 * t;
      c[std::string(name) + "_tflops"] = flops / t / 1e12;
      if (peak > 0) c[std::string(name) + "_mfu"] = flops / t / 1e12 / peak;
    } catch (const std::exception& e) {
      c[std::string(name) + "_error"] = first_line(e.what());
    }
  };
  rate("kernel", [](auto& a, auto& b, auto& cc) { return kernel_attention(a, b, cc, true); });
#if TORCH_VERSION_MAJOR >= 2
  rate("torch_sdpa",
       [](auto& a, auto& b, auto& cc) { return at::scaled_dot_product_attention(a, b, cc, {}, 0.0, true); });
  try {
    auto qs = q.slice(0, 0, 1), ks = k.slice(0, 0, 1), vs = v.slice(0, 0, 1);
    torch::NoGradGuard ng;
    c["max_err_vs_sdpa"] = (kernel_attention(qs, ks, vs, true).to(torch::kFloat) -
                            at::scaled_dot_product_attention(qs, ks, vs, {}, 0.0, true).to(torch::kFloat))
                               .abs()
                               .max()
                               .item<double>();
  } catch (const std::exception& e) {
    c["sdpa_error"] = first_line(e.what());
  }
#endif
  // LibTorch ops (the (B, H, T, T) score matrix; model.attention=reference), the largest
  // shapes skipped: (4, 16, 4096, 4096) scores are 2 GiB per copy in 16 bits.
  if (T <= 2048) rate("reference", [](auto& a, auto& b, auto& cc) { return attention_ops(a, b, cc, true); });
  return c;
}

int run_bench_attention(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const std::string dev_name = inv.get("device", "cpu");
  if (dev_name != "cpu" && dev_name != "cuda") throw UsageError("--device: expected cpu or cuda, got '" + dev_name + "'");
  const int64_t reps = inv.get_int("reps", 5), B = inv.get_int("batch", 2), H = inv.get_int("heads", 4);
  if (reps < 1 || B < 1 || H < 1) throw UsageError("--reps, --batch and --heads must be >= 1");
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  if (dev_name == "cpu" && inv.has("parity-only")) return run_attention_parity(inv, torch::Device(torch::kCPU));
  if (dev_name == "cpu") return bench_attention_cpu(B, H, reps, threads);
  if (!torch::cuda::is_available()) throw UsageError("bench attention --device cuda: no CUDA device is visible");
  if (inv.has("parity-only")) return run_attention_parity(inv, torch::Device(torch::kCUDA));
  const torch::Device dev(torch::kCUDA);
  const double peak = inv.get_double("peak-tflops", 0.0);
  nlohmann::json cases = nlohmann::json::array(), fails = nlohmann::json::array();
  for (auto dtype : {torch::kBFloat16, torch::kHalf})
    for (int64_t T : {512, 1024, 2048, 4096})
      for (int64_t D : {64, 128}) {
        nlohmann::json c = bench_attention_cuda_case(dtype, T, D, dev, reps, peak, fails);
        std::cerr << "bench attention: " << c.dump() << "\n";
        cases.push_back(c);
      }
  nlohmann::json out = {{"bench", "attention"},
                        {"device", "cuda"},
#ifdef CODEX_WITH_CUDA_KERNELS
                        {"gpu", at::cuda::getCurrentDeviceProperties()->name},
#endif
                        {"torch", TORCH_VERSION},
                        {"what", "causal forward+backward, flops = 7 B H T^2 D"},
                        {"peak_tflops", peak},
                        {"auto_path", attention_path(torch::empty({1, 1, 1, 64}, torch::TensorOptions().dtype(torch::kBFloat16).device(dev)), 0.0, AttentionKind::Auto)},
                        {"cases", cases},
                        {"parity_failures", fails.size()}};
  std::cout << out.dump() << std::endl;
  return fails.empty() ? 0 : 1;
}

cli::Registrar reg_attention({"bench", "attention", "fused attention vs the reference, forward + backward (one JSON line)",
                              {{"device", true, "cpu (default) or cuda"},
                               {"reps", true, "timed runs per case, median reported (default 5)"},
                               {"batch", true, "batch size (default 2; CPU)"},
                               {"heads", true, "heads (default 4; CPU)"},
                               {"peak-tflops", true, "CUDA: the device's dense bf16 TFLOP/s, for MFU figures"},
                               {"parity-only", false, "only the kernel's parity checks vs float64 ops, no timing (cpu: the CPU kernel)"},
                               {"shapes", true, "with --parity-only: all (default) or small (compute-sanitizer runs)"},
                               {"no-baseline", false, "with --parity-only: skip LibTorch's own fp16/bf16 error (cuBLAS)"}},
                              false, run_bench_attention});

// One case of run_logprob_parity: log-probs, entropy and both gradients on `dev` in float32 vs
// the float64 CPU path, into c (errors, "ok").
void logprob_parity_case(nlohmann::json& c, const torch::Device& dev, int64_t N, int64_t C, int64_t V, double temp,
                         bool ent, int64_t chunk) {
  try {
    auto h = torch::randn({N, C});
    auto w = torch::randn({V, C}) * 0.3;  // logits with a few units of spread
    auto y = torch::randint(0, V, {N}, torch::kLong);
    y[0] = 0;
    y[1] = V - 1;
    auto a = torch::randn({N}), b = torch::randn({N});
    auto loss_of = [&](const TokenLogprobs& r, const torch::Tensor& aa, const torch::Tensor& bb) {
      auto l = (aa * r.logprobs).sum();
      if (ent) l = l + (bb * r.entropy).sum();
      return l;
    };
    auto hd = h.to(torch::kDouble).requires_grad_(), wd = w.to(torch::kDouble).requires_grad_();
    auto rd = token_logprobs(hd, wd, y, temp, ent, chunk);
    loss_of(rd, a.to(torch::kDouble), b.to(torch::kDouble)).backward();
    auto hf = h.to(dev).clone().requires_grad_(), wf = w.to(dev).clone().requires_grad_();
    auto rf = token_logprobs(hf, wf, y.to(dev), temp, ent, chunk);
    loss_of(rf, a.to(dev), b.to(dev)).backward();
    std::vector<std::pair<std::string, std::pair<torch::Tensor, torch::Tensor>>> pairs = {
        {"logp", {rf.logprobs, rd.logprobs}}, {"dh", {hf.grad(), hd.grad()}}, {"dw", {wf.grad(), wd.grad()}}};
    if (ent) pairs.push_back({"entropy", {rf.entropy, rd.entropy}});
    bool ok = true;
    for (auto& [name, tr] : pairs) {
      if (!tr.first.defined()) {
        c["missing_" + name] = true;
        ok = false;
        continue;
      }
      const Err e = compare(tr.first, tr.second);
      c["err_" + name] = e.abs;
      c["scale_" + name] = e.scale;
      ok = ok && e.finite && e.abs <= 2e-4 * std::max(1.0, e.scale);
    }
    c["ok"] = ok;
  } catch (const std::exception& e) {
    c["ok"] = false;
    c["error"] = first_line(e.what());
  }
}

// --vocabs: a comma-separated list of vocabulary sizes.
std::vector<int64_t> parse_vocabs(const cli::Invocation& inv) {
  std::vector<int64_t> vocabs;
  std::stringstream ss(inv.get("vocabs", "50257,50304"));
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      vocabs.push_back(std::stoll(item));
    } catch (const std::exception&) {
      throw UsageError("--vocabs: expected a comma-separated list of integers, got '" + inv.get("vocabs") + "'");
    }
  }
  return vocabs;
}

// token_logprobs in float32 on the device (CUDA builds: the log-prob kernel for the row pass) vs
// the float64 CPU path on the same (float32-rounded) inputs: log-probs, entropy, d/dhidden and
// d/dweight of sum(a * logp + b * entropy). TF32 is switched off for the run (the check is of the
// kernel, not of TF32 matmuls). Pass: max |err| <= 2e-4 * max(1, max |ref|) for each tensor.
int run_logprob_parity(cli::Invocation& inv) {
  Config cfg = inv.config();
  const std::string dev_name = inv.get("device", "cpu");
  if (dev_name != "cpu" && dev_name != "cuda") throw UsageError("--device: expected cpu or cuda, got '" + dev_name + "'");
  if (dev_name == "cuda" && !torch::cuda::is_available()) throw UsageError("--device cuda: no CUDA device is visible");
  const torch::Device dev(dev_name == "cuda" ? torch::kCUDA : torch::kCPU);
  configure_threads(cfg.run.threads);
  const std::vector<int64_t> vocabs = parse_vocabs(inv);
  const int64_t N = inv.get_int("rows", 257), C = inv.get_int("embd", 128);
  if (N < 2 || C < 1) throw UsageError("--rows >= 2 and --embd >= 1 expected");
  for (int64_t V : vocabs)
    if (V < 2) throw UsageError("--vocabs: each vocabulary size must be >= 2");
  at::globalContext().setFloat32MatmulPrecision("highest");
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  nlohmann::json cases = nlohmann::json::array();
  int64_t failures = 0;
  // Row chunks of 100 (several chunks and a partial one) and one chunk of all rows.
  for (int64_t V : vocabs)
    for (double temp : {1.0, 0.7})
      for (bool ent : {true, false})
        for (int64_t chunk : {int64_t{100}, N}) {
          nlohmann::json c = {{"vocab", V}, {"rows", N}, {"embd", C}, {"temperature", temp}, {"entropy", ent},
                              {"chunk_rows", chunk}};
          logprob_parity_case(c, dev, N, C, V, temp, ent, chunk);
          if (!c["ok"].get<bool>()) ++failures;
          std::cerr << "parity logprob: " << (c["ok"].get<bool>() ? "ok  " : "FAIL") << " " << c.dump() << "\n";
          cases.push_back(c);
        }
  bool kernel = false;
#ifdef CODEX_WITH_CUDA_KERNELS
  kernel = dev.is_cuda();
#endif
  nlohmann::json out = {{"bench", "logprob_parity"}, {"device", dev.str()},   {"cuda_kernel", kernel},
                        {"reference", "float64 CPU path (token_logprobs)"}, {"cases", cases.size()},
                        {"failures", failures},      {"results", cases}};
  std::cout << out.dump() << std::endl;
  return failures == 0 ? 0 : 1;
}

int run_bench_logprob(cli::Invocation& inv) {
  if (inv.has("parity")) return run_logprob_parity(inv);
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
                             {"reps", true, "timed runs, median reported (default 3)"},
                             {"parity", false, "parity of the device's float32 path vs the float64 CPU path instead"},
                             {"vocabs", true, "with --parity: vocabulary sizes, comma-separated (default 50257,50304)"}},
                            false, run_bench_logprob});

}  // namespace
}  // namespace codex
