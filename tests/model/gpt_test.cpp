#include "model/gpt.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>

#include "helpers.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;

static GPTConfig tiny_cfg() {
  GPTConfig c;
  c.vocab_size = 37;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 16;
  c.block_size = 12;
  return c;
}

TEST_CASE("gpt: parameter names and shapes follow HF GPT-2", "[model]") {
  GPT m(tiny_cfg());
  auto p = m->named_parameters();
  REQUIRE(p["wte.weight"].sizes() == torch::IntArrayRef({37, 16}));
  REQUIRE(p["wpe.weight"].sizes() == torch::IntArrayRef({12, 16}));
  REQUIRE(p["h.1.attn.c_attn.weight"].sizes() == torch::IntArrayRef({48, 16}));
  REQUIRE(p["h.1.attn.c_proj.bias"].sizes() == torch::IntArrayRef({16}));
  REQUIRE(p["h.0.mlp.c_fc.weight"].sizes() == torch::IntArrayRef({64, 16}));
  REQUIRE(p["h.0.mlp.c_proj.weight"].sizes() == torch::IntArrayRef({16, 64}));
  REQUIRE(p["h.0.ln_2.weight"].sizes() == torch::IntArrayRef({16}));
  REQUIRE(p["ln_f.bias"].sizes() == torch::IntArrayRef({16}));
  REQUIRE(p.size() == 2 + 12 * 2 + 2);  // no separate lm_head: tied to wte
  // 37*16 + 12*16 + 2 * (2*16 + 48*16+48 + 16*16+16 + 2*16 + 64*16+64 + 16*64+16) + 2*16
  REQUIRE(m->num_params() == 592 + 192 + 2 * 3280 + 32);
}

TEST_CASE("gpt: GPT-2 init statistics", "[model]") {
  torch::manual_seed(0);
  GPTConfig c = tiny_cfg();
  c.n_layer = 8;
  c.n_embd = 128;
  c.vocab_size = 2000;
  GPT m(c);
  auto p = m->named_parameters();
  REQUIRE(p["wte.weight"].std().item<double>() == Approx(0.02).epsilon(0.02));
  REQUIRE(p["h.3.attn.c_attn.weight"].std().item<double>() == Approx(0.02).epsilon(0.03));
  REQUIRE(p["h.3.mlp.c_proj.weight"].std().item<double>() == Approx(0.02 / 4.0).epsilon(0.03));  // 1/sqrt(2*8)
  REQUIRE(p["h.3.attn.c_proj.weight"].std().item<double>() == Approx(0.02 / 4.0).epsilon(0.05));
  REQUIRE(p["h.3.ln_1.weight"].eq(1).all().item<bool>());
  REQUIRE(p["h.3.mlp.c_fc.bias"].eq(0).all().item<bool>());
}

TEST_CASE("gpt: logits match an independent PyTorch GPT-2 (float64)", "[model]") {
  torch::manual_seed(7);
  GPT m(tiny_cfg());
  m->to(torch::kFloat64);
  {
    // Perturb biases and norms away from their init so that every parameter matters.
    torch::NoGradGuard ng;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.2);
  }
  m->eval();
  auto idx = torch::randint(0, 37, {2, 12}, torch::kLong);
  auto logits = m->forward(idx);  // (2, 12, 37)
  REQUIRE(logits.sizes() == torch::IntArrayRef({2, 12, 37}));

  TempDir t;
  c10::Dict<std::string, torch::Tensor> d;
  for (auto& kv : m->named_parameters()) d.insert(kv.key(), kv.value().detach());
  d.insert("idx", idx);
  d.insert("cfg", torch::tensor({2, 4}, torch::kLong));
  auto bytes = torch::pickle_save(d);
  std::ofstream(t / "in.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto r = codex::test::run_shell("/usr/bin/python3 " + std::string(CODEX_TEST_DIR) + "/model/gpt_golden.py " +
                                  (t / "in.pt").string() + " " + (t / "out.pt").string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto raw = codex::read_file(t / "out.pt");
  auto out = torch::pickle_load(std::vector<char>(raw.begin(), raw.end())).toGenericDict();
  auto want = out.at("logits").toTensor();
  REQUIRE((logits - want).abs().max().item<double>() < 1e-9);
  auto loss = torch::nn::functional::cross_entropy(logits.slice(1, 0, 11).reshape({-1, 37}), idx.slice(1, 1).reshape(-1));
  REQUIRE(loss.item<double>() == Approx(out.at("loss").toTensor().item<double>()).epsilon(1e-10));
}

TEST_CASE("gpt: KV-cache decoding equals the full forward, padding mask isolates pad keys", "[model]") {
  torch::manual_seed(11);
  GPT m(tiny_cfg());
  m->eval();
  torch::NoGradGuard ng;
  auto idx = torch::randint(0, 37, {2, 10}, torch::kLong);
  auto full = m->hidden(idx);  // (2, 10, 16)
  KVCache cache;
  auto a = m->hidden(idx.slice(1, 0, 6), &cache);
  REQUIRE(cache.length() == 6);
  auto b = m->hidden(idx.slice(1, 6, 7), &cache);
  auto c = m->hidden(idx.slice(1, 7, 10), &cache);
  REQUIRE(cache.length() == 10);
  auto inc = torch::cat({a, b, c}, 1);
  REQUIRE((inc - full).abs().max().item<double>() < 1e-5);

  // A sequence left-padded by 3 (garbage pad tokens) with the mask gives, at its real tokens, the
  // hidden states of the sequence alone: positions count real tokens only (0..6), pad keys unseen.
  auto real = idx.slice(0, 0, 1).slice(1, 0, 7);                                        // (1, 7)
  auto padded = torch::cat({torch::full({1, 3}, 5, torch::kLong), real}, 1);              // (1, 10)
  auto mask = torch::ones({1, 10}, torch::kBool);
  mask.slice(1, 0, 3).fill_(false);
  auto hp = m->hidden(padded, nullptr, mask).slice(1, 3);
  // Reference: built by hand from the blocks, the same tokens with no padding at all.
  auto x = m->wte(real) + m->wpe(torch::arange(0, 7, torch::kLong));
  for (auto& blk : m->blocks) x = blk->forward(x, nullptr, nullptr, {});
  auto want = m->ln_f(x);
  REQUIRE((hp - want).abs().max().item<double>() < 1e-5);
  // Explicit position_ids give the same.
  auto pos = torch::cat({torch::zeros({1, 3}, torch::kLong), torch::arange(0, 7, torch::kLong).unsqueeze(0)}, 1);
  REQUIRE((m->hidden(padded, nullptr, mask, pos).slice(1, 3) - want).abs().max().item<double>() < 1e-6);
}

TEST_CASE("gpt: scalar heads are registered on demand and read per position", "[model]") {
  GPT m(tiny_cfg());
  const auto trunk = m->named_parameters().size();
  m->add_scalar_head("value_head");
  REQUIRE(m->named_parameters().size() == trunk + 2);
  REQUIRE(m->head_names() == std::vector<std::string>{"lm", "value_head"});
  REQUIRE(is_head_parameter("value_head.weight"));
  REQUIRE_FALSE(is_head_parameter("h.0.ln_1.weight"));
  auto idx = torch::randint(0, 37, {2, 5}, torch::kLong);
  auto h = m->hidden(idx);
  auto v = m->scalar("value_head", h);  // (2, 5)
  REQUIRE(v.sizes() == torch::IntArrayRef({2, 5}));
  auto& lin = m->scalar_heads.at("value_head");
  auto want = torch::matmul(h, lin->weight.squeeze(0)) + lin->bias;
  REQUIRE((v - want).abs().max().item<double>() < 1e-6);
  REQUIRE_THROWS(m->scalar("reward_head", h));
}

TEST_CASE("gpt: positions beyond block_size are refused", "[model]") {
  GPT m(tiny_cfg());
  REQUIRE_THROWS_WITH(m->hidden(torch::zeros({1, 13}, torch::kLong)), Catch::Contains("block_size"));
}
