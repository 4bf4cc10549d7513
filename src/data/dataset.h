#pragma once
// A prepared data folder (written by `data prepare`):
//   <dir>/train_<5 digits>.bin ...   token shards of the training split
//   <dir>/val_<5 digits>.bin ...     token shards of the validation split
//   <dir>/tokenizer.model            a copy of the tokenizer that produced them
//   <dir>/stats.json                 filter counts (interface.md)
// Shard file: a 64-byte header (magic "CDXTOKS1", format version, dtype code, token count,
// vocab size, checksum of the payload) then the tokens; read through mmap.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace codex {

// One split (train or val) of a prepared folder, its shards seen as one token stream.
// Opening checks every shard's header and size; a corrupt or truncated shard is a UsageError
// naming the file.
class TokenDataset {
 public:
  TokenDataset(const std::string& dir, const std::string& split);
  ~TokenDataset();
  int64_t size() const;        // total tokens
  int64_t vocab_size() const;  // from the shard headers
  // Copies tokens [start, start + n) into out (int64 for direct use as torch indices).
  void read(int64_t start, int64_t n, int64_t* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace codex
