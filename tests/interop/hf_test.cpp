// `import hf` / `export hf` against a golden GPT-2 written by tests/interop/golden_gpt2.py (plain
// PyTorch, float64 forward): the C++ model must reproduce its logits, and export must write
// HF's names, shapes and orientation bit-exactly.
#include "interop/hf.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "helpers.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

using namespace codex;
namespace fs = std::filesystem;

namespace {

std::string golden_dir() { return std::string(CODEX_TEST_DIR) + "/interop/golden"; }

// A small tokenizer (fewer ids than the golden model's 320), trained once per test process.
std::string tiny_tokenizer() {
  static test::TempDir dir;
  static std::string path = [] {
    std::string src;
    for (int i = 0; i < 200; ++i)
      src += "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + " + 1\n\n";
    test::write_text(dir / "corpus.py", src);
    Config cfg = load_config("", {"tokenizer.vocab_size=300", "tokenizer.input=[" + (dir / "corpus.py").string() + "]"});
    auto p = (dir / "tokenizer.model").string();
    train_tokenizer(cfg, p);
    return p;
  }();
  return path;
}

// Max |logits - golden| over the golden input, computed in float64.
double golden_error(GPT& model) {
  auto ref = safetensors::load(golden_dir() + "/logits.safetensors");
  auto ids = *ref.find("input_ids");   // (B, T) int64
  auto want = *ref.find("logits");     // (B, T, V) float64
  model->eval();
  torch::NoGradGuard ng;
  auto got = model->forward(ids).to(torch::kFloat64);
  REQUIRE(got.sizes() == want.sizes());
  return (got - want).abs().max().item<double>();
}

bool is_buffer(const std::string& n) {
  return n.find(".attn.bias") != std::string::npos || n.find(".attn.masked_bias") != std::string::npos;
}

std::string q(const std::string& s) { return test::shell_quote(s); }

}  // namespace

TEST_CASE("HF GPT-2 weights reproduce the PyTorch golden logits", "[interop]") {
  GPT model = interop::load_hf_dir(golden_dir());
  REQUIRE(model->cfg.vocab_size == 320);
  REQUIRE(model->cfg.n_layer == 2);
  REQUIRE(model->cfg.block_size == 32);
  double err = golden_error(model);
  INFO("max |logits - golden| = " << err);
  REQUIRE(err <= 1e-5);
  // The golden logits are not trivially small: the match above means something.
  auto ref = safetensors::load(golden_dir() + "/logits.safetensors");
  REQUIRE(ref.find("logits")->std().item<double>() > 1.0);
}

TEST_CASE("import hf writes a checkpoint that reproduces the golden logits", "[interop]") {
  test::TempDir t;
  auto r = test::run_cli("import hf --in " + q(golden_dir()) + " --out " + q((t / "ckpt").string()) + " --tokenizer " +
                         q(tiny_tokenizer()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto lm = load_model((t / "ckpt").string());
  double err = golden_error(lm.model);
  INFO("max |logits - golden| = " << err);
  REQUIRE(err <= 1e-5);
  REQUIRE(lm.config.model.n_embd == 48);
  REQUIRE(test::read_text(lm.tokenizer_path) == test::read_text(tiny_tokenizer()));
}

TEST_CASE("export hf matches HF's layout and round-trips bit-exactly", "[interop]") {
  test::TempDir t;
  auto ckpt = (t / "ckpt").string(), out = (t / "hf").string(), ckpt2 = (t / "ckpt2").string();
  REQUIRE(test::run_cli("import hf --in " + q(golden_dir()) + " --out " + q(ckpt) + " --tokenizer " + q(tiny_tokenizer()))
              .code == 0);
  auto r = test::run_cli("export hf --checkpoint " + q(ckpt) + " --out " + q(out));
  INFO(r.err);
  REQUIRE(r.code == 0);

  // Same names, shapes, dtype and bits as the file PyTorch wrote (minus the HF buffers).
  auto golden = safetensors::load(golden_dir() + "/model.safetensors");
  auto exported = safetensors::load(out + "/model.safetensors");
  REQUIRE(exported.metadata.at("format") == "pt");  // transformers refuses files without it
  size_t n_golden = 0;
  for (auto& [name, want] : golden.tensors) {
    if (is_buffer(name)) continue;
    ++n_golden;
    INFO(name);
    auto* got = exported.find(name);
    REQUIRE(got);
    REQUIRE(got->scalar_type() == torch::kFloat32);
    REQUIRE(got->sizes() == want.sizes());
    REQUIRE(torch::equal(*got, want));
  }
  REQUIRE(exported.tensors.size() == n_golden);  // nothing extra (no lm_head: it is tied)
  REQUIRE(exported.find("transformer.h.1.mlp.c_fc.weight")->sizes() == torch::IntArrayRef({48, 192}));  // (in, out)

  auto cfg = nlohmann::json::parse(test::read_text(out + "/config.json"));
  auto gcfg = nlohmann::json::parse(test::read_text(golden_dir() + "/config.json"));
  for (auto key : {"model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                   "activation_function", "layer_norm_epsilon", "architectures", "tie_word_embeddings"})
    REQUIRE(cfg[key] == gcfg[key]);
  REQUIRE(test::read_text(out + "/tokenizer.model") == test::read_text(tiny_tokenizer()));

  // Re-import (the folder carries its tokenizer now) -> identical parameters.
  r = test::run_cli("import hf --in " + q(out) + " --out " + q(ckpt2));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto a = load_model(ckpt), b = load_model(ckpt2);
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (auto& kv : pa) {
    INFO(kv.key());
    REQUIRE(torch::equal(kv.value(), pb[kv.key()]));
  }

  // A second export over it is refused (the folder stays as it was) unless --force, which
  // replaces the folder whole (a stray file in it goes too) and leaves no temporary behind.
  test::write_text(out + "/stray.txt", "x");
  const std::string before = test::read_text(out + "/model.safetensors");
  r = test::run_cli("export hf --checkpoint " + q(ckpt) + " --out " + q(out));
  REQUIRE(r.code == 2);
  REQUIRE(r.err == "codex-train: error: export hf: --out '" + out + "' already exists; pass --force (or overwrite=true) "
                   "to replace it\n");
  REQUIRE(fs::exists(out + "/stray.txt"));
  r = test::run_cli("export hf --checkpoint " + q(ckpt) + " --out " + q(out) + " --force");
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(!fs::exists(out + "/stray.txt"));
  REQUIRE(test::read_text(out + "/model.safetensors") == before);
  for (auto& e : fs::directory_iterator(t.path)) REQUIRE(e.path().filename().string()[0] != '.');
}

TEST_CASE("import hf accepts unprefixed names, half precision and a tied lm_head", "[interop]") {
  test::TempDir t;
  auto golden = safetensors::load(golden_dir() + "/model.safetensors");
  GPT ref = interop::load_hf_dir(golden_dir());
  fs::copy_file(golden_dir() + "/config.json", t / "config.json");

  std::vector<std::pair<std::string, torch::Tensor>> plain;
  for (auto& [name, w] : golden.tensors)
    if (!is_buffer(name)) plain.emplace_back(name.substr(std::string("transformer.").size()), w);
  plain.emplace_back("lm_head.weight", *golden.find("transformer.wte.weight"));
  safetensors::save((t / "model.safetensors").string(), plain);
  GPT m = interop::load_hf_dir(t.str());
  for (auto& kv : ref->named_parameters()) REQUIRE(torch::equal(kv.value(), m->named_parameters()[kv.key()]));

  std::vector<std::pair<std::string, torch::Tensor>> half;
  for (auto& [name, w] : golden.tensors) half.emplace_back(name, w.is_floating_point() ? w.to(torch::kBFloat16) : w);
  safetensors::save((t / "model.safetensors").string(), half);
  GPT h = interop::load_hf_dir(t.str());
  auto want = golden.find("transformer.h.0.attn.c_attn.weight")->to(torch::kBFloat16).to(torch::kFloat32).t();
  REQUIRE(torch::equal(h->blocks[0]->attn->c_attn->weight, want));
}

TEST_CASE("export hf writes zero biases for a bias-free model", "[interop]") {
  GPTConfig g;
  g.vocab_size = 16, g.n_layer = 1, g.n_head = 2, g.n_embd = 8, g.block_size = 4, g.bias = false;
  GPT m(g);
  auto sd = interop::hf_state_dict(m);
  REQUIRE(sd.size() == 2 + 12 + 2);
  for (auto& [name, t] : sd)
    if (name.find("attn.c_attn.bias") != std::string::npos) REQUIRE(torch::equal(t, torch::zeros({24})));
  // Importing that back gives the same function (a biased model with zero biases).
  safetensors::File f;
  f.tensors = sd;
  GPTConfig gb = g;
  gb.bias = true;
  GPT back(gb);
  interop::load_hf_state_dict(back, f, "mem");
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{1, 5, 7, 3}}, torch::kInt64);
  REQUIRE(torch::allclose(m->forward(ids), back->forward(ids), 1e-6, 1e-6));
}

TEST_CASE("import hf / export hf: bad input exits 2 with one line naming it", "[interop]") {
  test::TempDir t;
  auto tok = tiny_tokenizer();
  auto import_from = [&](const fs::path& dir, const std::string& extra = "") {
    return test::run_cli("import hf --in " + q(dir.string()) + " --out " + q((t / "out").string()) + extra);
  };
  auto expect2 = [](const test::RunResult& r, const std::string& needle) {
    INFO(r.err);
    REQUIRE(r.code == 2);
    REQUIRE(r.err.find(needle) != std::string::npos);
    REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  expect2(import_from(t / "nowhere", " --tokenizer " + q(tok)), "nowhere");
  expect2(import_from(golden_dir()), "--tokenizer");
  expect2(import_from(golden_dir(), " --tokenizer " + q((t / "no.model").string())), "no.model");
  expect2(import_from(t / "nowhere"), "not a folder");  // a missing --in, not a missing tokenizer
  // --out is never written over other files unless --force (it would be replaced whole).
  test::write_text(t / "busy" / "keep.txt", "precious");
  expect2(test::run_cli("import hf --in " + q(golden_dir()) + " --out " + q((t / "busy").string()) + " --tokenizer " +
                        q(tok)),
          "already exists; pass --force");
  REQUIRE(test::read_text(t / "busy" / "keep.txt") == "precious");
  expect2(test::run_cli("export hf --checkpoint " + q((t / "nowhere").string()) + " --out " + q((t / "o").string())),
          "does not exist");

  auto copy_golden = [&](const std::string& name) {
    fs::create_directories(t / name);
    for (auto f : {"config.json", "model.safetensors"})
      fs::copy_file(golden_dir() + "/" + f, t / name / f, fs::copy_options::overwrite_existing);
    return t / name;
  };
  auto d = copy_golden("truncated");
  auto bytes = test::read_text(d / "model.safetensors");
  test::write_text(d / "model.safetensors", bytes.substr(0, bytes.size() - 100));
  expect2(import_from(d, " --tokenizer " + q(tok)), (d / "model.safetensors").string());

  d = copy_golden("wide");
  auto cfg = nlohmann::json::parse(test::read_text(d / "config.json"));
  cfg["n_embd"] = 64;
  test::write_text(d / "config.json", cfg.dump());
  expect2(import_from(d, " --tokenizer " + q(tok)), "wte.weight has shape (320, 48)");

  d = copy_golden("relu");
  cfg["n_embd"] = 48;
  cfg["activation_function"] = "relu";
  test::write_text(d / "config.json", cfg.dump());
  expect2(import_from(d, " --tokenizer " + q(tok)), "activation_function");

  d = copy_golden("notjson");
  test::write_text(d / "config.json", "{");
  expect2(import_from(d, " --tokenizer " + q(tok)), "config.json");

  d = copy_golden("missing");
  auto golden = safetensors::load(golden_dir() + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> some;
  for (auto& [name, w] : golden.tensors)
    if (name != "transformer.h.1.ln_2.bias") some.emplace_back(name, w);
  safetensors::save((d / "model.safetensors").string(), some);
  expect2(import_from(d, " --tokenizer " + q(tok)), "missing tensor transformer.h.1.ln_2.bias");

  expect2(test::run_cli("export hf --checkpoint " + q((t / "nowhere").string()) + " --out " + q((t / "x").string())),
          "nowhere");
}
