// `tokenizer train | encode | decode | stats`.
#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "cli/registry.h"
#include "data/corpus.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace codex::cli {
namespace {

const FlagSpec kTokFlag{"tokenizer", true,
                        "tokenizer.model, tokenizer.json, or a folder with one (or GPT-2's vocab.json + merges.txt); "
                        "default: the one in <run.dir>"};

std::string model_path(const Invocation& inv) {
  if (inv.has("tokenizer")) return inv.get("tokenizer");
  std::string in_run = tokenizer_file_in(inv.config().run.dir);
  return in_run.empty() ? (fs::path(inv.config().run.dir) / kSpmFileName).string() : in_run;
}

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

int run_train(Invocation& inv) {
  Config cfg = inv.config();
  std::string out = (fs::path(cfg.run.dir) / "tokenizer.model").string();
  // A run's data and checkpoints were made with the tokenizer that is there: replacing it is
  // explicit.
  check_overwrite(out, "tokenizer train: tokenizer", cfg.overwrite);
  train_tokenizer(cfg, out);
  Tokenizer tok(out);
  nlohmann::json j = {{"tokenizer", out}, {"vocab_size", tok.vocab_size()}, {"whitespace_runs", cfg.tokenizer.whitespace_runs},
                      {"eot_id", tok.eot_id()}, {"pad_id", tok.pad_id()}};
  std::cout << j.dump() << std::endl;
  return 0;
}

int run_encode(Invocation& inv) {
  Tokenizer tok(model_path(inv));
  auto ids = tok.encode(read_stdin());
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::cout << line << "\n";
  return 0;
}

int run_decode(Invocation& inv) {
  Tokenizer tok(model_path(inv));
  std::istringstream in(read_stdin());
  std::vector<int32_t> ids;
  std::string w;
  while (in >> w) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(w, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != w.size()) throw UsageError("tokenizer decode: stdin: '" + w + "' is not a token id (expected integers)");
    if (v < 0 || v >= tok.vocab_size())
      throw UsageError("tokenizer decode: stdin: token id " + w + " outside [0, " + std::to_string(tok.vocab_size()) + ")");
    ids.push_back(static_cast<int32_t>(v));
  }
  std::string text = tok.decode(ids);
  std::cout.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cout.flush();
  return 0;
}

int run_stats(Invocation& inv) {
  Tokenizer tok(model_path(inv));
  std::vector<std::string> inputs = inv.all("input");
  inputs.insert(inputs.end(), inv.positional.begin(), inv.positional.end());
  if (inputs.empty()) throw UsageError("tokenizer stats: --input PATH... is required");
  int64_t files = 0, bytes = 0, tokens = 0;
  bool ok = true;
  SkipCounts skipped;
  std::vector<std::string> batch;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto flush = [&] {
    auto enc = encode_many(tok, batch, threads);
    for (size_t i = 0; i < batch.size(); ++i) {
      tokens += static_cast<int64_t>(enc[i].size());
      ok = ok && tok.decode(enc[i]) == batch[i];
    }
    batch.clear();
  };
  for_each_document(
      inputs,
      [&](Document& d) {
        ++files;
        bytes += static_cast<int64_t>(d.text.size());
        batch.push_back(std::move(d.text));
        if (batch.size() >= 64) flush();
      },
      skipped);
  flush();
  if (files == 0) throw UsageError("tokenizer stats: no readable text files in the input");
  if (skipped.unreadable + skipped.binary > 0)
    spdlog::warn("tokenizer stats: skipped {} unreadable and {} binary files", skipped.unreadable, skipped.binary);
  nlohmann::json j = {{"files", files},
                      {"bytes", bytes},
                      {"tokens", tokens},
                      {"tokens_per_byte", bytes ? static_cast<double>(tokens) / static_cast<double>(bytes) : 0.0},
                      {"roundtrip_ok", ok}};
  std::cout << j.dump() << std::endl;
  return ok ? 0 : 1;
}

Registrar train_cmd({"tokenizer", "train",
                     "train the BPE tokenizer -> <run.dir>/tokenizer.model (tokenizer.whitespace_runs=false: plain baseline)",
                     {{"input", true, "corpus path (dir, .py, .jsonl[.gz])", "tokenizer.input", true},
                      {"vocab-size", true, "vocabulary size", "tokenizer.vocab_size"},
                      kForceFlag},
                     false, run_train, {"run.dir", "run.threads", "run.seed", "tokenizer.", "data.input", "overwrite"}});
Registrar encode_cmd({"tokenizer", "encode", "stdin text -> token ids on one line, space separated", {kTokFlag}, false,
                      run_encode, {"run.dir"}});
Registrar decode_cmd({"tokenizer", "decode", "stdin token ids -> text", {kTokFlag}, false, run_decode, {"run.dir"}});
Registrar stats_cmd({"tokenizer", "stats",
                     "token counts and a round-trip check over files: one JSON line",
                     {kTokFlag, {"input", true, "file or directory (recursive *.py); more may follow", "", true}},
                     true, run_stats, {"run.dir"}});

}  // namespace
}  // namespace codex::cli
