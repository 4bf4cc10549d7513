// The CUDA attention dispatch rule (choose_cuda_attention) as plain facts: which implementation a
// GPU would run, checked here without one. The device facts are those NVIDIA publishes per
// architecture (max opt-in shared memory per block: sm_80 / sm_90 227 KB + 1 KB reserved = 163 KB
// on A100 and 227 KB on H100; sm_86 / sm_89 99 KB; sm_75 64 KB).
#include <catch2/catch.hpp>

#include "ops/attention.h"

using namespace codex;

namespace {
constexpr int64_t kKB = 1024;

// A training call of the custom kernel's shape family on a given device.
CudaAttentionCase make_case(int cc_major, int64_t smem_optin_kb, int64_t head_dim, bool backward) {
  CudaAttentionCase c;
  c.one_dtype_and_device = true;
  c.half_or_bf16 = true;
  c.head_dim = head_dim;
  c.batch_heads = 8 * 12;
  c.needs_backward = backward;
  c.cc_major = cc_major;
  c.smem_optin = smem_optin_kb * kKB;
  // What the kernel asks for at D = 64 / 128 (forward, backward): the D = 128 backward needs
  // ~145 KB, more than the 99 KB of sm_86 / sm_89.
  c.smem_forward = (head_dim == 64 ? 40 : 72) * kKB;
  c.smem_backward = (head_dim == 64 ? 80 : 145) * kKB;
  c.kernel_built = true;
  c.sdpa_available = false;
  return c;
}
}  // namespace

TEST_CASE("attention dispatch on CUDA: the custom kernel only where it is safe", "[ops]") {
  // A100 / H100 class (sm_80 / sm_90, 163 / 227 KB): the kernel, forward and backward, both head dims.
  for (int cc : {8, 9})
    for (int64_t d : {64, 128}) REQUIRE(std::string(choose_cuda_attention(make_case(cc, cc == 8 ? 163 : 227, d, true),
                                                                           AttentionKind::Fused)) == "cuda");
  // sm_86 / sm_89 (99 KB): D = 64 fits; D = 128 forward fits, its backward does not -> fall back
  // when a backward will run, keep the kernel for inference.
  REQUIRE(std::string(choose_cuda_attention(make_case(8, 99, 64, true), AttentionKind::Fused)) == "cuda");
  REQUIRE(std::string(choose_cuda_attention(make_case(8, 99, 128, true), AttentionKind::Fused)) == "ops");
  REQUIRE(std::string(choose_cuda_attention(make_case(8, 99, 128, false), AttentionKind::Fused)) == "cuda");
  // sm_75 (Turing): no bf16 MMA -> never the kernel, whatever the memory.
  REQUIRE(std::string(choose_cuda_attention(make_case(7, 227, 64, false), AttentionKind::Fused)) == "ops");

  auto c = make_case(9, 227, 64, true);
  SECTION("k or v of another dtype or device") {
    c.one_dtype_and_device = false;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("float32 inputs") {
    c.half_or_bf16 = false;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("a head dim the kernel has no case for") {
    c.head_dim = 96;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("more (batch, head) pairs than the grid's y dimension holds") {
    c.batch_heads = 65536;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("attention dropout") {
    c.dropout_p = 0.1;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("a build without the kernels") {
    c.kernel_built = false;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
  SECTION("unknown shared-memory needs are never assumed to fit") {
    c.smem_forward = 0;
    REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "ops");
  }
}

TEST_CASE("attention dispatch on CUDA: auto takes torch SDPA where LibTorch has it", "[ops]") {
  auto c = make_case(9, 227, 64, true);
  // LibTorch 1.x (no SDPA): auto and fused both take the kernel when safe.
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Auto)) == "cuda");
  // LibTorch >= 2: auto -> SDPA until a GPU measurement says the kernel is faster; fused asks for
  // the kernel and falls back to SDPA (not to ops) where the kernel is unsafe.
  c.sdpa_available = true;
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Auto)) == "sdpa");
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "cuda");
  c.cc_major = 7;
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Fused)) == "sdpa");
  c.half_or_bf16 = false;  // float32: SDPA handles it
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Auto)) == "sdpa");
  c.one_dtype_and_device = false;  // mixed inputs: only the ops path promotes them
  REQUIRE(std::string(choose_cuda_attention(c, AttentionKind::Auto)) == "ops");
}

TEST_CASE("attention dispatch: k and v are looked at, not only q", "[ops]") {
  auto q = torch::randn({1, 2, 5, 8});
  // A float64 k with a float32 q: the fused CPU kernel needs one dtype -> ops.
  REQUIRE(attention_path(q, q, q, 0.0, AttentionKind::Fused) == "fused");
  REQUIRE(attention_path(q, q.to(torch::kFloat64), q, 0.0, AttentionKind::Fused) == "ops");
  REQUIRE(attention_path(q, q, q.to(torch::kFloat64), 0.0, AttentionKind::Auto) == "ops");
}
