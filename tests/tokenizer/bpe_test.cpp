// Byte-level BPE (GPT-2 / tiktoken r50k_base) against npm's tiktoken.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "helpers.h"
#include "tokenizer/bpe.h"
#include "tokenizer/bpe_ref.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
namespace fs = std::filesystem;

namespace {

void require_same(const std::vector<int32_t>& ours, const std::vector<int32_t>& ref, const std::string& what) {
  if (ours == ref) return;
  size_t i = 0;
  while (i < ours.size() && i < ref.size() && ours[i] == ref[i]) ++i;
  INFO(what << ": " << ours.size() << " ids vs tiktoken's " << ref.size() << "; first difference at " << i << ": ours "
            << (i < ours.size() ? std::to_string(ours[i]) : "end") << ", tiktoken "
            << (i < ref.size() ? std::to_string(ref[i]) : "end"));
  FAIL();
}

}  // namespace

TEST_CASE("bpe: GPT-2's files give tiktoken r50k_base ids on standard-library code", "[tokenizer][bpe]") {
  if (!test::npm_ready()) return;
  auto files = test::stdlib_subset();
  if (files.empty()) {
    WARN("SKIPPED: no /usr/lib/python3.11");
    return;
  }
  test::TempDir t;
  Tokenizer tok(test::gpt2_files());
  REQUIRE(tok.kind() == Tokenizer::Kind::kBpe);
  REQUIRE(tok.vocab_size() == 50257);
  REQUIRE(tok.eot_id() == 50256);
  REQUIRE(tok.pad_id() == tok.eot_id());  // GPT-2 has no pad token: documented rule
  auto ref = test::tiktoken_ids("r50k_base", files, t.path);
  int64_t bytes = 0, tokens = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string text = test::read_text(files[i]);
    auto ids = tok.encode(text);
    require_same(ids, ref[i], files[i]);
    REQUIRE(tok.decode(ids) == text);
    bytes += static_cast<int64_t>(text.size());
    tokens += static_cast<int64_t>(ids.size());
  }
  REQUIRE(files.size() > 80);
  REQUIRE(bytes > 1000000);
  // encode_many (threads) gives the same ids as one by one.
  std::vector<std::string> texts;
  for (size_t i = 0; i < 20; ++i) texts.push_back(test::read_text(files[i]));
  auto many = encode_many(tok, texts, 4);
  for (size_t i = 0; i < texts.size(); ++i) REQUIRE(many[i] == ref[i]);
}

TEST_CASE("bpe: odd inputs (invalid UTF-8, whitespace runs, CRLF, non-Latin, eot text) equal tiktoken", "[tokenizer][bpe]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  Tokenizer tok(test::gpt2_files());
  auto inputs = test::odd_bpe_inputs();
  auto files = test::write_inputs(t / "in", inputs);
  auto ref = test::tiktoken_ids("r50k_base", files, t.path);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto ids = tok.encode(inputs[i]);
    require_same(ids, ref[i], "input #" + std::to_string(i) + " (" + std::to_string(inputs[i].size()) + " bytes)");
    REQUIRE(tok.decode(ids) == inputs[i]);
    for (int32_t id : ids) REQUIRE(id != tok.eot_id());  // its spelling is text, never the marker
  }
  // Every byte string round-trips, including random bytes.
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) {
    std::string s;
    int n = static_cast<int>(rng() % 80);
    for (int j = 0; j < n; ++j) s += static_cast<char>(rng() % 4 == 0 ? ' ' : rng() % 256);
    REQUIRE(tok.decode(tok.encode(s)) == s);
  }
}

TEST_CASE("bpe: token bytes, specials and the tokenizer.json written back", "[tokenizer][bpe]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  Tokenizer tok(test::gpt2_files());
  // GPT-2 facts: "hello" = 31373, " world" = 995, "\n" = 198; the first 256 ids are single bytes
  // in the byte alphabet's order ('!' = 0, 'A' = 32).
  REQUIRE(tok.encode("!") == std::vector<int32_t>{0});
  REQUIRE(tok.encode("A") == std::vector<int32_t>{32});
  REQUIRE(tok.encode("hello world") == std::vector<int32_t>{31373, 995});
  REQUIRE(tok.token_bytes(198) == "\n");
  REQUIRE(tok.token_bytes(tok.eot_id()).empty());
  REQUIRE(tok.is_control(tok.eot_id()));
  for (int32_t id = 0; id < tok.vocab_size(); ++id) REQUIRE(tok.decode({id}) == tok.token_bytes(id));
  // The canonical tokenizer.json reads back to the same tokenizer.
  write_file_atomic(t / "tokenizer.json", tok.file_bytes());
  REQUIRE(tok.file_name() == "tokenizer.json");
  Tokenizer back((t / "tokenizer.json").string());
  REQUIRE(back.vocab_size() == tok.vocab_size());
  REQUIRE(back.eot_id() == tok.eot_id());
  for (int32_t id = 0; id < tok.vocab_size(); ++id) REQUIRE(back.token_bytes(id) == tok.token_bytes(id));
  for (const auto& s : test::odd_bpe_inputs()) REQUIRE(back.encode(s) == tok.encode(s));
  // So does a folder with vocab.json + merges.txt (GPT-2's Hugging Face names).
  fs::create_directories(t / "hf");
  write_file_atomic(t / "hf" / "vocab.json", tok.bpe()->vocab_json());
  write_file_atomic(t / "hf" / "merges.txt", tok.bpe()->merges_txt());
  Tokenizer hf((t / "hf").string());
  for (const auto& s : test::odd_bpe_inputs()) REQUIRE(hf.encode(s) == tok.encode(s));
  REQUIRE(tokenizer_file_in((t / "hf").string()) == (t / "hf").string());
}

TEST_CASE("bpe: broken tokenizer files are one clear error", "[tokenizer][bpe]") {
  test::TempDir t;
  auto err = [&](const std::string& name, const std::string& body) {
    test::write_text(t / name, body);
    auto r = test::run_cli("tokenizer encode --tokenizer " + test::shell_quote((t / name).string()), "x");
    INFO(r.err);
    REQUIRE(r.code == 2);
    REQUIRE(r.err.find("codex-train: error:") != std::string::npos);
    return r.err;
  };
  REQUIRE(err("tokenizer.json", "{not json").find("not valid JSON") != std::string::npos);
  REQUIRE(err("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})").find("not BPE") != std::string::npos);
  REQUIRE(err("tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                                   "pre_tokenizer": {"type": "Whitespace"}})")
              .find("ByteLevel") != std::string::npos);
  REQUIRE(err("vocab.json", R"({"a": 0})").find("merges") != std::string::npos);
  fs::create_directories(t / "d");
  nlohmann::json bytes_only;  // all 256 byte tokens, but not "ab", which the merge makes
  for (int b = 0; b < 256; ++b) bytes_only[BpeModel::bytes_to_unicode(std::string(1, static_cast<char>(b)))] = b;
  test::write_text(t / "d" / "vocab.json", bytes_only.dump());
  test::write_text(t / "d" / "merges.txt", "#version: 0.2\na b\n");
  auto r = test::run_cli("tokenizer encode --tokenizer " + test::shell_quote((t / "d").string()), "x");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("not in the vocabulary") != std::string::npos);
  fs::create_directories(t / "empty");
  r = test::run_cli("tokenizer encode --tokenizer " + test::shell_quote((t / "empty").string()), "x");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("has no tokenizer") != std::string::npos);
}

TEST_CASE("bpe: data prepare and checkpoints carry a byte-level BPE tokenizer as tokenizer.json", "[tokenizer][bpe]") {
  if (!test::npm_ready()) return;
  test::TempDir t;
  fs::create_directories(t / "src");
  for (int i = 0; i < 6; ++i)
    test::write_text(t / "src" / ("m" + std::to_string(i) + ".py"),
                     "def f" + std::to_string(i) + "(x):\n    return x * " + std::to_string(i) + "\n\n\nclass K:\n    pass\n");
  auto run = t / "run";
  auto r = test::run_cli("data prepare --input " + test::shell_quote((t / "src").string()) + " --tokenizer " +
                         test::shell_quote(test::gpt2_files()) + " run.dir=" + test::shell_quote(run.string()) +
                         " data.val_fraction=0.3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto stats = nlohmann::json::parse(r.out);
  REQUIRE(stats["vocab_size"] == 50257);
  REQUIRE(stats["eot_id"] == 50256);
  REQUIRE(stats["tokenizer"] == "tokenizer.json");
  REQUIRE(fs::exists(run / "data" / "tokenizer.json"));
  REQUIRE(!fs::exists(run / "data" / "tokenizer.model"));
  REQUIRE(tokenizer_file_in((run / "data").string()) == (run / "data" / "tokenizer.json").string());
  // The copy encodes like the original.
  Tokenizer a(test::gpt2_files()), b((run / "data").string());
  for (const auto& s : test::odd_bpe_inputs()) REQUIRE(a.encode(s) == b.encode(s));
  // `tokenizer stats` on a BPE tokenizer.
  r = test::run_cli("tokenizer stats --tokenizer " + test::shell_quote((run / "data").string()) + " --input " +
                    test::shell_quote((t / "src").string()));
  REQUIRE(r.code == 0);
  REQUIRE(nlohmann::json::parse(r.out)["roundtrip_ok"] == true);
}
