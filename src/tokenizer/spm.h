#pragma once
// SentencePiece through the codex_spm shim (see spm_shim/spm_shim.h for why it is isolated).
#include <cstdint>
#include <string>
#include <vector>

namespace codex {

// Trains with SentencePiece's flag syntax ("--input=... --vocab_size=..."); throws on failure.
void spm_train(const std::string& flags);

class SpmModel {
 public:
  enum Kind { kNormal = 0, kUnknown = 1, kControl = 2, kUserDefined = 3, kByte = 4, kUnused = 5 };
  explicit SpmModel(const std::string& path);  // throws UsageError naming the file
  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  int32_t vocab_size() const;
  std::string piece(int32_t id) const;
  int kind(int32_t id) const;
  int32_t piece_to_id(const std::string& piece) const;
  // Appends the ids of `text` to out.
  void encode(const std::string& text, std::vector<int32_t>& out) const;

 private:
  void* proc_ = nullptr;
};

}  // namespace codex
