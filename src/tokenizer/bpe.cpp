#include "tokenizer/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>
#include <unistr.h>
#include <uninorm.h>

#include <cstdlib>

#include <algorithm>
#include <map>
#include <queue>

#include "util/error.h"
#include "util/fs.h"

namespace codex {

// ---------------------------------------------------------------------------------------------
// Pre-tokenization.

namespace {

// Unicode White_Space (what `\s` means in the Rust regex tiktoken uses and in Oniguruma, which
// Hugging Face tokenizers' Split runs; PCRE2's \s differs: no U+0085, and U+180E).
#define CODEX_WS "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
constexpr const char* kWhiteSpace = CODEX_WS;
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" CODEX_WS "\\p{L}\\p{N}]+|[" CODEX_WS "]+(?![^" CODEX_WS
    "])|[" CODEX_WS "]+";
#undef CODEX_WS

}  // namespace

// A tokenizer.json Split pattern for PCRE2: `\s` / `\S` spelled out as Unicode White_Space (inside
// a character class its members, outside a class [..] / [^..]); everything else as written.
std::string pcre2_pattern_from_hf(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      const char d = re[i + 1];
      if (d == 's') out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      else if (d == 'S' && !in_class) out += "[^" + std::string(kWhiteSpace) + "]";
      else if (d == 'S') throw UsageError("pre-tokenizer pattern: \\S inside a character class is not supported");
      else out += re.substr(i, 2);
      ++i;
      continue;
    }
    if (c == '[' && !in_class) in_class = true;
    else if (c == ']' && in_class && !out.empty() && out.back() != '[' && !(out.size() >= 2 && out.substr(out.size() - 2) == "[^"))
      in_class = false;
    out += c;
  }
  return out;
}

class BpeRegex {
 public:
  explicit BpeRegex(const std::string& pattern = kGpt2Pattern) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw UsageError(std::string("BPE pre-tokenizer pattern does not compile: ") + reinterpret_cast<char*>(msg));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~BpeRegex() { pcre2_code_free(code_); }

  // Calls f(begin, end) for every pre-token of s[0, n), in order; a run of invalid UTF-8 bytes
  // (which no branch of the pattern matches) is a pre-token of its own.
  template <class F>
  void for_each(const char* s, size_t n, F&& f) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (!md) throw std::bad_alloc();
    struct Free {
      pcre2_match_data* m;
      ~Free() { pcre2_match_data_free(m); }
    } guard{md};
    auto subject = reinterpret_cast<PCRE2_SPTR>(s);
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t at = 0;
    while (at < n) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, n, at, 0, md, nullptr)
                    : pcre2_match(code_, subject, n, at, 0, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) {
        f(at, n);
        return;
      }
      if (rc < 0) throw std::runtime_error("BPE pre-tokenizer: PCRE2 match error " + std::to_string(rc));
      size_t b = ov[0], e = ov[1];
      if (b > at) f(at, b);
      if (e == b) e = b + 1;  // cannot happen with this pattern; never loop forever
      f(b, std::min(e, n));
      at = e;
    }
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

// ---------------------------------------------------------------------------------------------
// GPT-2's byte <-> unicode spelling.

namespace {

struct ByteAlphabet {
  uint32_t cp_of[256];
  int16_t byte_of[512];  // code point -> byte, -1 if none (all code points used are < 324)
  ByteAlphabet() {
    std::fill(std::begin(byte_of), std::end(byte_of), int16_t{-1});
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      cp_of[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      byte_of[cp_of[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

void put_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Raw bytes of a token spelled in the byte alphabet; false if it is not so spelled.
bool unicode_to_bytes(const std::string& s, std::string& out) {
  out.clear();
  const auto& a = alphabet();
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      i += 2;
    } else {
      return false;  // every code point of the alphabet is below U+0800
    }
    if (cp >= 512 || a.byte_of[cp] < 0) return false;
    out += static_cast<char>(a.byte_of[cp]);
  }
  return !s.empty();
}

nlohmann::json parse_json_file(const fs::path& p) {
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(p.string() + ": not valid JSON (" + e.what() + ")");
  }
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

std::string BpeModel::bytes_to_unicode(std::string_view bytes) {
  std::string out;
  for (unsigned char b : bytes) put_utf8(alphabet().cp_of[b], out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading.

BpeModel::BpeModel() : re_(std::make_unique<BpeRegex>()) { std::fill(std::begin(byte_id_), std::end(byte_id_), -1); }
BpeModel::~BpeModel() = default;

bool BpeModel::looks_like(const std::string& path) {
  fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec))
    return fs::exists(p / "tokenizer.json") || (fs::exists(p / "vocab.json") && fs::exists(p / "merges.txt")) ||
           (fs::exists(p / "encoder.json") && fs::exists(p / "vocab.bpe"));
  return p.extension() == ".json";
}

void BpeModel::set_vocab(std::vector<std::string> bytes, std::vector<uint8_t> special,
                         std::vector<std::string> special_content) {
  bytes_ = std::move(bytes);
  special_ = std::move(special);
  special_content_ = std::move(special_content);
  rank_of_.resize(bytes_.size(), -1);
  by_bytes_.clear();
  by_bytes_.reserve(bytes_.size() * 2);
  for (size_t i = 0; i < bytes_.size(); ++i)
    if (!special_[i]) by_bytes_.emplace(std::string_view(bytes_[i]), static_cast<int32_t>(i));
  for (int b = 0; b < 256; ++b) byte_id_[b] = token_id(std::string_view(reinterpret_cast<const char*>(&b), 1));
}

int32_t BpeModel::token_id(std::string_view bytes) const {
  auto it = by_bytes_.find(bytes);
  return it == by_bytes_.end() ? -1 : it->second;
}

int32_t BpeModel::special_id(const std::string& content) const {
  for (size_t i = 0; i < special_content_.size(); ++i)
    if (special_[i] && special_content_[i] == content) return static_cast<int32_t>(i);
  return -1;
}

void BpeModel::add_pair(int32_t a, int32_t b, int32_t made, int32_t rank) {
  auto [it, fresh] = pairs_.emplace(pair_key(a, b), Pair{rank, made});
  if (!fresh) return;  // the first (lowest-ranked) merge of a pair wins
  merges_.emplace_back(a, b);
}

void BpeModel::add_merge(int32_t a, int32_t b, const std::string& what) {
  std::string joined = bytes_[a] + bytes_[b];
  int32_t made = token_id(joined);
  if (made < 0) throw UsageError(what + ": merge makes '" + bytes_to_unicode(joined) + "', which is not in the vocabulary");
  if (rank_of_[made] < 0) rank_of_[made] = next_rank_++;
  add_pair(a, b, made, rank_of_[made]);
}

namespace {
// The text rules of a tokenizer.json: GPT-2's ByteLevel pre-tokenizer (split_pattern stays ""),
// or the Llama 3 / Qwen Split(Regex) + ByteLevel sequence (split_pattern = its regex); normalizer
// null or NFC. Anything else: a UsageError through `bad`.
template <class Bad>
void read_text_rules(const nlohmann::json& j, const Bad& bad, std::string& split_pattern, bool& nfc) {
  auto pt = j.value("pre_tokenizer", nlohmann::json());
  if (pt.is_object() && pt.value("type", "") == "Sequence") {
    // Llama 3 / Qwen2 / Qwen3: Split(pattern, Isolated) then ByteLevel without its own regex.
    const auto& seq = pt.value("pretokenizers", nlohmann::json::array());
    const bool ok = seq.is_array() && seq.size() == 2 && seq[0].is_object() && seq[1].is_object() &&
                    seq[0].value("type", "") == "Split" &&
                    seq[0].value("behavior", "") == "Isolated" && !seq[0].value("invert", false) &&
                    seq[0].contains("pattern") && seq[0]["pattern"].is_object() &&
                    seq[0]["pattern"].contains("Regex") && seq[0]["pattern"]["Regex"].is_string() &&
                    seq[1].value("type", "") == "ByteLevel" && !seq[1].value("use_regex", true) &&
                    !seq[1].value("add_prefix_space", false);
    if (!ok)
      throw bad("pre_tokenizer Sequence: only [Split(Regex, Isolated), ByteLevel(use_regex=false)] is read "
                "(the Llama 3 / Qwen form)");
    split_pattern = seq[0]["pattern"]["Regex"].get<std::string>();
  } else {
    bool byte_level = pt.is_object() && pt.value("type", "") == "ByteLevel";
    if (!byte_level) throw bad("pre_tokenizer is not ByteLevel or a Split + ByteLevel sequence (only byte-level BPE is read)");
    if (pt.value("add_prefix_space", false)) throw bad("ByteLevel add_prefix_space=true is not supported");
    if (!pt.value("use_regex", true)) throw bad("ByteLevel use_regex=false is not supported");
  }
  if (j.contains("normalizer") && !j["normalizer"].is_null()) {
    if (!(j["normalizer"].is_object() && j["normalizer"].value("type", "") == "NFC"))
      throw bad("normalizer: only null or NFC is supported for byte-level BPE");
    nfc = true;
  }
}

// The tokenizer file(s) `path` names: a tokenizer.json, a vocab.json / encoder.json (merges beside
// it), or a folder holding tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe.
void find_bpe_files(const std::string& path, fs::path& json_path, fs::path& merges_path) {
  fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "tokenizer.json")) json_path = p / "tokenizer.json";
    else if (fs::exists(p / "vocab.json") && fs::exists(p / "merges.txt")) json_path = p / "vocab.json", merges_path = p / "merges.txt";
    else if (fs::exists(p / "encoder.json") && fs::exists(p / "vocab.bpe")) json_path = p / "encoder.json", merges_path = p / "vocab.bpe";
    else
      throw UsageError("'" + path + "': folder has no tokenizer (tokenizer.model, tokenizer.json, or GPT-2's vocab.json + merges.txt)");
  } else {
    if (!fs::exists(p, ec)) throw UsageError("tokenizer '" + path + "' does not exist");
    if (!fs::is_regular_file(p, ec)) throw UsageError("tokenizer '" + path + "' is not a file");
    json_path = p;
  }
}

// tokenizer.json's model.merges: "a b" strings or [a, b] pairs.
template <class Bad>
void read_json_merges(const nlohmann::json& list, const Bad& bad, std::vector<std::pair<std::string, std::string>>& merges) {
  if (!list.is_array()) throw bad("model.merges is not a list");
  for (const auto& e : list) {
    if (e.is_string()) {
      auto s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) throw bad("merge '" + s + "' is not 'a b'");
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      throw bad("model.merges: entry " + e.dump() + " is not a pair");
    }
  }
}

// A merges.txt / vocab.bpe: one "a b" per line (an optional "#version" first line).
void read_merges_txt(const fs::path& merges_path, std::vector<std::pair<std::string, std::string>>& merges) {
  std::string text = read_file(merges_path);
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
      throw UsageError(merges_path.string() + ":" + std::to_string(line_no) + ": expected two tokens 'a b'");
    merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
  }
}

// Ids: every vocab entry and added token; specials are added tokens (and GPT-2's eot in a
// plain vocab.json), never produced from text.
template <class Bad>
std::map<int64_t, std::pair<std::string, bool>> ids_of(const nlohmann::json& vocab, const nlohmann::json& added,
                                                       const Bad& bad) {
  std::map<int64_t, std::pair<std::string, bool>> by_id;  // id -> (content, special)
  for (auto& [tok, idj] : vocab.items()) {
    if (!idj.is_number_integer() || idj.template get<int64_t>() < 0) throw bad("token '" + tok + "' has no valid id");
    int64_t id = idj.template get<int64_t>();
    if (!by_id.emplace(id, std::make_pair(tok, tok == "<|endoftext|>")).second)
      throw bad("two tokens share id " + std::to_string(id));
  }
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content"))
      throw bad("added_tokens entry " + a.dump() + " lacks id/content");
    int64_t id = a["id"].get<int64_t>();
    auto content = a["content"].get<std::string>();
    auto it = by_id.find(id);
    if (it != by_id.end() && it->second.first != content) throw bad("added token id " + std::to_string(id) + " is also '" + it->second.first + "'");
    by_id[id] = {content, true};
  }
  return by_id;
}

}  // namespace

std::unique_ptr<BpeModel> BpeModel::load(const std::string& path) {
  fs::path json_path, merges_path;
  find_bpe_files(path, json_path, merges_path);
  nlohmann::json j = parse_json_file(json_path);
  const std::string what = json_path.string();
  auto bad = [&](const std::string& why) { return UsageError(what + ": " + why); };
  if (!j.is_object()) throw bad("expected a JSON object");

  nlohmann::json vocab, added = nlohmann::json::array();
  std::string split_pattern;  // empty: GPT-2's pattern
  bool nfc = false;
  std::vector<std::pair<std::string, std::string>> merges;
  // A vocab.json maps token -> id (GPT-2's has a token "model"); a tokenizer.json has a "model" object.
  const bool is_vocab = !merges_path.empty() || json_path.filename() == "vocab.json" || json_path.filename() == "encoder.json";
  if (!is_vocab && j.contains("model") && j["model"].is_object()) {  // tokenizer.json
    const auto& m = j["model"];
    if (!m.is_object() || m.value("type", std::string("BPE")) != "BPE")
      throw bad("model.type is not BPE (only byte-level BPE tokenizer.json files are read)");
    read_text_rules(j, bad, split_pattern, nfc);
    if (!m.contains("vocab") || !m["vocab"].is_object()) throw bad("model.vocab missing");
    vocab = m["vocab"];
    if (m.contains("merges")) read_json_merges(m["merges"], bad, merges);
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) added = j["added_tokens"];
  } else {  // vocab.json / encoder.json + merges.txt / vocab.bpe
    if (merges_path.empty()) {
      merges_path = json_path.parent_path() / (json_path.filename() == "encoder.json" ? "vocab.bpe" : "merges.txt");
      if (!fs::exists(merges_path))
        throw bad("a vocabulary without merges: expected " + merges_path.string() + " beside it (or a tokenizer.json)");
    }
    vocab = j;
    read_merges_txt(merges_path, merges);
  }

  const std::map<int64_t, std::pair<std::string, bool>> by_id = ids_of(vocab, added, bad);  // id -> (content, special)
  if (by_id.empty()) throw bad("empty vocabulary");
  int64_t n = by_id.rbegin()->first + 1;
  if (n > (int64_t{1} << 30)) throw bad("token id too large");
  std::vector<std::string> bytes(static_cast<size_t>(n)), content(static_cast<size_t>(n));
  std::vector<uint8_t> special(static_cast<size_t>(n), 1);  // gaps: unused, never produced
  std::unordered_map<std::string, int32_t> by_text;            // spelled token -> id
  std::string raw;
  std::unordered_map<std::string, int64_t> seen_bytes;
  for (auto& [id, e] : by_id) {
    if (e.second) {
      content[id] = e.first;
      continue;
    }
    if (!unicode_to_bytes(e.first, raw))
      throw bad("token '" + e.first + "' is not spelled in GPT-2's byte alphabet (not a byte-level BPE vocabulary)");
    if (!seen_bytes.emplace(raw, id).second) throw bad("token '" + e.first + "' appears twice");
    bytes[id] = raw;
    special[id] = 0;
    by_text.emplace(e.first, static_cast<int32_t>(id));
  }
  auto model = std::unique_ptr<BpeModel>(new BpeModel());
  if (!split_pattern.empty()) {
    model->split_pattern_ = split_pattern;
    model->re_ = std::make_unique<BpeRegex>(pcre2_pattern_from_hf(split_pattern));
  }
  model->nfc_ = nfc;
  model->set_vocab(std::move(bytes), std::move(special), std::move(content));
  for (int b = 0; b < 256; ++b)
    if (model->byte_id_[b] < 0)
      throw bad("no token for byte " + std::to_string(b) + " (a byte-level BPE vocabulary has all 256)");
  for (auto& [a, b] : merges) {
    auto ia = by_text.find(a), ib = by_text.find(b);
    if (ia == by_text.end() || ib == by_text.end())
      throw bad("merge '" + a + " " + b + "' uses a token not in the vocabulary");
    model->add_merge(ia->second, ib->second, what);
  }
  return model;
}

std::vector<int32_t> BpeModel::add_tokens(const std::vector<std::string>& tokens) {
  std::vector<int32_t> added;
  for (const auto& t : tokens) {
    if (t.empty() || token_id(t) >= 0) continue;
    auto bytes = bytes_;
    auto special = special_;
    auto content = special_content_;
    int32_t id = static_cast<int32_t>(bytes.size());
    bytes.push_back(t);
    special.push_back(0);
    content.emplace_back();
    set_vocab(std::move(bytes), std::move(special), std::move(content));
    rank_of_[id] = next_rank_++;
    for (size_t k = 1; k < t.size(); ++k) {
      int32_t a = token_id(std::string_view(t).substr(0, k)), b = token_id(std::string_view(t).substr(k));
      if (a >= 0 && b >= 0) add_pair(a, b, id, rank_of_[id]);
    }
    added.push_back(id);
  }
  if (added.empty()) return added;
  // Existing tokens that now split into two tokens through a new one merge that way too, at
  // their own rank (tiktoken merges any adjacent pair whose bytes form a token).
  std::vector<uint8_t> is_new(bytes_.size(), 0);
  for (int32_t id : added) is_new[id] = 1;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    if (special_[id] || is_new[id] || rank_of_[id] < 0) continue;
    std::string_view t(bytes_[id]);
    for (size_t k = 1; k < t.size(); ++k) {
      int32_t a = token_id(t.substr(0, k)), b = token_id(t.substr(k));
      if (a >= 0 && b >= 0 && (is_new[a] || is_new[b])) add_pair(a, b, static_cast<int32_t>(id), rank_of_[id]);
    }
  }
  return added;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

namespace {
// NFC of the well-formed stretches of s; bytes that are not UTF-8 stay as they are (byte-level BPE
// round-trips them; Hugging Face takes only valid text).
std::string nfc_keep_invalid(const char* s, size_t n) {
  std::string out;
  out.reserve(n);
  auto flush = [&](size_t a, size_t b) {
    if (a == b) return;
    size_t len = 0;
    uint8_t* q = u8_normalize(UNINORM_NFC, reinterpret_cast<const uint8_t*>(s + a), b - a, nullptr, &len);
    if (!q) {
      out.append(s + a, b - a);
      return;
    }
    out.append(reinterpret_cast<const char*>(q), len);
    std::free(q);
  };
  size_t run = 0, i = 0;
  while (i < n) {
    ucs4_t uc;
    const int k = u8_mbtoucr(&uc, reinterpret_cast<const uint8_t*>(s + i), n - i);
    if (k > 0) {
      i += static_cast<size_t>(k);
      continue;
    }
    flush(run, i);
    out += s[i];  // an invalid (or truncated) byte
    run = ++i;
  }
  flush(run, n);
  return out;
}
}  // namespace

void BpeModel::encode(const char* p, size_t n, std::vector<int32_t>& out) const {
  if (nfc_) {  // NFC first (Qwen's normalizer); ASCII needs none
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; ++i) ascii = static_cast<unsigned char>(p[i]) < 0x80;
    if (!ascii) {
      const std::string t = nfc_keep_invalid(p, n);
      re_->for_each(t.data(), t.size(), [&](size_t b, size_t e) { merge_piece(t.data() + b, e - b, out); });
      return;
    }
  }
  re_->for_each(p, n, [&](size_t b, size_t e) { merge_piece(p + b, e - b, out); });
}

void BpeModel::merge_piece(const char* p, size_t n, std::vector<int32_t>& out) const {
  if (n == 1) {
    out.push_back(byte_id_[static_cast<unsigned char>(p[0])]);
    return;
  }
  if (auto it = by_bytes_.find(std::string_view(p, n)); it != by_bytes_.end()) {
    out.push_back(it->second);
    return;
  }
  constexpr int32_t kNone = INT32_MAX;
  auto lookup = [&](int32_t a, int32_t b) -> Pair {
    auto it = pairs_.find(pair_key(a, b));
    return it == pairs_.end() ? Pair{kNone, -1} : it->second;
  };
  if (n <= 128) {
    // Short pieces: a flat array, the lowest-ranked pair found by a scan after each merge.
    int32_t sym[128];
    Pair right[128];  // right[i]: the merge of sym[i] and sym[i + 1]
    size_t m = n;
    for (size_t i = 0; i < n; ++i) sym[i] = byte_id_[static_cast<unsigned char>(p[i])];
    for (size_t i = 0; i + 1 < m; ++i) right[i] = lookup(sym[i], sym[i + 1]);
    while (m > 1) {
      size_t best = 0;
      int32_t best_rank = kNone;
      for (size_t i = 0; i + 1 < m; ++i)
        if (right[i].rank < best_rank) best_rank = right[i].rank, best = i;
      if (best_rank == kNone) break;
      sym[best] = right[best].id;
      for (size_t i = best + 1; i + 1 < m; ++i) {
        sym[i] = sym[i + 1];
        right[i] = right[i + 1];
      }
      --m;
      if (best + 1 < m) right[best] = lookup(sym[best], sym[best + 1]);
      if (best > 0) right[best - 1] = lookup(sym[best - 1], sym[best]);
    }
    out.insert(out.end(), sym, sym + m);
    return;
  }
  // Long pieces (long runs of spaces or symbols): a linked list and a heap of candidate merges,
  // O(n log n). Entries are (rank, left position); stale ones are skipped when popped.
  std::vector<int32_t> sym(n), next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_id_[static_cast<unsigned char>(p[i])];
    next[i] = static_cast<int32_t>(i + 1);
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  using Cand = std::tuple<int32_t, int32_t, int32_t, int32_t>;  // rank, left, left id, right id
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t l) {
    int32_t r = next[l];
    if (l < 0 || r >= static_cast<int32_t>(n)) return;
    Pair pr = lookup(sym[l], sym[r]);
    if (pr.rank != kNone) heap.emplace(pr.rank, l, sym[l], sym[r]);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(n); ++i) push(i);
  while (!heap.empty()) {
    auto [rank, l, a, b] = heap.top();
    heap.pop();
    int32_t r = next[l];
    if (sym[l] != a || r >= static_cast<int32_t>(n) || sym[r] != b) continue;  // stale
    sym[l] = lookup(a, b).id;
    sym[r] = -1;
    next[l] = next[r];
    if (next[l] < static_cast<int32_t>(n)) prev[next[l]] = l;
    push(l);
    if (prev[l] >= 0) push(prev[l]);
  }
  for (int32_t i = 0; i < static_cast<int32_t>(n); i = next[i]) out.push_back(sym[i]);
}

// ---------------------------------------------------------------------------------------------
// Export.

std::string BpeModel::tokenizer_json() const {
  nlohmann::ordered_json v = nlohmann::ordered_json::object(), added = nlohmann::ordered_json::array();
  for (size_t id = 0; id < bytes_.size(); ++id) {
    if (special_[id]) {
      if (special_content_[id].empty()) continue;  // an unused id
      v[special_content_[id]] = id;
      added.push_back({{"id", id},
                       {"content", special_content_[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", true},
                       {"special", true}});
    } else {
      v[bytes_to_unicode(bytes_[id])] = id;
    }
  }
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  for (auto& [a, b] : merges_in_rank_order()) merges.push_back(bytes_to_unicode(bytes_[a]) + " " + bytes_to_unicode(bytes_[b]));
  nlohmann::ordered_json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  nlohmann::ordered_json post = byte_level;
  nlohmann::ordered_json pre_tokenizer = byte_level;
  if (!split_pattern_.empty()) {  // the Llama 3 / Qwen form, as read
    nlohmann::ordered_json split = {{"type", "Split"}, {"pattern", {{"Regex", split_pattern_}}},
                                    {"behavior", "Isolated"}, {"invert", false}};
    nlohmann::ordered_json bl = byte_level;
    bl["use_regex"] = false;
    pre_tokenizer = {{"type", "Sequence"}, {"pretokenizers", {split, bl}}};
  }
  post["trim_offsets"] = false;
  nlohmann::ordered_json model = {{"type", "BPE"},
                                  {"dropout", nullptr},
                                  {"unk_token", nullptr},
                                  {"continuing_subword_prefix", ""},
                                  {"end_of_word_suffix", ""},
                                  {"fuse_unk", false},
                                  {"byte_fallback", false},
                                  {"ignore_merges", true},
                                  {"vocab", v},
                                  {"merges", merges}};
  nlohmann::ordered_json j = {{"version", "1.0"},   {"truncation", nullptr}, {"padding", nullptr},
                              {"added_tokens", added},
                              {"normalizer", nfc_ ? nlohmann::ordered_json{{"type", "NFC"}} : nlohmann::ordered_json()},
                              {"pre_tokenizer", pre_tokenizer},
                              {"post_processor", post}, {"decoder", byte_level}, {"model", model}};
  return j.dump(2) + "\n";
}

std::vector<std::pair<int32_t, int32_t>> BpeModel::merges_in_rank_order() const {
  auto m = merges_;
  std::stable_sort(m.begin(), m.end(), [&](const auto& x, const auto& y) {
    return pairs_.at(pair_key(x.first, x.second)).rank < pairs_.at(pair_key(y.first, y.second)).rank;
  });
  return m;
}

std::string BpeModel::vocab_json() const {
  nlohmann::ordered_json v = nlohmann::ordered_json::object();
  for (size_t id = 0; id < bytes_.size(); ++id) {
    if (special_[id]) {
      if (!special_content_[id].empty()) v[special_content_[id]] = id;
    } else {
      v[bytes_to_unicode(bytes_[id])] = id;
    }
  }
  return v.dump() + "\n";
}

std::string BpeModel::merges_txt() const {
  std::string out = "#version: 0.2\n";
  for (auto& [a, b] : merges_in_rank_order()) out += bytes_to_unicode(bytes_[a]) + " " + bytes_to_unicode(bytes_[b]) + "\n";
  return out;
}

}  // namespace codex
