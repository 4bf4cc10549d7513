#include "spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

namespace {
void put(char* err, size_t n, const std::string& s) {
  if (!err || n == 0) return;
  size_t k = s.size() < n - 1 ? s.size() : n - 1;
  std::memcpy(err, s.data(), k);
  err[k] = 0;
}
}  // namespace

extern "C" {

int codex_spm_train(const char* flags, char* err, size_t err_len) {
  auto st = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!st.ok()) {
    put(err, err_len, st.ToString());
    return 1;
  }
  return 0;
}

void* codex_spm_load(const char* path, char* err, size_t err_len) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  auto st = p->Load(path);
  if (!st.ok()) {
    put(err, err_len, st.ToString());
    delete p;
    return nullptr;
  }
  return p;
}

void codex_spm_free(void* proc) { delete static_cast<sentencepiece::SentencePieceProcessor*>(proc); }

int32_t codex_spm_vocab_size(void* proc) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(proc)->GetPieceSize();
}

const char* codex_spm_id_to_piece(void* proc, int32_t id, size_t* len) {
  const std::string& s = static_cast<sentencepiece::SentencePieceProcessor*>(proc)->IdToPiece(id);
  *len = s.size();
  return s.data();
}

int32_t codex_spm_kind(void* proc, int32_t id) {
  auto* p = static_cast<sentencepiece::SentencePieceProcessor*>(proc);
  if (p->IsUnknown(id)) return 1;
  if (p->IsControl(id)) return 2;
  if (p->IsByte(id)) return 4;
  if (p->IsUnused(id)) return 5;
  return 0;  // normal or user-defined: both decode to their text
}

int32_t codex_spm_piece_to_id(void* proc, const char* piece, size_t len) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(proc)->PieceToId(std::string(piece, len));
}

int64_t codex_spm_encode(void* proc, const char* text, size_t len, int32_t* out, size_t out_cap) {
  std::vector<int> ids;
  auto st = static_cast<sentencepiece::SentencePieceProcessor*>(proc)->Encode(std::string(text, len), &ids);
  if (!st.ok()) return INT64_MIN;
  if (ids.size() > out_cap) return -static_cast<int64_t>(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) out[i] = ids[i];
  return static_cast<int64_t>(ids.size());
}
}
