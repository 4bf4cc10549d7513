#pragma once
// The code tokenizer, one of two kinds behind one interface:
//  - SentencePiece BPE (a `tokenizer.model`, trained by `tokenizer train`), described below;
//  - byte-level BPE, GPT-2's scheme (tokenizer/bpe.h): a Hugging Face `tokenizer.json`, or a
//    folder with GPT-2's vocab.json + merges.txt (encoder.json + vocab.bpe). End of text is the
//    special token <|endoftext|>. GPT-2 has no padding token: pad_id() is then eot_id() (padding
//    is masked out wherever it is used, and pretraining data has none); a vocabulary with a
//    special <pad> or <|padding|> token uses that.
// Folders (prepared data, checkpoints) hold a tokenizer as `tokenizer.model` (SentencePiece) or
// `tokenizer.json` (byte-level BPE); tokenizer_file_in() finds either.
//
// SentencePiece wrapping: lossless for any byte string, and able to learn tokens for newline +
// indentation.
//
// SentencePiece reads its training text line by line, so a piece could never hold '\n'. We map
// '\n' to a private-use placeholder (U+E000) before SentencePiece sees the text and train on
// chunks of several lines, so "\n" + the next line's indentation can become one token. Bytes
// SentencePiece cannot carry faithfully (invalid UTF-8, a literal U+2581 or U+E000, NUL) are cut
// out and emitted as byte-fallback tokens <0xNN>; decoding is ours (piece text with U+2581 -> ' ',
// U+E000 -> '\n', byte pieces -> raw bytes), and each encoded segment is checked to decode back
// to itself, falling back to byte tokens if not.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace codex {

class SpmModel;
class BpeModel;

class Tokenizer {
 public:
  enum class Kind { kSentencePiece, kBpe };
  // A tokenizer.model, a tokenizer.json, vocab.json (merges.txt beside it), or a folder holding
  // any of them. UsageError if missing/invalid.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(const std::string& text) const;  // lossless for ANY bytes
  void encode_append(const std::string& text, std::vector<int32_t>& out) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // decode(encode(x)) == x
  // The exact bytes one token decodes to ("" for control tokens); throws on an id out of range.
  const std::string& token_bytes(int32_t id) const;
  int32_t eot_id() const { return eot_id_; }
  int32_t pad_id() const { return pad_id_; }
  int64_t vocab_size() const { return static_cast<int64_t>(bytes_.size()); }
  const std::string& path() const { return path_; }
  bool is_control(int32_t id) const;
  Kind kind() const { return bpe_ ? Kind::kBpe : Kind::kSentencePiece; }
  const BpeModel* bpe() const { return bpe_.get(); }  // null for SentencePiece
  // The tokenizer as one file: the name a folder stores it under ("tokenizer.model" or
  // "tokenizer.json") and its bytes (the model file itself, or a canonical tokenizer.json).
  std::string file_name() const;
  std::string file_bytes() const;

 private:
  void init_spm();
  void init_bpe();
  void encode_clean(const std::string& text, std::vector<int32_t>& out) const;
  void encode_bytes(const char* p, size_t n, std::vector<int32_t>& out) const;

  std::string path_;
  std::unique_ptr<SpmModel> spm_;
  std::unique_ptr<BpeModel> bpe_;
  std::vector<std::string> bytes_;  // (vocab) decoded bytes of each id
  std::vector<uint8_t> control_;    // (vocab) 1 for control/unknown ids
  int32_t byte_id_[256];            // id of <0xNN>
  int32_t eot_id_ = -1, pad_id_ = -1;
};

// The special tokens every model carries.
inline constexpr const char* kEotPiece = "<|endoftext|>";
inline constexpr const char* kPadPiece = "<pad>";
// What '\n' becomes before SentencePiece sees the text (U+E000, private use).
inline constexpr const char* kNewlinePlaceholder = "\xEE\x80\x80";

inline constexpr const char* kSpmFileName = "tokenizer.model";
inline constexpr const char* kBpeFileName = "tokenizer.json";

// What a folder holds as its tokenizer, as a path Tokenizer accepts: <dir>/tokenizer.model,
// <dir>/tokenizer.json, or <dir> itself when it has vocab.json + merges.txt (or encoder.json +
// vocab.bpe); "" when it has none of them.
std::string tokenizer_file_in(const std::string& dir);
// Name and bytes of the tokenizer at `path` as one file (see Tokenizer::file_name); a
// SentencePiece model is copied byte for byte.
std::pair<std::string, std::string> tokenizer_file(const std::string& path);
// Writes the tokenizer at `path` into `dir` under its file name, removing a tokenizer of the
// other kind there (so tokenizer_file_in(dir) finds this one). Returns the written path.
std::string copy_tokenizer_into(const std::string& path, const std::string& dir);

// Encodes texts on `threads` threads; results in input order (the same as encoding one by one).
std::vector<std::vector<int32_t>> encode_many(const Tokenizer& tok, const std::vector<std::string>& texts,
                                              int threads);

// Trains per cfg.tokenizer (inputs: tokenizer.input, or data.input when that is empty) into
// out_model_path. Deterministic for a given config.
void train_tokenizer(const Config& cfg, const std::string& out_model_path);

}  // namespace codex
