#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace codex {
namespace fs = std::filesystem;

// Reads a whole file; throws UsageError naming the file if it cannot.
std::string read_file(const fs::path& path);
// Reads a file, transparently gunzipping when the name ends in .gz.
std::string read_maybe_gz(const fs::path& path);
// Writes to PATH.tmp.<pid>, fsyncs, renames over PATH: readers never see a partial file.
void write_file_atomic(const fs::path& path, const std::string& bytes);
void fsync_dir(const fs::path& dir);
// Creates an output folder (and its parents); a path that exists as a file, or cannot be
// created, is a UsageError naming `what` and the path.
void make_output_dir(const fs::path& dir, const std::string& what);

// An exclusive flock on <dir>/.lock for as long as the object lives (the kernel drops it when the
// process dies, even by SIGKILL). Held by another process: UsageError naming its pid.
class DirLock {
 public:
  explicit DirLock(const fs::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};
// Expands files and directories (recursively) into files whose name ends in one of `exts`,
// sorted for determinism. A missing path is a UsageError.
std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& exts);
bool ends_with(const std::string& s, const std::string& suffix);
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 14695981039346656037ULL);
std::string hex64(uint64_t v);

}  // namespace codex
