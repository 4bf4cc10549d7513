#include "tokenizer/tokenizer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <cstring>
#include <queue>
#include <thread>
#include <unordered_set>

#include "data/corpus.h"
#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {
namespace {

constexpr uint32_t kSpmSpace = 0x2581;     // SentencePiece's stand-in for ' '
constexpr uint32_t kPlaceholder = 0xE000;  // ours for '\n'

// Length of the well-formed UTF-8 sequence at p (1..4) with its code point in cp, or 0 if the
// bytes are not well-formed UTF-8 (overlong forms, surrogates and > U+10FFFF are rejected).
int utf8_next(const unsigned char* p, size_t n, uint32_t& cp) {
  unsigned char c = p[0];
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < n && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(1)) return 0;
    cp = ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (!cont(1, lo, hi) || !cont(2)) return 0;
    cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (!cont(1, lo, hi) || !cont(2) || !cont(3)) return 0;
    cp = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    return 4;
  }
  return 0;
}

// Bytes SentencePiece cannot carry through unchanged: they are emitted as byte tokens.
// n = 0 means invalid UTF-8 (one byte is taken).
bool must_escape(int n, uint32_t cp) { return n == 0 || cp == kSpmSpace || cp == kPlaceholder || cp == 0; }

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

}  // namespace

Tokenizer::Tokenizer(const std::string& model_path) : path_(model_path) {
  std::error_code ec;
  if (model_path.empty()) throw UsageError("no tokenizer given (empty path)");
  if (fs::is_directory(model_path, ec)) {
    std::string inner = tokenizer_file_in(model_path);
    if (inner.empty())
      throw UsageError("'" + model_path + "': folder has no tokenizer (tokenizer.model, tokenizer.json, or GPT-2's "
                       "vocab.json + merges.txt)");
    if (inner != model_path) path_ = inner;
  }
  if (BpeModel::looks_like(path_)) init_bpe();
  else init_spm();
}

void Tokenizer::init_bpe() {
  bpe_ = BpeModel::load(path_);
  int32_t n = bpe_->vocab_size();
  bytes_.resize(static_cast<size_t>(n));
  control_.assign(static_cast<size_t>(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    bytes_[id] = bpe_->token_bytes(id);
    control_[id] = bpe_->is_special(id) ? 1 : 0;
  }
  for (int b = 0; b < 256; ++b) byte_id_[b] = bpe_->token_id(std::string(1, static_cast<char>(b)));
  // End of text: GPT-2's and Qwen's <|endoftext|>, else Llama 3's <|end_of_text|>.
  for (const char* eot : {kEotPiece, "<|end_of_text|>"})
    if (eot_id_ = bpe_->special_id(eot); eot_id_ >= 0) break;
  if (eot_id_ < 0)
    throw UsageError("'" + path_ + "': no special token " + std::string(kEotPiece) + " or <|end_of_text|> (end of text)");
  pad_id_ = eot_id_;
  for (const char* pad : {kPadPiece, "<|padding|>"})
    if (int32_t id = bpe_->special_id(pad); id >= 0) {
      pad_id_ = id;
      break;
    }
}

void Tokenizer::init_spm() {
  const std::string& model_path = path_;
  spm_ = std::make_unique<SpmModel>(model_path);
  auto bad = [&](const std::string& why) {
    return UsageError("'" + model_path + "' is not a codex tokenizer model: " + why);
  };
  int32_t n = spm_->vocab_size();
  bytes_.resize(static_cast<size_t>(n));
  control_.assign(static_cast<size_t>(n), 0);
  std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
  for (int32_t id = 0; id < n; ++id) {
    int kind = spm_->kind(id);
    std::string piece = spm_->piece(id);
    if (kind == SpmModel::kControl || kind == SpmModel::kUnknown || kind == SpmModel::kUnused) {
      control_[id] = 1;
    } else if (kind == SpmModel::kByte) {
      // "<0xNN>"
      if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0) throw bad("odd byte piece '" + piece + "'");
      int b = std::stoi(piece.substr(3, 2), nullptr, 16);
      byte_id_[b] = id;
      bytes_[id] = std::string(1, static_cast<char>(b));
    } else {
      replace_all(piece, "\xE2\x96\x81", " ");
      replace_all(piece, kNewlinePlaceholder, "\n");
      bytes_[id] = piece;
    }
  }
  for (int b = 0; b < 256; ++b)
    if (byte_id_[b] < 0) throw bad("no byte-fallback pieces (trained without byte_fallback)");
  auto special = [&](const char* piece) {
    int32_t id = spm_->piece_to_id(piece);
    if (id < 0 || id >= n || spm_->piece(id) != piece || !control_[id]) throw bad(std::string("no control token ") + piece);
    return id;
  };
  eot_id_ = special(kEotPiece);
  pad_id_ = special(kPadPiece);
}

Tokenizer::~Tokenizer() = default;

const std::string& Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(bytes_.size()))
    throw std::out_of_range("token id " + std::to_string(id) + " outside [0, " + std::to_string(bytes_.size()) + ")");
  return bytes_[static_cast<size_t>(id)];
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < static_cast<int32_t>(control_.size()) && control_[static_cast<size_t>(id)];
}

void Tokenizer::encode_bytes(const char* p, size_t n, std::vector<int32_t>& out) const {
  for (size_t i = 0; i < n; ++i) out.push_back(byte_id_[static_cast<unsigned char>(p[i])]);
}

// `text` holds only bytes SentencePiece keeps as they are (must_escape is false throughout).
void Tokenizer::encode_clean(const std::string& text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string mapped = text;
  replace_all(mapped, "\n", kNewlinePlaceholder);
  size_t base = out.size();
  spm_->encode(mapped, out);
  // Safety net: the ids must decode to exactly `text`, else the segment goes out as bytes.
  size_t pos = 0;
  bool ok = true;
  for (size_t i = base; i < out.size() && ok; ++i) {
    int32_t id = out[i];
    if (id < 0 || id >= static_cast<int32_t>(bytes_.size()) || control_[static_cast<size_t>(id)]) {
      ok = false;
      break;
    }
    const std::string& b = bytes_[static_cast<size_t>(id)];
    ok = text.compare(pos, b.size(), b) == 0;
    pos += b.size();
  }
  if (ok && pos == text.size()) return;
  out.resize(base);
  encode_bytes(text.data(), text.size(), out);
}

void Tokenizer::encode_append(const std::string& text, std::vector<int32_t>& out) const {
  if (bpe_) {
    bpe_->encode(text.data(), text.size(), out);
    return;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size(), clean_start = 0, i = 0;
  while (i < n) {
    uint32_t cp = 0;
    int len = utf8_next(p + i, n - i, cp);
    if (!must_escape(len, cp)) {
      i += static_cast<size_t>(len);
      continue;
    }
    encode_clean(text.substr(clean_start, i - clean_start), out);
    size_t k = len == 0 ? 1 : static_cast<size_t>(len);
    encode_bytes(text.data() + i, k, out);
    i += k;
    clean_start = i;
  }
  encode_clean(text.substr(clean_start), out);
}

std::string Tokenizer::file_name() const { return bpe_ ? kBpeFileName : kSpmFileName; }

std::string Tokenizer::file_bytes() const { return bpe_ ? bpe_->tokenizer_json() : read_file(path_); }

std::string tokenizer_file_in(const std::string& dir) {
  fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) return "";
  for (const char* name : {kSpmFileName, kBpeFileName})
    if (fs::is_regular_file(d / name, ec)) return (d / name).string();
  if ((fs::is_regular_file(d / "vocab.json", ec) && fs::is_regular_file(d / "merges.txt", ec)) ||
      (fs::is_regular_file(d / "encoder.json", ec) && fs::is_regular_file(d / "vocab.bpe", ec)))
    return d.string();
  return "";
}

std::pair<std::string, std::string> tokenizer_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec) && !BpeModel::looks_like(path)) return {kSpmFileName, read_file(path)};
  Tokenizer t(path);
  return {t.file_name(), t.file_bytes()};
}

std::string copy_tokenizer_into(const std::string& path, const std::string& dir) {
  auto [name, bytes] = tokenizer_file(path);
  fs::path dst = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::equivalent(path, dst, ec)) write_file_atomic(dst, bytes);
  fs::remove(fs::path(dir) / (name == kSpmFileName ? kBpeFileName : kSpmFileName), ec);
  return dst.string();
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 8);
  encode_append(text, out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

std::vector<std::vector<int32_t>> encode_many(const Tokenizer& tok, const std::vector<std::string>& texts,
                                              int threads) {
  std::vector<std::vector<int32_t>> out(texts.size());
  threads = std::max(1, std::min<int>(threads, static_cast<int>(texts.size())));
  if (threads <= 1) {
    for (size_t i = 0; i < texts.size(); ++i) out[i] = tok.encode(texts[i]);
    return out;
  }
  // Texts are handed out one at a time so a long file does not stall a fixed partition.
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  std::exception_ptr err;
  std::mutex err_mu;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      try {
        for (size_t i; (i = next.fetch_add(1)) < texts.size();) out[i] = tok.encode(texts[i]);
      } catch (...) {
        std::lock_guard<std::mutex> g(err_mu);
        err = std::current_exception();
        next = texts.size();
      }
    });
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Training.

namespace {

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer: spreads a hash for sampling
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A deterministic sample of at most `budget` bytes of distinct documents: those with the
// smallest seeded content hash (bottom-k by hash, so memory stays within the budget).
std::vector<std::string> sample_documents(const Config& cfg, const std::vector<std::string>& inputs) {
  using Entry = std::pair<uint64_t, std::string>;
  auto cmp = [](const Entry& a, const Entry& b) { return a.first < b.first; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> heap(cmp);  // max key on top
  std::unordered_set<uint64_t> seen;
  int64_t held = 0, budget = cfg.tokenizer.max_train_bytes;
  int64_t docs = 0, filtered = 0;
  SkipCounts skipped;
  Progress prog("tokenizer: reading corpus", static_cast<double>(corpus_disk_bytes(inputs)), "bytes");
  double done = 0;
  for_each_document(
      inputs,
      [&](Document& d) {
        ++docs;
        if (!filter_document(d.text, cfg.data).empty()) {
          ++filtered;
          return;
        }
        uint64_t h = fnv1a64(d.text.data(), d.text.size());
        if (!seen.insert(h).second) return;
        uint64_t key = mix64(h ^ static_cast<uint64_t>(cfg.run.seed));
        held += static_cast<int64_t>(d.text.size());
        heap.emplace(key, std::move(d.text));
        while (held > budget && !heap.empty()) {
          held -= static_cast<int64_t>(heap.top().second.size());
          heap.pop();
        }
      },
      skipped,
      [&](int64_t disk) {
        done += static_cast<double>(disk);
        prog.update(done);
      });
  prog.finish();
  std::vector<Entry> picked;
  while (!heap.empty()) {
    picked.push_back(std::move(const_cast<Entry&>(heap.top())));
    heap.pop();
  }
  std::reverse(picked.begin(), picked.end());  // ascending key: a fixed order
  std::vector<std::string> out;
  for (auto& e : picked) out.push_back(std::move(e.second));
  spdlog::info("tokenizer: sampled {} of {} documents ({} bytes; {} filtered, {} unreadable, {} binary)", out.size(),
               docs, held, filtered, skipped.unreadable, skipped.binary);
  if (out.empty()) throw UsageError("tokenizer train: no usable documents in the input (all filtered, unreadable or binary)");
  return out;
}

// SentencePiece's training text: one "sentence" per line of the file. With whitespace runs, a
// sentence is a chunk of several source lines whose '\n' became the placeholder, so pieces can
// span a newline and the next line's indentation. The plain baseline sees one source line per
// sentence. Bytes the encoder escapes (must_escape) end a sentence, as they do at encode time.
std::string training_text(const std::vector<std::string>& docs, bool runs, size_t chunk_bytes) {
  std::string out, sentence;
  auto flush = [&] {
    if (!sentence.empty()) {
      out += sentence;
      out += '\n';
      sentence.clear();
    }
  };
  for (const auto& doc : docs) {
    const auto* p = reinterpret_cast<const unsigned char*>(doc.data());
    size_t n = doc.size();
    for (size_t i = 0; i < n;) {
      uint32_t cp = 0;
      int len = utf8_next(p + i, n - i, cp);
      if (must_escape(len, cp)) {
        flush();
        i += len == 0 ? 1 : static_cast<size_t>(len);
        continue;
      }
      if (cp == '\n') {
        if (runs) {
          sentence += kNewlinePlaceholder;
          if (sentence.size() >= chunk_bytes) flush();
        } else {
          flush();
        }
      } else {
        sentence.append(doc, i, static_cast<size_t>(len));
      }
      i += static_cast<size_t>(len);
    }
    flush();
  }
  return out;
}

// Redirects fd 2 while SentencePiece trains: its INFO log ("Added: ... size=N") drives a
// progress line with rate and ETA; warnings and errors are passed through to the real stderr.
class SpmLogWatcher {
 public:
  explicit SpmLogWatcher(int64_t total_pieces) : total_(total_pieces) {
    saved_ = ::dup(STDERR_FILENO);
    if (saved_ < 0 || ::pipe(pipe_) != 0) return;
    tty_ = ::isatty(saved_) == 1;
    std::fflush(stderr);
    ::dup2(pipe_[1], STDERR_FILENO);
    ::close(pipe_[1]);
    start_ = last_ = std::chrono::steady_clock::now();
    reader_ = std::thread([this] { loop(); });
    active_ = true;
  }
  ~SpmLogWatcher() { stop(); }
  void stop() {
    if (!active_) return;
    active_ = false;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);  // closes the pipe's last write end: the reader sees EOF
    reader_.join();
    ::close(pipe_[0]);
    ::close(saved_);
    if (tty_) say("\n");
  }

 private:
  void say(const std::string& s) {
    ssize_t r = ::write(saved_, s.data(), s.size());
    (void)r;
  }
  void line(const std::string& l) {
    size_t at = l.find(" size=");
    if (l.find("Added: freq=") != std::string::npos && at != std::string::npos) {
      int64_t size = std::atoll(l.c_str() + at + 6);
      auto now = std::chrono::steady_clock::now();
      // The rate counts from the first merge: counting pairs before it is not merge work.
      if (first_size_ < 0) {
        first_size_ = size;
        first_ = now;
      }
      double el = std::chrono::duration<double>(now - start_).count();
      double merging = std::chrono::duration<double>(now - first_).count();
      double since = std::chrono::duration<double>(now - last_).count();
      if (since < (tty_ ? 0.2 : 10.0)) return;
      last_ = now;
      double rate = merging > 0 ? static_cast<double>(size - first_size_) / merging : 0;
      double eta = rate > 0 ? static_cast<double>(std::max<int64_t>(0, total_ - size)) / rate : -1;
      char buf[256];
      std::snprintf(buf, sizeof buf, "tokenizer: BPE merges %lld/%lld (%.1f%%) %.1f merges/s elapsed %s ETA %s",
                    static_cast<long long>(size), static_cast<long long>(total_), 100.0 * size / std::max<int64_t>(1, total_),
                    rate, human_duration(el).c_str(), human_duration(eta).c_str());
      if (tty_) say(std::string("\r\033[K") + buf);
      else say(std::string("[") + clock_str() + "] [info] " + buf + "\n");
    } else if (l.find("LOG(WARNING)") != std::string::npos || l.find("LOG(ERROR)") != std::string::npos ||
               l.find("FATAL") != std::string::npos) {
      say(l + "\n");
    }
  }
  static std::string clock_str() {
    std::time_t t = std::time(nullptr);
    char b[16];
    std::strftime(b, sizeof b, "%H:%M:%S", std::localtime(&t));
    return b;
  }
  void loop() {
    std::string buf;
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(pipe_[0], chunk, sizeof chunk)) > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) line(buf.substr(0, nl));
    }
    if (!buf.empty()) line(buf);
  }

  int64_t total_, first_size_ = -1;
  int saved_ = -1, pipe_[2] = {-1, -1};
  bool tty_ = false, active_ = false;
  std::thread reader_;
  std::chrono::steady_clock::time_point start_, last_, first_;
};

}  // namespace

void train_tokenizer(const Config& cfg, const std::string& out_model_path) {
  const auto& tc = cfg.tokenizer;
  std::vector<std::string> inputs = tc.input.empty() ? cfg.data.input : tc.input;
  if (inputs.empty()) throw UsageError("tokenizer train: no input: set tokenizer.input (or data.input) to dirs, .py or .jsonl files");
  auto docs = sample_documents(cfg, inputs);
  // Chunks of ~2 KB keep sentences well under max_sentence_length while letting most
  // newline + indentation pairs fall inside one sentence.
  constexpr size_t kChunk = 2048;
  std::string text = training_text(docs, tc.whitespace_runs, kChunk);
  docs.clear();

  std::string tmpl = (fs::temp_directory_path() / "codex-tok-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  fs::path tmp(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  write_file_atomic(tmp / "train.txt", text);

  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  int64_t threads = cfg.run.threads > 0 ? cfg.run.threads : std::min<int64_t>(hw, 8);
  std::string flags = "--input=" + (tmp / "train.txt").string() + " --model_prefix=" + (tmp / "m").string() +
                      " --vocab_size=" + std::to_string(tc.vocab_size) +
                      " --model_type=bpe --normalization_rule_name=identity --add_dummy_prefix=false"
                      " --remove_extra_whitespaces=false --byte_fallback=true --character_coverage=0.9999"
                      " --unk_id=0 --pad_id=1 --pad_piece=" + std::string(kPadPiece) +
                      " --bos_id=-1 --eos_id=-1 --control_symbols=" + std::string(kEotPiece) +
                      " --input_sentence_size=0 --shuffle_input_sentence=false --max_sentence_length=" +
                      std::to_string(4 * kChunk + 64) + " --max_sentencepiece_length=" +
                      std::to_string(tc.max_piece_length) + " --num_threads=" + std::to_string(threads) +
                      " --minloglevel=0";
  if (tc.whitespace_runs)
    flags += " --split_by_whitespace=false --allow_whitespace_only_pieces=true";
  else  // GPT-2-like: spaces start words and never merge into runs; '\n' is always its own token
    flags += " --split_by_whitespace=true --allow_whitespace_only_pieces=false --user_defined_symbols=" +
             std::string(kNewlinePlaceholder);
  spdlog::info("tokenizer: training BPE ({} pieces, whitespace_runs={}) on {} bytes with {} threads", tc.vocab_size,
               tc.whitespace_runs, text.size(), threads);
  text.clear();
  {
    SpmLogWatcher watch(tc.vocab_size - 256 - 3);
    try {
      spm_train(flags);
    } catch (const std::exception& e) {
      watch.stop();
      const std::string why = e.what();
      // SentencePiece fails both ways: fewer pieces than the input's characters need, or more
      // than the input can yield.
      const char* hint = why.find("smaller than required_chars") != std::string::npos
                             ? " (tokenizer.vocab_size is too small for the characters in this input)"
                             : " (is tokenizer.vocab_size too large for this input?)";
      throw UsageError("tokenizer train: " + why + hint);
    }
  }
  fs::path out(out_model_path);
  if (out.has_parent_path()) make_output_dir(out.parent_path(), "tokenizer output folder");
  write_file_atomic(out, read_file(tmp / "m.model"));
  Tokenizer check(out.string());  // self-check: loads, has the special and byte tokens
  spdlog::info("tokenizer: wrote {} ({} tokens, eot={}, pad={})", out.string(), check.vocab_size(), check.eot_id(),
               check.pad_id());
}

}  // namespace codex
