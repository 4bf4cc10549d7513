// The fused CPU attention (ops/cpu/attention_kernel.h) against the per-row reference and against
// autograd of the plain LibTorch formulation (attention_ops).
#include <catch2/catch.hpp>

#include "ops/attention.h"
#include "ops/cpu/attention_kernel.h"

using namespace codex;

namespace {
double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Case {
  int64_t B, H, Tq, Tk, D;
  bool causal;
  int64_t pad;  // left padding of the last sequence (0 = no mask)
};

struct Inputs {
  torch::Tensor q, k, v, mask, dout;
};

Inputs make(const Case& c, torch::ScalarType dt, uint64_t seed) {
  torch::manual_seed(seed);
  auto o = torch::TensorOptions().dtype(dt);
  Inputs in;
  in.q = torch::randn({c.B, c.H, c.Tq, c.D}, o);
  in.k = torch::randn({c.B, c.H, c.Tk, c.D}, o);
  in.v = torch::randn({c.B, c.H, c.Tk, c.D}, o);
  in.dout = torch::randn({c.B, c.H, c.Tq, c.D}, o);
  if (c.pad > 0) {
    in.mask = torch::ones({c.B, c.Tk}, torch::kBool);
    in.mask[c.B - 1].slice(0, 0, c.pad).fill_(false);
  }
  return in;
}

struct Out {
  torch::Tensor o, dq, dk, dv;
};

Out run(const Inputs& in, bool causal, bool fused) {
  auto q = in.q.clone().requires_grad_(), k = in.k.clone().requires_grad_(), v = in.v.clone().requires_grad_();
  auto o = fused ? attention_fused_cpu(q, k, v, causal, in.mask) : attention_ops(q, k, v, causal, in.mask);
  (o * in.dout).sum().backward();
  return {o.detach(), q.grad(), k.grad(), v.grad()};
}

const Case kCases[] = {
    {2, 3, 7, 7, 5, true, 0},      // small, odd head dim (generic path)
    {1, 2, 1, 1, 32, true, 0},     // a single token
    {2, 2, 65, 65, 32, true, 0},   // one past a tile
    {1, 2, 130, 130, 64, true, 0}, // three tiles, the last partial
    {1, 1, 100, 100, 128, true, 0},
    {2, 2, 1, 70, 64, true, 0},    // KV-cache decoding: one query over 70 keys
    {2, 1, 3, 130, 16, true, 0},   // three new queries over 130 keys
    {2, 2, 70, 70, 24, false, 0},  // not causal
    {3, 2, 67, 67, 32, true, 5},   // left padding: the last sequence's first 5 rows see no key
    {2, 2, 1, 9, 8, true, 4},      // decoding a left-padded sequence
    {2, 1, 66, 66, 64, false, 66}, // every key of the last sequence masked: all its rows fully masked
};
}  // namespace

TEST_CASE("fused CPU attention: forward equals the per-row reference (float64)", "[ops]") {
  int idx = 0;
  for (const auto& c : kCases) {
    INFO("case " << idx++ << ": B" << c.B << " H" << c.H << " Tq" << c.Tq << " Tk" << c.Tk << " D" << c.D
                 << (c.causal ? " causal" : "") << " pad" << c.pad);
    auto in = make(c, torch::kFloat64, 100 + idx);
    auto fused = attention_fused_cpu(in.q, in.k, in.v, c.causal, in.mask);
    REQUIRE(torch::isfinite(fused).all().item<bool>());
    REQUIRE(max_diff(fused, attention_reference(in.q, in.k, in.v, c.causal, in.mask)) < 1e-10);
  }
}

TEST_CASE("fused CPU attention: gradients equal autograd of the plain formulation (float64)", "[ops]") {
  int idx = 0;
  for (const auto& c : kCases) {
    INFO("case " << idx++ << ": Tq" << c.Tq << " Tk" << c.Tk << " D" << c.D << " pad" << c.pad);
    auto in = make(c, torch::kFloat64, 200 + idx);
    auto want = run(in, c.causal, false), got = run(in, c.causal, true);
    REQUIRE(max_diff(got.o, want.o) < 1e-10);
    REQUIRE(max_diff(got.dq, want.dq) < 1e-10);
    REQUIRE(max_diff(got.dk, want.dk) < 1e-10);
    REQUIRE(max_diff(got.dv, want.dv) < 1e-10);
  }
}

TEST_CASE("fused CPU attention: float32 within tolerance of float64, on every instruction set of this CPU", "[ops]") {
  const std::string before = cpu::attention_cpu_isa();
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    if (!cpu::set_attention_cpu_isa(isa)) continue;
    int idx = 0;
    for (const auto& c : kCases) {
      INFO(isa << " case " << idx++ << ": Tq" << c.Tq << " Tk" << c.Tk << " D" << c.D << " pad" << c.pad);
      auto in = make(c, torch::kFloat64, 300 + idx);
      auto want = run(in, c.causal, false);
      Inputs in32{in.q.to(torch::kFloat), in.k.to(torch::kFloat), in.v.to(torch::kFloat), in.mask,
                  in.dout.to(torch::kFloat)};
      auto got = run(in32, c.causal, true);
      REQUIRE(got.o.scalar_type() == torch::kFloat);
      REQUIRE(max_diff(got.o, want.o) < 2e-5);
      REQUIRE(max_diff(got.dq, want.dq) < 1e-4);
      REQUIRE(max_diff(got.dk, want.dk) < 1e-4);
      REQUIRE(max_diff(got.dv, want.dv) < 1e-4);
    }
  }
  REQUIRE(cpu::set_attention_cpu_isa(before.c_str()));
}

TEST_CASE("fused CPU attention: fully masked rows are the mean of v, as the reference", "[ops]") {
  Case c{2, 2, 6, 6, 4, true, 3};
  auto in = make(c, torch::kFloat64, 7);
  auto o = attention_fused_cpu(in.q, in.k, in.v, true, in.mask);
  // Sequence 1, rows 0..2 see only padding keys: each is the mean of all 6 value rows.
  for (int64_t i = 0; i < 3; ++i) REQUIRE(max_diff(o[1].select(1, i), in.v[1].mean(1)) < 1e-12);
  // Row 3 of sequence 1 sees key 3 only.
  REQUIRE(max_diff(o[1].select(1, 3), in.v[1].select(1, 3)) < 1e-12);
}

TEST_CASE("attention dispatch: model.attention chooses the implementation", "[ops]") {
  auto q = torch::randn({1, 2, 5, 8}), k = torch::randn({1, 2, 5, 8}), v = torch::randn({1, 2, 5, 8});
  REQUIRE(attention_path(q, 0.0, AttentionKind::Reference) == "ops");
  REQUIRE(attention_path(q, 0.0, AttentionKind::Fused) == "fused");
  REQUIRE(attention_path(q, 0.0, AttentionKind::Auto) == "fused");  // the CPU default
  REQUIRE(attention_path(q, 0.1, AttentionKind::Auto) == "ops");  // dropout: LibTorch ops
  REQUIRE(attention_path(q.to(torch::kBFloat16), 0.0, AttentionKind::Fused) == "ops");
  // Non-contiguous inputs (the model's permuted q/k/v views) are fine.
  auto qkv = torch::randn({1, 5, 3, 2, 8}).permute({2, 0, 3, 1, 4});
  REQUIRE(max_diff(attention(qkv[0], qkv[1], qkv[2], true, {}, 0.0, AttentionKind::Fused),
                   attention(qkv[0], qkv[1], qkv[2], true, {}, 0.0, AttentionKind::Reference)) < 1e-5);
  REQUIRE(parse_attention_kind("fused") == AttentionKind::Fused);
  REQUIRE_THROWS_WITH(parse_attention_kind("flash"), Catch::Contains("model.attention"));
}
