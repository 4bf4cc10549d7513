#pragma once
// A prepared data folder (written by `data prepare`):
//   <dir>/train_<5 digits>.bin ...   token shards of the training split
//   <dir>/val_<5 digits>.bin ...     token shards of the validation split
//   <dir>/tokenizer.model            a copy of the tokenizer that produced them
//   <dir>/stats.json                 filter counts and token totals (data/prepare.cpp writes it)
// Shard file: a 64-byte header (magic "CDXTOKS1", format version, dtype code, token count,
// vocab size, checksum of the payload) then the tokens; read through mmap.
//   offset  0  char[8]  "CDXTOKS1"
//   offset  8  uint32   format version (1)
//   offset 12  uint32   dtype code: 1 = uint16 (vocab <= 65536), 2 = int32
//   offset 16  int64    token count
//   offset 24  int64    vocab size (every token is in [0, vocab size))
//   offset 32  uint64   FNV-1a 64 of the payload bytes
//   offset 40  zeros up to 64
// All little-endian; the payload (count * 2 or 4 bytes) follows the header.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace codex {

// Writes one shard atomically (dtype chosen from vocab_size). Throws if a token is outside
// [0, vocab_size).
void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size);

// One split (train or val) of a prepared folder, its shards seen as one token stream.
// Opening checks every shard's header and size; a corrupt or truncated shard is a UsageError
// naming the file.
class TokenDataset {
 public:
  TokenDataset(const std::string& dir, const std::string& split);
  ~TokenDataset();
  int64_t size() const;        // total tokens
  int64_t vocab_size() const;  // from the shard headers
  int num_shards() const;
  // Content checksum of the split: FNV-1a 64 over the shards' payload checksums (hex).
  std::string checksum() const;
  // Copies tokens [start, start + n) into out (int64 for direct use as torch indices).
  void read(int64_t start, int64_t n, int64_t* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace codex
