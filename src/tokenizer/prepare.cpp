#include "tokenizer/prepare.h"

#include <iostream>
#include <set>
#include <thread>

#include "cli/registry.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {
namespace {

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A uniform number in [0, 1) fixed by the content alone, so a file keeps its split whatever
// else is in the corpus.
double split_key(const std::string& text) {
  return static_cast<double>(mix64(fnv1a64(text.data(), text.size())) >> 11) * 0x1.0p-53;
}

// One split's token stream cut into shards of shard_tokens.
struct SplitWriter {
  fs::path dir;
  std::string split;
  int64_t vocab = 0, shard_tokens = 0;
  std::vector<int32_t> buf;
  int shards = 0;
  int64_t tokens = 0, docs = 0;

  void add(const std::vector<int32_t>& ids, int32_t eot) {
    buf.insert(buf.end(), ids.begin(), ids.end());
    buf.push_back(eot);  // documents are separated by end-of-text
    tokens += static_cast<int64_t>(ids.size()) + 1;
    ++docs;
    while (static_cast<int64_t>(buf.size()) >= shard_tokens) {
      std::vector<int32_t> head(buf.begin(), buf.begin() + shard_tokens);
      buf.erase(buf.begin(), buf.begin() + shard_tokens);
      write(head);
    }
  }
  void finish() {
    if (!buf.empty() || shards == 0) write(buf);  // an empty split still gets one (empty) shard
    buf.clear();
  }
  void write(const std::vector<int32_t>& toks) {
    char name[32];
    std::snprintf(name, sizeof name, "%s_%05d.bin", split.c_str(), shards++);
    write_token_shard((dir / name).string(), toks, vocab);
  }
};

// Where each encoded document goes: val when its split key is below val_fraction, else train;
// the train document with the smallest split key is held back: if no document lands in val by
// its hash (tiny corpora), it becomes the validation set instead of leaving val empty.
struct SplitRouter {
  SplitWriter train, val;
  double val_fraction = 0;
  int32_t eot = 0;
  bool have_held = false;
  double held_key = 2.0;
  std::vector<int32_t> held_ids;

  void add(const std::string& text, std::vector<int32_t>& ids) {
    double key = split_key(text);
    if (key < val_fraction) {
      val.add(ids, eot);
    } else if (key < held_key) {
      if (have_held) train.add(held_ids, eot);
      held_ids = std::move(ids);
      held_key = key;
      have_held = true;
    } else {
      train.add(ids, eot);
    }
  }
  void place_held() {
    if (!have_held) return;
    if (val.docs == 0 && val_fraction > 0 && train.docs > 0) val.add(held_ids, eot);
    else train.add(held_ids, eot);
  }
};

// data.tokenizer, else the tokenizer in run.dir (tokenizer.model or tokenizer.json), else the
// SentencePiece file name there (its "missing" error says how to make one).
std::pair<std::string, std::unique_ptr<Tokenizer>> prepare_tokenizer(const Config& cfg) {
  std::string tok_path = cfg.data.tokenizer;
  if (tok_path.empty()) {
    tok_path = tokenizer_file_in(cfg.run.dir);
    if (tok_path.empty()) tok_path = (fs::path(cfg.run.dir) / kSpmFileName).string();
  }
  try {
    return {tok_path, std::make_unique<Tokenizer>(tok_path)};
  } catch (const UsageError& e) {
    throw UsageError(std::string("data prepare: data.tokenizer: ") + e.what() +
                     " (run `codex-train tokenizer train` with the same run.dir, or set data.tokenizer)");
  }
}

// "rule: count, ..." of the rules that dropped something.
std::string drop_reasons(const nlohmann::json& dj) {
  std::string s;
  for (auto& [k, v] : dj.items())
    if (v.get<int64_t>() > 0) s += (s.empty() ? "" : ", ") + k + ": " + std::to_string(v.get<int64_t>());
  return s;
}

// What reading the corpus kept and dropped (counts by rule, "duplicate", "unreadable", "binary").
struct CorpusCounts {
  int64_t files_in = 0, files_kept = 0, bytes_kept = 0;
  std::map<std::string, int64_t> dropped;
};

// Every document of data.input filtered, deduplicated (content hash and size), encoded in batches
// on `threads` threads and routed to its split, in corpus order.
CorpusCounts route_corpus(const DataConfig& dc, const Tokenizer& tok, int threads, int64_t disk_total,
                          SplitRouter& split) {
  CorpusCounts c;
  std::map<std::string, int64_t>& dropped = c.dropped;
  for (auto& r : filter_rules()) dropped[r] = 0;
  dropped["duplicate"] = 0;
  int64_t &files_in = c.files_in, &files_kept = c.files_kept, &bytes_kept = c.bytes_kept;
  std::set<std::pair<uint64_t, size_t>> seen;  // (content hash, size) of kept files
  std::vector<std::string> batch;  // kept documents waiting to be encoded, in corpus order
  size_t batch_bytes = 0;
  auto flush = [&] {
    auto enc = encode_many(tok, batch, threads);
    for (size_t i = 0; i < batch.size(); ++i) split.add(batch[i], enc[i]);
    batch.clear();
    batch_bytes = 0;
  };

  SkipCounts skipped;
  Progress prog("data prepare", static_cast<double>(disk_total), "bytes");
  double done = 0;
  for_each_document(
      dc.input,
      [&](Document& d) {
        ++files_in;
        std::string rule = filter_document(d.text, dc);
        if (rule.empty() && !seen.insert({fnv1a64(d.text.data(), d.text.size()), d.text.size()}).second)
          rule = "duplicate";
        if (!rule.empty()) {
          ++dropped[rule];
          spdlog::debug("drop {} ({})", d.source, rule);
          return;
        }
        ++files_kept;
        bytes_kept += static_cast<int64_t>(d.text.size());
        batch_bytes += d.text.size();
        batch.push_back(std::move(d.text));
        if (batch_bytes >= (4u << 20) || batch.size() >= 1024) flush();
      },
      skipped,
      [&](int64_t disk) {
        done += static_cast<double>(disk);
        prog.update(done);
      });
  flush();
  prog.finish();
  files_in += skipped.unreadable + skipped.binary;
  dropped["unreadable"] = skipped.unreadable;
  dropped["binary"] = skipped.binary;
  return c;
}

}  // namespace

bool is_val_document(const std::string& text, double val_fraction) { return split_key(text) < val_fraction; }

nlohmann::json prepare_data(const Config& cfg) {
  const DataConfig& dc = cfg.data;
  if (dc.input.empty()) throw UsageError("data prepare: data.input is empty (list dirs, .py or .jsonl[.gz] files)");
  auto tokenizer = prepare_tokenizer(cfg);
  const std::string tok_path = tokenizer.first;
  std::unique_ptr<Tokenizer> tok = std::move(tokenizer.second);
  int64_t disk_total = corpus_disk_bytes(dc.input);  // also checks that every input exists

  // Built aside and renamed into place when complete: a failure or Ctrl-C leaves the previous
  // complete data folder as it was.
  const fs::path final_out = fs::path(cfg.run.dir) / "data";
  check_overwrite(final_out, "data prepare: data folder", cfg.overwrite);
  StagedOutput stage(final_out, StagedOutput::Kind::kDir);
  const fs::path out = stage.path();
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  int threads = static_cast<int>(cfg.run.threads > 0 ? cfg.run.threads : std::min<unsigned>(hw, 8));

  SplitRouter split{{out, "train", tok->vocab_size(), dc.shard_tokens},
                    {out, "val", tok->vocab_size(), dc.shard_tokens},
                    dc.val_fraction,
                    tok->eot_id()};
  SplitWriter &train = split.train, &val = split.val;
  const CorpusCounts counts = route_corpus(dc, *tok, threads, disk_total, split);
  const int64_t files_in = counts.files_in, files_kept = counts.files_kept, bytes_kept = counts.bytes_kept;
  std::map<std::string, int64_t> dropped = counts.dropped;
  split.place_held();

  nlohmann::json dj = nlohmann::json::object();
  for (auto& r : filter_rules()) dj[r] = dropped[r];
  for (auto* r : {"duplicate", "unreadable", "binary"}) dj[r] = dropped[r];
  nlohmann::json stats = {{"files_in", files_in},
                          {"files_kept", files_kept},
                          {"bytes_kept", bytes_kept},
                          {"dropped", dj},
                          {"tokens", {{"train", train.tokens}, {"val", val.tokens}}},
                          {"documents", {{"train", train.docs}, {"val", val.docs}}},
                          {"vocab_size", tok->vocab_size()},
                          {"eot_id", tok->eot_id()},
                          {"tokenizer", tok->file_name()}};

  auto why = [&] { return drop_reasons(dj); };
  if (files_in == 0)
    throw UsageError("data prepare: no input files in data.input (directories are searched for *.py; "
                     "JSONL needs a .jsonl or .jsonl.gz name)");
  if (files_kept == 0)
    throw UsageError("data prepare: all " + std::to_string(files_in) + " input files were dropped (" + why() +
                     "); nothing written");
  train.finish();
  val.finish();
  stats["shards"] = {{"train", train.shards}, {"val", val.shards}};
  copy_tokenizer_into(tok_path, out.string());
  write_file_atomic(out / "stats.json", stats.dump(2) + "\n");
  stage.commit();
  spdlog::info("data prepare: kept {}/{} files ({} bytes) -> {} train + {} val tokens in {} (dropped: {})", files_kept,
               files_in, bytes_kept, train.tokens, val.tokens, final_out.string(), why().empty() ? "none" : why());
  // The split is by document: a small corpus can put one short file (or none) in val.
  if (val.tokens < 1025)
    spdlog::warn("data prepare: the val split has only {} tokens; `pretrain` needs block_size + 1 of them for "
                 "its val loss (raise data.val_fraction, or train with train.eval_every=0)",
                 val.tokens);
  return stats;
}

namespace cli {
namespace {

Registrar prepare_cmd({"data", "prepare",
                       "corpus -> filtered, deduplicated, tokenized shards in <run.dir>/data + stats.json",
                       {{"input", true, "corpus path (dir, .py, .jsonl[.gz])", "data.input", true},
                        {"tokenizer", true, "tokenizer model", "data.tokenizer"},
                        kForceFlag},
                       false,
                       [](Invocation& inv) {
                         auto stats = prepare_data(inv.config());
                         std::cout << stats.dump() << std::endl;
                         return 0;
                       },
                       {"run.dir", "run.threads", "data.", "overwrite"}});

}  // namespace
}  // namespace cli
}  // namespace codex
