#pragma once
// Reading a code corpus: directories (recursive *.py), single files, and JSONL / JSONL.gz with
// the code under "text" or "content"; plus Codex's file filters.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace codex {

struct Document {
  std::string source;  // "path" or "path:line" for JSONL
  std::string text;
};

// What for_each_document skipped without handing to the callback.
struct SkipCounts {
  int64_t unreadable = 0;  // cannot be read, corrupt gzip, bad JSON line, no text/content field
  int64_t binary = 0;      // NUL bytes or not text
};

// Expands `inputs` (a missing path or an empty list is a UsageError) and calls fn for every
// document in a deterministic order. on_file (optional) is told each file's on-disk size when
// that file is done, for progress.
void for_each_document(const std::vector<std::string>& inputs, const std::function<void(Document&)>& fn,
                       SkipCounts& skipped, const std::function<void(int64_t)>& on_file = nullptr);
// Sum of the on-disk sizes of the files `inputs` expands to (the progress total).
int64_t corpus_disk_bytes(const std::vector<std::string>& inputs);

// Codex's filters in the order they are applied; a file is counted under the first that drops it.
inline const std::vector<std::string>& filter_rules() {
  static const std::vector<std::string> r = {"too_large", "avg_line_length", "max_line_length",
                                             "alnum_fraction", "auto_generated"};
  return r;
}
// The first content rule (above) that drops `text`, or "" if it passes. (Duplicates are
// detected by the caller, which sees every file.)
std::string filter_document(const std::string& text, const DataConfig& cfg);

// Line statistics the filters use: lines split at '\n' (a final newline does not start a new
// line); lengths in bytes without the '\n'.
struct LineStats {
  int64_t lines = 0;
  double avg_length = 0;
  int64_t max_length = 0;
  double alnum_fraction = 0;  // ASCII letters and digits over all bytes
};
LineStats line_stats(const std::string& text);
bool looks_auto_generated(const std::string& text, int64_t header_lines);
bool looks_binary(const std::string& text);

}  // namespace codex
