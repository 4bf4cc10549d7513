#pragma once
// A C interface to SentencePiece, built as its own shared library (libcodex_spm.so).
//
// Why: Debian's libsentencepiece embeds protobuf-lite 3.14 and exports its symbols, while
// LibTorch loads the system libprotobuf 3.21. Linked into one program they interpose each other
// and crash at load time (and RTLD_DEEPBIND breaks libstdc++'s std::cerr). The shim is therefore
// loaded with dlmopen(LM_ID_NEWLM) into its own link namespace (tokenizer/spm.cpp): only plain C
// data crosses this interface, so the two protobuf copies never meet.
#include <stddef.h>
#include <stdint.h>

extern "C" {

// Trains a model from a flags string (SentencePiece's --key=value syntax). Returns 0 on
// success; otherwise writes a message into err (NUL-terminated, truncated to err_len).
int codex_spm_train(const char* flags, char* err, size_t err_len);

// Loads a model file; NULL on failure (message in err).
void* codex_spm_load(const char* path, char* err, size_t err_len);
void codex_spm_free(void* proc);

int32_t codex_spm_vocab_size(void* proc);
// The piece string of an id (valid as long as proc lives); kinds: 0 normal, 1 unknown,
// 2 control, 3 user-defined, 4 byte, 5 unused.
const char* codex_spm_id_to_piece(void* proc, int32_t id, size_t* len);
int32_t codex_spm_kind(void* proc, int32_t id);
int32_t codex_spm_piece_to_id(void* proc, const char* piece, size_t len);

// Encodes text into ids; returns the number of ids written to out (at most out_cap) or, if
// out_cap is too small, minus the number needed. Negative INT32_MIN on error.
int64_t codex_spm_encode(void* proc, const char* text, size_t len, int32_t* out, size_t out_cap);
}
