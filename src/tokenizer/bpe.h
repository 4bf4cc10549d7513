#pragma once
// Byte-level BPE, the GPT-2 scheme (GPT-2, GPT-3, Codex; tiktoken's r50k_base / p50k_base).
//
// Text is cut into pre-tokens by GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (PCRE2, UTF-8 with Unicode properties; \s is spelled out as Unicode White_Space, the set the
// Rust regex behind tiktoken uses). Each pre-token's bytes start as one token per byte and
// adjacent pairs merge, lowest rank first (leftmost on ties), until no pair merges. A pre-token
// that is a token of its own is emitted directly (tiktoken does the same). A pair's rank is the
// rank of the token it makes: the first merge in merges.txt that makes that token. GPT-2's files
// make every token by exactly one merge, so this is also Hugging Face's rule for them; tokens
// added by `extend` merge from every split into two tokens, all with the new token's rank,
// as tiktoken ranks p50k_base's whitespace runs.
//
// Invalid UTF-8: the pattern sees only well-formed text (PCRE2_MATCH_INVALID_UTF); each maximal
// run of invalid bytes is a pre-token of its own, merged like any other. decode(encode(x)) == x
// for every byte string.
//
// Llama 3 / Qwen2 / Qwen3 tokenizer.json files cut text with their own Split pattern instead
// (pre_tokenizer Sequence [Split(Regex, Isolated), ByteLevel(use_regex=false)]; `\s` spelled out as
// above), and Qwen's NFC normalizer is applied first (libunistring; ASCII and invalid UTF-8 pass
// unchanged). Their added tokens (<|endoftext|>, <|im_start|>, ...) are special: as everywhere in
// this project, their text in the input is text, never the special id (a corpus file cannot inject
// an end-of-text); Hugging Face's encode() maps such text to the id.
//
// Files: a Hugging Face tokenizer.json (model.type BPE, ByteLevel pre-tokenizer), or GPT-2's
// vocab.json + merges.txt (also under their original names encoder.json + vocab.bpe). Token
// strings there spell bytes through GPT-2's byte-to-unicode map (printable Latin-1 as itself,
// the other 68 bytes as U+0100..U+0143).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace codex {

class BpeRegex;

class BpeModel {
 public:
  // `path`: a tokenizer.json, a vocab.json/encoder.json (merges beside it), or a folder holding
  // one of those. UsageError naming the file when it is not a byte-level BPE tokenizer.
  static std::unique_ptr<BpeModel> load(const std::string& path);
  // True when `path` names something load() reads (by name, without parsing it).
  static bool looks_like(const std::string& path);
  ~BpeModel();

  int32_t vocab_size() const { return static_cast<int32_t>(bytes_.size()); }
  // Raw bytes of a token; "" for special tokens and unused ids.
  const std::string& token_bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  bool is_special(int32_t id) const { return special_[static_cast<size_t>(id)] != 0; }
  // The id of a special token by its text (e.g. "<|endoftext|>"), or -1.
  int32_t special_id(const std::string& content) const;
  // The id of the ordinary token with exactly these bytes, or -1.
  int32_t token_id(std::string_view bytes) const;
  // Appends the ids of `n` bytes at `p`. Special tokens are never produced (their text is text).
  void encode(const char* p, size_t n, std::vector<int32_t>& out) const;

  // Adds ordinary tokens (raw bytes) after every existing id, ranked after every existing merge
  // in the given order; each merges from every split into two existing tokens. Tokens already
  // present are skipped. Returns the ids added.
  std::vector<int32_t> add_tokens(const std::vector<std::string>& tokens);

  // Hugging Face tokenizer.json / vocab.json / merges.txt for this model.
  std::string tokenizer_json() const;
  std::string vocab_json() const;
  std::string merges_txt() const;

  // GPT-2's byte-to-unicode spelling of raw bytes.
  static std::string bytes_to_unicode(std::string_view bytes);

 private:
  BpeModel();
  void set_vocab(std::vector<std::string> bytes, std::vector<uint8_t> special,
                 std::vector<std::string> special_content);
  void add_merge(int32_t a, int32_t b, const std::string& what);  // rank: that of the token made
  void add_pair(int32_t a, int32_t b, int32_t made, int32_t rank);
  std::vector<std::pair<int32_t, int32_t>> merges_in_rank_order() const;
  void merge_piece(const char* p, size_t n, std::vector<int32_t>& out) const;

  struct Pair {
    int32_t rank, id;
  };
  std::vector<std::string> bytes_;                  // (vocab) raw bytes; "" for specials
  std::vector<uint8_t> special_;                    // (vocab)
  std::vector<std::string> special_content_;        // (vocab) text of special tokens
  std::unordered_map<std::string_view, int32_t> by_bytes_;  // views into bytes_
  std::unordered_map<uint64_t, Pair> pairs_;        // (a << 32 | b) -> rank, merged id
  std::vector<std::pair<int32_t, int32_t>> merges_;  // (a, b) in rank order, for export
  std::vector<int32_t> rank_of_;                    // (vocab) rank of the merge making it; -1
  int32_t next_rank_ = 0;
  int32_t byte_id_[256];
  std::unique_ptr<BpeRegex> re_;
  std::string split_pattern_;  // tokenizer.json's Split regex as written ("" = GPT-2's pattern)
  bool nfc_ = false;           // NFC-normalize text first (Qwen)
};

}  // namespace codex
