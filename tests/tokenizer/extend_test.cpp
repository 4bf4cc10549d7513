// `tokenizer extend`: GPT-2 + whitespace runs 2..25 = tiktoken's p50k_base (Codex), and the
// start-from-GPT path: import hf -> tokenizer extend --checkpoint -> pretrain train.init_from.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint.h"
#include "helpers.h"
#include "interop/hf.h"
#include "interop/hf_tokenizer.h"
#include "interop/safetensors.h"
#include "tokenizer/bpe_ref.h"
#include "tokenizer/tiny_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "train/finetune_fixture.h"
#include "util/fs.h"

#include <sstream>

using namespace codex;
namespace fs = std::filesystem;

namespace {

std::string q(const std::string& s) { return test::shell_quote(s); }

std::string extend_p50k(const fs::path& out) {
  auto r = test::run_cli("tokenizer extend --tokenizer " + q(test::gpt2_files()) + " --whitespace-runs 2..25 --out " +
                         q(out.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["added"] == 24);
  REQUIRE(j["first_id"] == 50257);
  REQUIRE(j["last_id"] == 50280);
  REQUIRE(j["vocab_size"] == 50281);
  return (out / "tokenizer.json").string();
}

// A small random GPT-2 in Hugging Face's layout, with GPT-2's real tokenizer files.
fs::path make_gpt2_folder(const fs::path& root) {
  GPTConfig g;
  g.vocab_size = 50257;
  g.n_layer = 1;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 32;
  g.bias = true;
  torch::manual_seed(3);
  GPT model(g);
  auto hf = root / "gpt2";
  fs::create_directories(hf);
  safetensors::save((hf / "model.safetensors").string(), interop::hf_state_dict(model), {{"format", "pt"}});
  write_file_atomic(hf / "config.json", interop::hf_config(g).dump(2));
  write_file_atomic(hf / "vocab.json", read_file(test::gpt2_files() + "/encoder.json"));
  write_file_atomic(hf / "merges.txt", read_file(test::gpt2_files() + "/vocab.bpe"));
  return hf;
}

// @huggingface/tokenizers' ids for each file, from an exported folder's tokenizer.json.
std::vector<std::vector<int32_t>> hf_js_ids(const fs::path& folder, const std::vector<std::string>& files,
                                            const fs::path& scratch) {
  return test::node_ids("hf_ids.js", folder.string(), files, scratch);
}

}  // namespace

TEST_CASE("tokenizer extend: GPT-2 + runs of 2..25 spaces gives tiktoken p50k_base ids", "[tokenizer][bpe]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  Tokenizer tok(extend_p50k(t / "p50k"));
  REQUIRE(tok.vocab_size() == 50281);
  REQUIRE(tok.eot_id() == 50256);
  for (int n = 2; n <= 25; ++n) REQUIRE(tok.token_bytes(50255 + n) == std::string(static_cast<size_t>(n), ' '));
  auto files = test::stdlib_subset();
  auto inputs = test::odd_bpe_inputs();
  auto odd = test::write_inputs(t / "in", inputs);
  files.insert(files.end(), odd.begin(), odd.end());
  auto ref = test::tiktoken_ids("p50k_base", files, t.path);
  int64_t r50k = 0, p50k = 0;
  Tokenizer gpt2(test::gpt2_files());
  for (size_t i = 0; i < files.size(); ++i) {
    std::string text = test::read_text(files[i]);
    auto ids = tok.encode(text);
    INFO(files[i]);
    REQUIRE(ids == ref[i]);
    REQUIRE(tok.decode(ids) == text);
    p50k += static_cast<int64_t>(ids.size());
    r50k += static_cast<int64_t>(gpt2.encode(text).size());
  }
  // Codex's point: whitespace runs save tokens on code (numpy: 29.9%; here about as much).
  INFO("r50k " << r50k << " p50k " << p50k);
  REQUIRE(p50k * 100 < r50k * 85);
  // Extending twice adds nothing new.
  auto r = test::run_cli("tokenizer extend --tokenizer " + q((t / "p50k").string()) + " --whitespace-runs 2..25 --out " +
                         q((t / "again").string()));
  REQUIRE(r.code == 0);
  REQUIRE(nlohmann::json::parse(r.out)["added"] == 0);
}

TEST_CASE("tokenizer extend: bad arguments exit 2 with one line", "[tokenizer][bpe]") {
  test::TempDir t;
  auto err = [&](const std::string& args) {
    auto r = test::run_cli("tokenizer extend " + args);
    INFO(args << "\n" << r.err);
    REQUIRE(r.code == 2);
    REQUIRE(r.err.find("codex-train: error:") != std::string::npos);
    return r.err;
  };
  REQUIRE(err("--whitespace-runs 2..25 --out " + q((t / "o").string())).find("--tokenizer") != std::string::npos);
  for (auto runs : {"1..25", "25..2", "2-25", "x..y", "2..5000"})
    REQUIRE(err("--tokenizer /nonexistent --whitespace-runs " + std::string(runs) + " --out " + q((t / "o").string()))
                .find("--whitespace-runs") != std::string::npos);
  REQUIRE(err("--tokenizer " + q((t / "missing.json").string()) + " --whitespace-runs 2..3 --out " + q((t / "o").string()))
              .find("does not exist") != std::string::npos);
}

TEST_CASE("start from GPT: import hf (GPT-2 tokenizer files) -> tokenizer extend --checkpoint -> pretrain init_from",
          "[tokenizer][bpe][interop]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  auto hf = make_gpt2_folder(t.path);
  auto c1 = t / "c1", c2 = t / "c2";
  auto r = test::run_cli("import hf --in " + q(hf.string()) + " --out " + q(c1.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(fs::exists(c1 / "tokenizer.json"));
  r = test::run_cli("tokenizer extend --checkpoint " + q(c1.string()) + " --whitespace-runs 2..25 --out " + q(c2.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(nlohmann::json::parse(r.out)["embedding_rows"] == 50281);

  auto a = load_model(c1.string()), b = load_model(c2.string());
  REQUIRE(b.gpt.vocab_size == 50281);
  REQUIRE(b.tokenizer_path == (fs::canonical(c2) / "tokenizer.json").string());
  {
    torch::NoGradGuard ng;
    auto wa = a.model->wte->weight, wb = b.model->wte->weight;
    REQUIRE(torch::equal(wb.slice(0, 0, 50257), wa));
    auto mean = wa.mean(0);
    for (int64_t id = 50257; id < 50281; ++id) REQUIRE(torch::allclose(wb[id], mean));
    auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
    for (auto& kv : pa)
      if (kv.key() != "wte.weight") REQUIRE(torch::equal(kv.value(), pb[kv.key()]));
  }
  // Existing tokens keep their logits: the old rows are unchanged (position 0, same prompt).
  Tokenizer tok(b.tokenizer_path);
  REQUIRE(tok.vocab_size() == 50281);

  // Code prepared with the extended tokenizer, then pretraining continues from the grown checkpoint.
  fs::create_directories(t / "src");
  for (int i = 0; i < 8; ++i)
    test::write_text(t / "src" / ("m" + std::to_string(i) + ".py"),
                     "def f" + std::to_string(i) + "(x):\n        if x:\n            return x * " + std::to_string(i) +
                         "\n        return 0\n\n\nclass K" + std::to_string(i) + ":\n    pass\n");
  auto run = t / "run";
  r = test::run_cli("data prepare --input " + q((t / "src").string()) + " --tokenizer " + q(c2.string()) +
                    " run.dir=" + q(run.string()) + " data.val_fraction=0.3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = test::run_cli("pretrain --config " + std::string(CODEX_SOURCE_DIR) + "/configs/pretrain/tiny.yaml train.data=" +
                    q((run / "data").string()) + " run.dir=" + q((t / "train").string()) + " train.init_from=" +
                    q(c2.string()) +
                    " run.threads=1 model.n_layer=1 model.n_head=2 model.n_embd=16 model.block_size=32"
                    " model.vocab_size=50281 train.batch_size=2 train.max_steps=3 train.eval_every=0 train.eval_batches=1");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto trained = load_model((t / "train").string());
  REQUIRE(trained.gpt.vocab_size == 50281);
  REQUIRE(fs::path(trained.tokenizer_path).filename() == "tokenizer.json");
}

TEST_CASE("export hf: tokenizer.json, vocab.json/merges.txt and configs that Hugging Face's tokenizer reads",
          "[tokenizer][bpe][interop]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  auto hf = make_gpt2_folder(t.path);
  auto c1 = t / "c1", c2 = t / "c2";
  REQUIRE(test::run_cli("import hf --in " + q(hf.string()) + " --out " + q(c1.string())).code == 0);
  REQUIRE(test::run_cli("tokenizer extend --checkpoint " + q(c1.string()) + " --whitespace-runs 2..25 --out " +
                        q(c2.string())).code == 0);
  auto files = test::stdlib_subset();
  files.resize(std::min<size_t>(files.size(), 40));
  for (auto* name : {"c1", "c2"}) {
    auto out = t / (std::string("hf_") + name);
    auto r = test::run_cli("export hf --checkpoint " + q((t / name).string()) + " --out " + q(out.string()));
    INFO(r.err);
    REQUIRE(r.code == 0);
    for (auto* f : {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "generation_config.json"})
      REQUIRE(fs::exists(out / f));
    auto cfg = nlohmann::json::parse(test::read_text(out / "config.json"));
    REQUIRE(cfg["bos_token_id"] == 50256);
    REQUIRE(cfg["eos_token_id"] == 50256);
    REQUIRE(nlohmann::json::parse(test::read_text(out / "generation_config.json"))["eos_token_id"] == 50256);
    // The exported folder re-imports with its own tokenizer.
    REQUIRE(test::run_cli("import hf --in " + q(out.string()) + " --out " + q((t / (std::string("re_") + name)).string()))
                .code == 0);
    Tokenizer ours((t / name).string());
    auto ref = hf_js_ids(out, files, t.path);
    for (size_t i = 0; i < files.size(); ++i) {
      INFO(name << " " << files[i]);
      REQUIRE(ours.encode(test::read_text(files[i])) == ref[i]);
    }
  }
}

TEST_CASE("export hf: our SentencePiece tokenizers as a tokenizer.json Hugging Face reads, same ids",
          "[tokenizer][interop]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  const std::string ck = test::make_lm_checkpoint(t.path);  // a 400-piece whitespace-run tokenizer
  auto out = t / "hf";
  auto r = test::run_cli("export hf --checkpoint " + q(ck) + " --out " + q(out.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(fs::exists(out / "tokenizer.json"));
  REQUIRE(fs::exists(out / "tokenizer.model"));  // ours too: `import hf` reads it first
  // Its training corpus (many merges, whitespace runs, newlines) and standard-library files (mostly
  // byte fallback for this small vocabulary, non-ASCII text included).
  std::vector<std::string> files;
  for (int i = 0; i < 4; ++i) files.push_back((t / "corpus" / ("m" + std::to_string(i) + ".py")).string());
  auto lib = test::stdlib_subset();
  files.insert(files.end(), lib.begin(), lib.begin() + std::min<std::ptrdiff_t>(20, static_cast<std::ptrdiff_t>(lib.size())));
  auto check = [&](const std::string& tok_path, const fs::path& folder) {
    Tokenizer ours(tok_path);
    REQUIRE(ours.kind() == Tokenizer::Kind::kSentencePiece);
    auto ref = hf_js_ids(folder, files, t.path);
    for (size_t i = 0; i < files.size(); ++i) {
      INFO(tok_path << " " << files[i]);
      REQUIRE(ours.encode(test::read_text(files[i])) == ref[i]);
    }
  };
  check(ck, out);
  // The plain variant (spaces start words, '\n' a symbol of its own) too.
  const std::string plain = test::train_tiny_tokenizer(t.path, false, 400, "plain");
  fs::create_directories(t / "hf_plain");
  write_file_atomic(t / "hf_plain" / "tokenizer.json", interop::spm_tokenizer_json(plain));
  check(plain, t / "hf_plain");
}
