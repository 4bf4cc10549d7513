// `tokenizer extend`: whitespace-run tokens added to a byte-level BPE tokenizer the way Codex
// extended GPT-3's (tiktoken's p50k_base = r50k_base + runs of 2..25 spaces at ids 50257..50280),
// and optionally a checkpoint grown to match.
//
// The new tokens take part in BPE (each merges from every split into two tokens, ranked after
// every existing merge), so a run of spaces becomes the fewest long tokens BPE finds, exactly as
// in p50k_base; they are not greedy "added tokens". With --checkpoint, the embedding grows by the
// new rows, each set to the mean of the existing tokens' rows; everything else is copied.
#include <nlohmann/json.hpp>

#include <stdlib.h>

#include <iostream>
#include <optional>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex::cli {
namespace {

std::pair<int64_t, int64_t> parse_runs(const std::string& s) {
  auto bad = [&] {
    return UsageError("--whitespace-runs '" + s + "': expected A..B with 2 <= A <= B <= 1024 (Codex: 2..25)");
  };
  size_t dots = s.find("..");
  if (dots == std::string::npos) throw bad();
  int64_t a = 0, b = 0;
  try {
    size_t ua = 0, ub = 0;
    a = std::stoll(s.substr(0, dots), &ua);
    b = std::stoll(s.substr(dots + 2), &ub);
    if (ua != dots || ub != s.size() - dots - 2) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (a < 2 || b < a || b > 1024) throw bad();
  return {a, b};
}

// The checkpoint's model with an embedding (and untied head) of max(old rows, new vocabulary)
// rows: the old rows copied, the added tokens' rows and any new ones set to the mean of the base
// tokenizer's rows; every other parameter copied.
GPT grown_model(LoadedModel& lm, int64_t new_vocab, int64_t base_vocab, const std::vector<int32_t>& added) {
  GPTConfig g = lm.gpt;
  g.vocab_size = std::max<int64_t>(g.vocab_size, new_vocab);
  torch::manual_seed(0);
  GPT model(g);
  torch::NoGradGuard ng;
  auto src = lm.model->named_parameters();
  for (auto& kv : model->named_parameters()) {
    const torch::Tensor* from = src.find(kv.key());
    if (!from) throw std::runtime_error("tokenizer extend: checkpoint lacks parameter " + kv.key());
    if (kv.key() != "wte.weight" && kv.key() != "lm_head.weight") {  // both (V, C): new rows get the mean
      kv.value().copy_(*from);
      continue;
    }
    const int64_t old_rows = from->size(0);
    kv.value().slice(0, 0, old_rows).copy_(*from);
    auto mean = from->slice(0, 0, base_vocab).mean(0);  // over the base tokenizer's tokens
    for (int32_t id : added) kv.value()[id].copy_(mean);
    if (g.vocab_size > old_rows) kv.value().slice(0, old_rows).copy_(mean.expand({g.vocab_size - old_rows, mean.size(0)}));
  }
  return model;
}

int run_extend(Invocation& inv) {
  const std::string out = inv.require("out");
  auto [lo, hi] = parse_runs(inv.require("whitespace-runs"));
  const std::string ckpt = inv.get("checkpoint");
  if (fs::exists(out) && !fs::is_directory(out)) throw UsageError("tokenizer extend: --out '" + out + "' is a file");
  check_overwrite(out, "tokenizer extend: --out", inv.config().overwrite);
  std::optional<LoadedModel> lm;
  if (!ckpt.empty()) lm = load_model(ckpt, torch::kCPU);
  std::string tok_path = inv.get("tokenizer");
  if (tok_path.empty()) {
    if (!lm) throw UsageError("tokenizer extend: --tokenizer T is required (or --checkpoint C carrying one)");
    if (lm->tokenizer_path.empty()) throw UsageError("tokenizer extend: checkpoint '" + lm->dir + "' has no tokenizer; pass --tokenizer T");
    tok_path = lm->tokenizer_path;
  }
  Tokenizer base(tok_path);
  if (!base.bpe())
    throw UsageError("tokenizer extend: '" + tok_path +
                     "' is a SentencePiece model; whitespace runs are added to byte-level BPE tokenizers (GPT-2's). "
                     "A SentencePiece tokenizer learns them when trained with tokenizer.whitespace_runs=true");
  auto bpe = BpeModel::load(base.path());
  std::vector<std::string> runs;
  for (int64_t n = lo; n <= hi; ++n) runs.emplace_back(static_cast<size_t>(n), ' ');
  auto added = bpe->add_tokens(runs);
  spdlog::info("tokenizer extend: {} whitespace-run tokens added ({} already present), vocabulary {} -> {}", added.size(),
               runs.size() - added.size(), base.vocab_size(), bpe->vocab_size());

  nlohmann::json report = {{"out", out},
                           {"vocab_size", bpe->vocab_size()},
                           {"added", added.size()},
                           {"first_id", added.empty() ? -1 : added.front()},
                           {"last_id", added.empty() ? -1 : added.back()}};
  // Written aside and renamed into place whole: an interrupted command leaves the old output.
  StagedOutput stage(out, StagedOutput::Kind::kDir);
  if (!lm) {
    write_file_atomic(stage.path() / kBpeFileName, bpe->tokenizer_json());
    Tokenizer check((stage.path() / kBpeFileName).string());  // reads back
    stage.commit();
    report["tokenizer"] = (fs::path(out) / kBpeFileName).string();
    std::cout << report.dump() << std::endl;
    return 0;
  }

  // The checkpoint: the same model with an embedding of max(old rows, new vocabulary) rows.
  if (lm->gpt.vocab_size < base.vocab_size())
    throw UsageError("tokenizer extend: the checkpoint's embedding has " + std::to_string(lm->gpt.vocab_size) +
                     " rows, fewer than the tokenizer's " + std::to_string(base.vocab_size()) + " tokens");
  GPT model = grown_model(*lm, bpe->vocab_size(), base.vocab_size(), added);
  const GPTConfig& g = model->cfg;
  Config cfg = lm->config;
  cfg.model.vocab_size = g.vocab_size;
  std::string tmpl = (fs::temp_directory_path() / "codex-extend-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmpl};
  auto tmp_tok = fs::path(tmpl) / kBpeFileName;
  write_file_atomic(tmp_tok, bpe->tokenizer_json());
  save_model_checkpoint(stage.path().string(), model, cfg, tmp_tok.string());
  stage.commit();
  report["checkpoint"] = out;
  report["embedding_rows"] = g.vocab_size;
  std::cout << report.dump() << std::endl;
  return 0;
}

Registrar extend_cmd({"tokenizer", "extend",
                      "add whitespace-run tokens to a byte-level BPE tokenizer as Codex did (GPT-2 + 2..25 = p50k_base); "
                      "with --checkpoint, also grow its embedding (new rows = mean row) into a checkpoint at --out",
                      {{"tokenizer", true, "byte-level BPE tokenizer (tokenizer.json, GPT-2 vocab folder); default: the checkpoint's"},
                       {"whitespace-runs", true, "A..B: add tokens for runs of A to B spaces (Codex: 2..25)"},
                       {"checkpoint", true, "checkpoint whose embedding grows to the new vocabulary"},
                       {"out", true, "output folder: tokenizer.json, or the new checkpoint with --checkpoint"},
                       kForceFlag},
                      false, run_extend, {"overwrite"}});

}  // namespace
}  // namespace codex::cli
