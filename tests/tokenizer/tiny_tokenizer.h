#pragma once
// A small synthetic Python corpus and a tokenizer trained on it in well under a second, for
// tests that need a real tokenizer model.
#include <filesystem>
#include <random>
#include <string>

#include "config/config.h"
#include "helpers.h"
#include "tokenizer/tokenizer.h"

namespace codex::test {

// Deterministic Python-like code: classes, nested blocks, comments, strings.
inline std::string synthetic_python(int n_funcs, uint32_t seed) {
  std::mt19937 rng(seed);
  const char* names[] = {"value", "count", "items", "result", "index", "total", "name", "data", "node", "key"};
  const char* ops[] = {" + ", " - ", " * ", " // ", " % "};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  std::string s = "import os\nimport sys\n\n\n";
  for (int f = 0; f < n_funcs; ++f) {
    std::string a = names[pick(10)], b = names[pick(10)];
    if (f % 5 == 0) s += "class Thing" + std::to_string(f) + ":\n    \"\"\"A thing.\"\"\"\n\n";
    std::string ind = f % 5 == 0 ? "    " : "";
    s += ind + "def compute_" + a + "_" + std::to_string(f) + "(self, " + a + ", " + b + "=None):\n";
    s += ind + "    # compute the " + a + " from " + b + "\n";
    s += ind + "    if " + b + " is None:\n";
    s += ind + "        " + b + " = []\n";
    s += ind + "    for i in range(len(" + a + ")):\n";
    s += ind + "        if " + a + "[i] > " + std::to_string(pick(100)) + ":\n";
    s += ind + "            " + b + ".append(" + a + "[i]" + ops[pick(5)] + std::to_string(pick(10)) + ")\n";
    s += ind + "        else:\n";
    s += ind + "            continue\n";
    s += ind + "    return " + b + "\n\n";
  }
  return s;
}

// Writes a small corpus under dir/corpus and trains a tokenizer into dir/<name>.model.
inline std::string train_tiny_tokenizer(const std::filesystem::path& dir, bool whitespace_runs = true,
                                        int64_t vocab = 400, const std::string& name = "tok") {
  std::filesystem::path corpus = dir / "corpus";
  if (!std::filesystem::exists(corpus))
    for (int i = 0; i < 4; ++i) write_text(corpus / ("m" + std::to_string(i) + ".py"), synthetic_python(40, 100 + i));
  Config cfg = load_config("", {});
  cfg.tokenizer.input = {corpus.string()};
  cfg.tokenizer.vocab_size = vocab;
  cfg.tokenizer.whitespace_runs = whitespace_runs;
  std::string out = (dir / (name + ".model")).string();
  train_tokenizer(cfg, out);
  return out;
}

}  // namespace codex::test
