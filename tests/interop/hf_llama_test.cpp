// Hugging Face Llama / Qwen2 folders (interop/hf_llama.h): names both ways, index.json shards,
// bf16 weights, bit-identical round trips, refusals of configs our blocks do not compute.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "interop/hf.h"
#include "interop/hf_llama.h"
#include "interop/safetensors.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;

namespace {
GPTConfig qwen_like(bool tied) {
  GPTConfig c;
  c.arch = "llama";
  c.vocab_size = 29;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 16;
  c.intermediate_size = 24;
  c.block_size = 64;
  c.rope_theta = 1e6;
  c.qkv_bias = true;
  c.tie_embeddings = tied;
  return c;
}

void write_folder(const fs::path& dir, GPT& m, bool bf16_shards) {
  fs::create_directories(dir);
  write_file_atomic(dir / "config.json", interop::llama_hf_config(m->cfg).dump(2));
  auto sd = interop::llama_hf_state_dict(m);
  if (!bf16_shards) {
    safetensors::save((dir / "model.safetensors").string(), sd);
    return;
  }
  // Two bf16 shards: the first half of the tensors in one file, the rest in the other.
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  nlohmann::json map;
  for (size_t i = 0; i < sd.size(); ++i) {
    auto& dst = i < sd.size() / 2 ? a : b;
    dst.emplace_back(sd[i].first, sd[i].second.to(torch::kBFloat16));
    map[sd[i].first] = i < sd.size() / 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  safetensors::save((dir / "model-00001-of-00002.safetensors").string(), a);
  safetensors::save((dir / "model-00002-of-00002.safetensors").string(), b);
  write_file_atomic(dir / "model.safetensors.index.json", nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump());
}
}  // namespace

TEST_CASE("hf llama: names map to HF's Llama / Qwen2 names", "[interop]") {
  REQUIRE(interop::llama_hf_name("wte.weight") == "model.embed_tokens.weight");
  REQUIRE(interop::llama_hf_name("h.11.ln_1.weight") == "model.layers.11.input_layernorm.weight");
  REQUIRE(interop::llama_hf_name("h.0.attn.k_proj.bias") == "model.layers.0.self_attn.k_proj.bias");
  REQUIRE(interop::llama_hf_name("h.3.ln_2.weight") == "model.layers.3.post_attention_layernorm.weight");
  REQUIRE(interop::llama_hf_name("h.3.mlp.down_proj.weight") == "model.layers.3.mlp.down_proj.weight");
  REQUIRE(interop::llama_hf_name("ln_f.weight") == "model.norm.weight");
  REQUIRE(interop::llama_hf_name("lm_head.weight") == "lm_head.weight");
  auto j = interop::llama_hf_config(qwen_like(true));
  REQUIRE(j["model_type"] == "qwen2");
  REQUIRE(j["num_key_value_heads"] == 2);
  REQUIRE(j["intermediate_size"] == 24);
  REQUIRE(j["tie_word_embeddings"] == true);
}

TEST_CASE("hf llama: an exported folder re-imports bit-identically (tied and untied)", "[interop]") {
  for (bool tied : {true, false}) {
    torch::manual_seed(tied ? 1 : 2);
    GPT m(qwen_like(tied));
    TempDir t;
    write_folder(t / "hf", m, false);
    GPT back = interop::load_hf_dir((t / "hf").string());
    REQUIRE(back->cfg.llama());
    REQUIRE(back->cfg.kv_heads() == 2);
    REQUIRE(back->cfg.tie_embeddings == tied);
    auto want = m->named_parameters();
    auto got = back->named_parameters();
    REQUIRE(got.size() == want.size());
    for (auto& kv : want) REQUIRE(torch::equal(*got.find(kv.key()), kv.value()));
    // The same function.
    auto idx = torch::randint(0, 29, {2, 7}, torch::kLong);
    torch::NoGradGuard ng;
    m->eval();
    REQUIRE(torch::equal(m->lm_logits(m->hidden(idx)), back->lm_logits(back->hidden(idx))));
  }
}

TEST_CASE("hf llama: bf16 weights in index.json shards load into float32", "[interop]") {
  torch::manual_seed(3);
  GPT m(qwen_like(false));
  TempDir t;
  write_folder(t / "hf", m, true);
  GPT back = interop::load_hf_dir((t / "hf").string());
  for (auto& kv : m->named_parameters()) {
    auto got = *back->named_parameters().find(kv.key());
    REQUIRE(got.dtype() == torch::kFloat32);
    REQUIRE(torch::equal(got, kv.value().to(torch::kBFloat16).to(torch::kFloat32)));  // bf16 rounding only
  }
  // A shard named by the index but absent: one line naming it.
  fs::remove(t / "hf" / "model-00002-of-00002.safetensors");
  REQUIRE_THROWS_WITH(interop::load_hf_dir((t / "hf").string()), Catch::Contains("model-00002-of-00002.safetensors"));
}

TEST_CASE("hf llama: configs our blocks do not compute are refused", "[interop]") {
  auto base = interop::llama_hf_config(qwen_like(true));
  base["model_type"] = "llama";
  base["attention_bias"] = false;
  REQUIRE_NOTHROW(interop::llama_config_from_hf(base, "c.json"));
  auto refused = [&](const char* key, nlohmann::json v, const char* says) {
    auto j = base;
    j[key] = v;
    REQUIRE_THROWS_WITH(interop::llama_config_from_hf(j, "c.json"), Catch::Contains(says));
  };
  refused("rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}, "rope_scaling");
  refused("attention_bias", true, "o_proj");
  refused("hidden_act", "gelu", "silu");
  refused("num_key_value_heads", 3, "num_key_value_heads");
  refused("head_dim", 8, "head_dim");
  refused("mlp_bias", true, "mlp_bias");
  // Qwen2 always has q/k/v biases.
  auto q = base;
  q["model_type"] = "qwen2";
  q.erase("attention_bias");
  REQUIRE(interop::llama_config_from_hf(q, "c.json").qkv_bias);
}
