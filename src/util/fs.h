#pragma once
#include <cstdint>
#include <filesystem>
#include <stdexcept>
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
  // `what` names the folder's option in the message ("choose another run.dir").
  explicit DirLock(const fs::path& dir, const std::string& what = "run.dir");
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

// ---- outputs built aside and renamed into place ---------------------------------------------
// Every command that writes a result (data, tokenizer, export, eval results) follows one rule:
// it builds the output at a hidden sibling and renames it into place only when complete, so an
// error, Ctrl-C or a full disk leaves the previous complete output untouched; and it refuses to
// replace a complete output unless given --force (config: overwrite=true).

// "<what> '<path>' already exists; pass --force (or overwrite=true) to replace it" (UsageError)
// when `path` is a file or a non-empty folder and `force` is false.
void check_overwrite(const fs::path& path, const std::string& what, bool force);

// An output file or folder under construction at `.<name>.tmp-<pid>` beside `final`. commit()
// renames it into place (a folder replaces the old one in one rename where the filesystem allows
// it); destroyed uncommitted it is removed and `final` stays as it was. Leftovers of killed
// processes (dead pids) are removed when the next one for the same name starts.
class StagedOutput {
 public:
  enum class Kind { kFile, kDir };
  StagedOutput(fs::path final_path, Kind kind);
  ~StagedOutput();
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;
  const fs::path& path() const { return tmp_; }  // write here
  const fs::path& final_path() const { return final_; }
  void commit();

 private:
  fs::path final_, tmp_;
  Kind kind_;
  bool done_ = false;
};

// Checks, before any long work, that `file` can be written: its folder exists (created when
// missing) and accepts a new file. A UsageError naming `what`, the path and the OS reason if not.
void check_can_write(const fs::path& file, const std::string& what);

// "<what> '<path>': <strerror(err)>" for I/O failures (std::runtime_error: exit 1).
std::runtime_error io_error(const std::string& what, const fs::path& path, int err);
// Bytes free for an unprivileged writer on the filesystem holding `path` (its nearest existing
// ancestor); -1 when unknown.
int64_t free_bytes(const fs::path& path);
// Total size of the regular files under `path` (or of the file itself); 0 when missing.
int64_t tree_bytes(const fs::path& path);
std::string human_bytes(int64_t n);  // "1.5 GB", "312 KB"
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 14695981039346656037ULL);
std::string hex64(uint64_t v);

}  // namespace codex
