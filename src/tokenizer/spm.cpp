#include "tokenizer/spm.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "util/error.h"

namespace codex {
namespace {

struct Shim {
  int (*train)(const char*, char*, size_t);
  void* (*load)(const char*, char*, size_t);
  void (*free_)(void*);
  int32_t (*vocab_size)(void*);
  const char* (*id_to_piece)(void*, int32_t, size_t*);
  int32_t (*kind)(void*, int32_t);
  int32_t (*piece_to_id)(void*, const char*, size_t);
  int64_t (*encode)(void*, const char*, size_t, int32_t*, size_t);
};

// Finds libcodex_spm.so: $CODEX_SPM_LIB, beside the binary holding this code (the installed
// libcodex_train.so, or the executable), beside the executable (or one level up, for tests, or
// in ../lib, once installed), then the build tree's path.
const Shim& shim() {
  static Shim s;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* e = std::getenv("CODEX_SPM_LIB")) candidates.push_back(e);
    std::error_code ec;
    Dl_info self{};
    if (::dladdr(reinterpret_cast<void*>(&spm_train), &self) != 0 && self.dli_fname && *self.dli_fname)
      candidates.push_back((std::filesystem::path(self.dli_fname).parent_path() / "libcodex_spm.so").string());
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      candidates.push_back((exe.parent_path() / "libcodex_spm.so").string());
      candidates.push_back((exe.parent_path().parent_path() / "libcodex_spm.so").string());
      candidates.push_back((exe.parent_path().parent_path() / "lib" / "libcodex_spm.so").string());
    }
    candidates.push_back(CODEX_SPM_PATH);
    void* h = nullptr;
    std::string errs;
    for (auto& c : candidates) {
      if (!std::filesystem::exists(c, ec)) continue;
      h = ::dlmopen(LM_ID_NEWLM, c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (h) break;
      errs += std::string(" ") + ::dlerror();
    }
    if (!h) throw std::runtime_error("cannot load libcodex_spm.so (SentencePiece shim); set CODEX_SPM_LIB." + errs);
    auto sym = [&](const char* name) {
      void* p = ::dlsym(h, name);
      if (!p) throw std::runtime_error(std::string("libcodex_spm.so lacks ") + name);
      return p;
    };
    s.train = reinterpret_cast<decltype(s.train)>(sym("codex_spm_train"));
    s.load = reinterpret_cast<decltype(s.load)>(sym("codex_spm_load"));
    s.free_ = reinterpret_cast<decltype(s.free_)>(sym("codex_spm_free"));
    s.vocab_size = reinterpret_cast<decltype(s.vocab_size)>(sym("codex_spm_vocab_size"));
    s.id_to_piece = reinterpret_cast<decltype(s.id_to_piece)>(sym("codex_spm_id_to_piece"));
    s.kind = reinterpret_cast<decltype(s.kind)>(sym("codex_spm_kind"));
    s.piece_to_id = reinterpret_cast<decltype(s.piece_to_id)>(sym("codex_spm_piece_to_id"));
    s.encode = reinterpret_cast<decltype(s.encode)>(sym("codex_spm_encode"));
  });
  return s;
}

}  // namespace

void spm_train(const std::string& flags) {
  char err[1024] = {0};
  if (shim().train(flags.c_str(), err, sizeof err) != 0)
    throw std::runtime_error(std::string("SentencePiece training failed: ") + err);
}

SpmModel::SpmModel(const std::string& path) {
  char err[1024] = {0};
  if (path.empty()) throw UsageError("no tokenizer model given (empty path)");
  if (!std::filesystem::exists(path)) throw UsageError("tokenizer model '" + path + "' does not exist");
  if (!std::filesystem::is_regular_file(path)) throw UsageError("tokenizer model '" + path + "' is not a file");
  proc_ = shim().load(path.c_str(), err, sizeof err);
  if (!proc_) throw UsageError("'" + path + "' is not a valid tokenizer model: " + err);
}

SpmModel::~SpmModel() {
  if (proc_) shim().free_(proc_);
}

int32_t SpmModel::vocab_size() const { return shim().vocab_size(proc_); }

std::string SpmModel::piece(int32_t id) const {
  size_t n = 0;
  const char* p = shim().id_to_piece(proc_, id, &n);
  return std::string(p, n);
}

int SpmModel::kind(int32_t id) const { return shim().kind(proc_, id); }

int32_t SpmModel::piece_to_id(const std::string& piece) const {
  return shim().piece_to_id(proc_, piece.data(), piece.size());
}

void SpmModel::encode(const std::string& text, std::vector<int32_t>& out) const {
  size_t base = out.size();
  size_t cap = text.size() + 16;
  out.resize(base + cap);
  int64_t n = shim().encode(proc_, text.data(), text.size(), out.data() + base, cap);
  if (n < 0 && n != INT64_MIN) {
    cap = static_cast<size_t>(-n);
    out.resize(base + cap);
    n = shim().encode(proc_, text.data(), text.size(), out.data() + base, cap);
  }
  if (n < 0) throw std::runtime_error("SentencePiece encode failed");
  out.resize(base + static_cast<size_t>(n));
}

}  // namespace codex
