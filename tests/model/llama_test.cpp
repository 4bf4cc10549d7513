// model.arch=llama (the Llama / Qwen2 decoder) against an independent float64 PyTorch forward
// written from the published formulas (tests/model/llama_golden.py), and its cache / padding /
// config contracts.
#include <catch2/catch.hpp>
#include <fstream>

#include "config/config.h"
#include "helpers.h"
#include "model/gpt.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;

namespace {
GPTConfig llama_cfg(int64_t kv_heads, bool qkv_bias, bool tied) {
  GPTConfig c;
  c.arch = "llama";
  c.vocab_size = 41;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = kv_heads;
  c.n_embd = 32;
  c.intermediate_size = 48;
  c.block_size = 16;
  c.rope_theta = 500.0;  // small, so positions 0..11 turn the angles far
  c.norm_eps = 1e-6;
  c.qkv_bias = qkv_bias;
  c.tie_embeddings = tied;
  return c;
}

// Logits of the golden for `m`'s parameters on idx / mask.
torch::Tensor golden_logits(GPT& m, const torch::Tensor& idx, const torch::Tensor& mask) {
  TempDir t;
  c10::Dict<std::string, torch::Tensor> d;
  for (auto& kv : m->named_parameters()) d.insert(kv.key(), kv.value().detach());
  d.insert("idx", idx);
  d.insert("mask", mask);
  d.insert("cfg", torch::tensor({static_cast<double>(m->cfg.n_layer), static_cast<double>(m->cfg.n_head),
                                 static_cast<double>(m->cfg.kv_heads()), m->cfg.rope_theta, m->cfg.norm_eps},
                                torch::kFloat64));
  auto bytes = torch::pickle_save(d);
  std::ofstream(t / "in.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto r = codex::test::run_shell("/usr/bin/python3 " + std::string(CODEX_TEST_DIR) + "/model/llama_golden.py " +
                                  (t / "in.pt").string() + " " + (t / "out.bin").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::string raw = codex::read_file(t / "out.bin");
  const int64_t V = m->cfg.vocab_size;
  REQUIRE(raw.size() == static_cast<size_t>(idx.numel() * V) * sizeof(double));
  return torch::from_blob(raw.data(), {idx.size(0), idx.size(1), V}, torch::kFloat64).clone();
}

GPT perturbed_f64(const GPTConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  GPT m(c);
  m->to(torch::kFloat64);
  torch::NoGradGuard ng;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.2);  // norms and biases matter too
  m->eval();
  return m;
}
}  // namespace

TEST_CASE("llama: parameter names and shapes (GQA, Qwen2 biases, untied head)", "[model]") {
  GPT m(llama_cfg(2, true, false));
  auto p = m->named_parameters();
  REQUIRE(p.find("wpe.weight") == nullptr);  // rotary positions, no learned table
  REQUIRE(p["h.0.attn.q_proj.weight"].sizes() == torch::IntArrayRef({32, 32}));
  REQUIRE(p["h.0.attn.k_proj.weight"].sizes() == torch::IntArrayRef({16, 32}));  // 2 kv heads of 8
  REQUIRE(p["h.0.attn.v_proj.bias"].sizes() == torch::IntArrayRef({16}));
  REQUIRE(p.find("h.0.attn.o_proj.bias") == nullptr);
  REQUIRE(p["h.1.mlp.gate_proj.weight"].sizes() == torch::IntArrayRef({48, 32}));
  REQUIRE(p["h.1.mlp.down_proj.weight"].sizes() == torch::IntArrayRef({32, 48}));
  REQUIRE(p.find("h.0.ln_1.bias") == nullptr);  // RMSNorm: weight only
  REQUIRE(p["lm_head.weight"].sizes() == torch::IntArrayRef({41, 32}));
  // 41*32 (wte) + 41*32 (lm_head) + 32 (ln_f) + 2 layers * (q 32*32+32, k, v 16*32+16 each, o 32*32,
  // 3 MLP 48*32, 2 norms 32)
  const int64_t layer = (1024 + 32) + 2 * (512 + 16) + 1024 + 3 * 1536 + 2 * 32;
  REQUIRE(m->num_params() == 2 * 41 * 32 + 32 + 2 * layer);
  GPT tied(llama_cfg(2, false, true));
  REQUIRE(tied->named_parameters().find("lm_head.weight") == nullptr);
  REQUIRE(tied->lm_head_weight().data_ptr() == tied->wte->weight.data_ptr());
}

TEST_CASE("llama: logits match an independent float64 PyTorch forward (GQA 2 and 1 kv heads, left padding)",
          "[model]") {
  for (int64_t kv : {4, 2, 1}) {
    DYNAMIC_SECTION("kv heads " << kv) {
      GPT m = perturbed_f64(llama_cfg(kv, kv == 2, kv != 1), 20 + static_cast<uint64_t>(kv));
      torch::manual_seed(3);
      auto idx = torch::randint(0, 41, {3, 12}, torch::kLong);
      auto mask = torch::ones({3, 12}, torch::kBool);
      mask[1].slice(0, 0, 4).fill_(false);  // row 1: 4 pad tokens on the left
      mask[2].slice(0, 0, 11).fill_(false);  // row 2: one real token
      torch::NoGradGuard ng;
      auto logits = m->lm_logits(m->hidden(idx, nullptr, mask));  // (3, 12, 41)
      auto want = golden_logits(m, idx, mask);
      // Compared at real tokens (pad rows are don't-care by contract).
      auto real = mask.unsqueeze(-1).expand_as(logits);
      REQUIRE((logits - want).masked_select(real).abs().max().item<double>() < 1e-9);
    }
  }
}

TEST_CASE("llama: a left-padded row equals the row alone, a KV-cached decode the full forward", "[model]") {
  torch::manual_seed(5);
  GPT m(llama_cfg(2, true, true));
  m->eval();
  torch::NoGradGuard ng;
  auto idx = torch::randint(0, 41, {2, 10}, torch::kLong);
  auto full = m->hidden(idx);
  KVCache cache;
  auto a = m->hidden(idx.slice(1, 0, 6), &cache);
  REQUIRE(cache.k[0].size(1) == 2);  // the cache holds the 2 kv heads, not the 4 query heads
  auto b = m->hidden(idx.slice(1, 6, 7), &cache);
  auto c = m->hidden(idx.slice(1, 7, 10), &cache);
  REQUIRE((torch::cat({a, b, c}, 1) - full).abs().max().item<double>() < 1e-5);

  auto real = idx.slice(0, 0, 1).slice(1, 0, 7);
  auto padded = torch::cat({torch::full({1, 3}, 9, torch::kLong), real}, 1);
  auto mask = torch::ones({1, 10}, torch::kBool);
  mask.slice(1, 0, 3).fill_(false);
  REQUIRE((m->hidden(padded, nullptr, mask).slice(1, 3) - m->hidden(real)).abs().max().item<double>() < 1e-5);
  // Decoding a left-padded batch with the cache: positions continue from the real tokens.
  KVCache pc;
  auto p0 = m->hidden(padded.slice(1, 0, 8), &pc, mask.slice(1, 0, 8));
  auto p1 = m->hidden(padded.slice(1, 8, 10), &pc, mask);
  REQUIRE((torch::cat({p0, p1}, 1).slice(1, 3) - m->hidden(real)).abs().max().item<double>() < 1e-5);
}

TEST_CASE("llama: rotary positions rotate pairs (i, i + hd/2) by pos * theta^(-2i/hd)", "[model]") {
  // hd = 4, theta = 100: frequencies 1 and 0.1. x = (1, 0, 0, 0) at position 2 -> first pair
  // (x0, x2) turned by 2 rad: (cos 2, 0, sin 2, 0).
  auto x = torch::tensor({1.0, 0.0, 0.0, 0.0}, torch::kFloat64).view({1, 1, 1, 4});
  auto pos = torch::tensor({2}, torch::kLong).view({1, 1});
  auto y = apply_rope(x, pos, 100.0).view(-1);
  REQUIRE(y[0].item<double>() == Approx(std::cos(2.0)).margin(1e-12));
  REQUIRE(y[1].item<double>() == Approx(0.0).margin(1e-12));
  REQUIRE(y[2].item<double>() == Approx(std::sin(2.0)).margin(1e-12));
  // x = (0, 1, 0, 0): the second pair (x1, x3) turned by 2 * 0.1 rad.
  auto x2 = torch::tensor({0.0, 1.0, 0.0, 0.0}, torch::kFloat64).view({1, 1, 1, 4});
  auto y2 = apply_rope(x2, pos, 100.0).view(-1);
  REQUIRE(y2[1].item<double>() == Approx(std::cos(0.2)).margin(1e-12));
  REQUIRE(y2[3].item<double>() == Approx(std::sin(0.2)).margin(1e-12));
}

TEST_CASE("llama: config keys, presets and refusals", "[model]") {
  Config c = load_config("", {"model.preset=qwen2-0.5b"});
  REQUIRE(c.model.arch == "llama");
  REQUIRE(c.model.n_layer == 24);
  REQUIRE(c.model.n_embd == 896);
  REQUIRE(c.model.n_head == 14);
  REQUIRE(c.model.n_kv_head == 2);
  REQUIRE(c.model.intermediate_size == 4864);
  REQUIRE(c.model.rope_theta == 1e6);
  REQUIRE(c.model.qkv_bias);
  REQUIRE(c.model.vocab_size == 151936);
  Config t = load_config("", {"model.preset=llama-tiny", "model.n_kv_head=1"});
  REQUIRE(t.model.n_kv_head == 1);  // an explicit key wins over the preset
  ModelConfig bad = t.model;
  bad.n_kv_head = 3;  // does not divide 4 heads
  REQUIRE_THROWS_WITH(GPTConfig::from(bad, 50), Catch::Contains("model.n_kv_head"));
  ModelConfig gpt2;  // gpt2 has no grouped-query attention
  gpt2.n_kv_head = 1;
  REQUIRE_THROWS_WITH(GPTConfig::from(gpt2, 50), Catch::Contains("model.arch=llama"));
}
