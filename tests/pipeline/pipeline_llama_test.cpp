// The tiny pipeline on the Llama / Qwen2 block family (model.arch=llama): every stage (tokenizer,
// data, pretrain, SFT, preferences, reward model, PPO, evaluation) runs unchanged on it, and its
// checkpoints say what they are.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "tokenizer/tiny_tokenizer.h"
#include "util/fs.h"

using codex::test::read_text;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("pipeline: every stage end to end on model.arch=llama (GQA, Qwen2 biases, untied head)",
          "[pipeline][model]") {
  TempDir t;
  for (int i = 0; i < 6; ++i)
    codex::test::write_text(t / "corpus" / ("m" + std::to_string(i) + ".py"), codex::test::synthetic_python(40, 300 + i));
  const std::string cmd = "pipeline --corpus " + (t / "corpus").string() + " --output-dir " + (t / "o").string() +
                          " --config " + std::string(CODEX_SOURCE_DIR) + "/configs/pipeline/tiny.yaml" +
                          " model.arch=llama model.n_head=4 model.n_kv_head=2 model.intermediate_size=64" +
                          " model.qkv_bias=true model.tie_embeddings=false";
  auto r = run_cli(cmd);
  INFO(r.err);
  REQUIRE(r.code == 0);
  for (auto s : {"03-pretrain", "05-sft", "07-reward", "08-ppo", "09-eval"}) REQUIRE(fs::exists(t / "o" / s / "DONE"));
  auto summary = json::parse(read_text(t / "o" / "summary.json"));
  for (auto m : {"M0", "M1", "M2"}) REQUIRE(summary["models"][m]["practice_heldout"].contains("pass@1"));
  // The PPO stage's model is a llama: its checkpoint records the family, and an HF export of it is
  // a Qwen2 folder.
  auto exported = run_cli("export hf --checkpoint " + (t / "o" / "08-ppo").string() + " --out " + (t / "hf").string());
  INFO(exported.err);
  REQUIRE(exported.code == 0);
  auto hf = json::parse(read_text(t / "hf" / "config.json"));
  CHECK(hf["model_type"] == "qwen2");
  CHECK(hf["num_key_value_heads"] == 2);
  CHECK(hf["tie_word_embeddings"] == false);
  auto back = run_cli("import hf --in " + (t / "hf").string() + " --out " + (t / "ck").string());
  INFO(back.err);
  REQUIRE(back.code == 0);
}
