#include "data/jsonl.h"

#include <cmath>
#include <mutex>
#include <set>

#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {
namespace {

template <typename Json, typename Fn>
void each_line(const std::string& path, const Fn& fn, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw UsageError("'" + path + "': file not found");
  std::string text = read_maybe_gz(path);
  size_t start = 0;
  int64_t lineno = 0, objects = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++lineno;
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      std::string w = e.what();
      auto p = w.find("parse error");
      jsonl_error(path, lineno, "bad JSON (" + (p == std::string::npos ? w : w.substr(p)) + ")");
    }
    if (!j.is_object()) jsonl_error(path, lineno, "expected a JSON object");
    ++objects;
    fn(lineno, j);
  }
  if (objects == 0) throw UsageError(path + ": no " + what + " in the file (it is empty)");
}

template <typename Json>
std::string string_field(const Json& j, const char* key, const std::string& path, int64_t line, bool required) {
  auto it = j.find(key);
  if (it == j.end() || (!required && it->is_null())) {
    if (required) jsonl_error(path, line, std::string("missing field '") + key + "'");
    return "";
  }
  if (!it->is_string()) jsonl_error(path, line, std::string("field '") + key + "' must be a string");
  return it->template get<std::string>();
}

}  // namespace

void jsonl_error(const std::string& path, int64_t line, const std::string& msg) {
  throw UsageError(path + ":" + std::to_string(line) + ": " + msg);
}

void for_each_jsonl(const std::string& path, const std::function<void(int64_t, const nlohmann::json&)>& fn,
                    const std::string& what) {
  each_line<nlohmann::json>(path, fn, what);
}

void for_each_jsonl_ordered(const std::string& path,
                            const std::function<void(int64_t, const nlohmann::ordered_json&)>& fn,
                            const std::string& what) {
  each_line<nlohmann::ordered_json>(path, fn, what);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path, const std::string& what) {
  std::vector<nlohmann::json> out;
  for_each_jsonl(path, [&](int64_t, const nlohmann::json& j) { out.push_back(j); }, what);
  return out;
}

std::string jsonl_string(const nlohmann::json& j, const char* key, const std::string& path, int64_t line,
                         bool required) {
  return string_field(j, key, path, line, required);
}
std::string jsonl_string(const nlohmann::ordered_json& j, const char* key, const std::string& path,
                         int64_t line, bool required) {
  return string_field(j, key, path, line, required);
}

std::vector<Problem> read_problems(const std::string& path) {
  std::vector<Problem> out;
  std::set<std::string> seen;
  for_each_jsonl(
      path,
      [&](int64_t ln, const nlohmann::json& j) {
        Problem p;
        p.task_id = jsonl_string(j, "task_id", path, ln);
        p.prompt = jsonl_string(j, "prompt", path, ln);
        p.canonical_solution = jsonl_string(j, "canonical_solution", path, ln, false);
        p.test = jsonl_string(j, "test", path, ln, false);
        p.entry_point = jsonl_string(j, "entry_point", path, ln);
        p.docstring = jsonl_string(j, "docstring", path, ln, false);
        p.source = jsonl_string(j, "source", path, ln, false);
        p.origin = jsonl_string(j, "origin", path, ln, false);
        if (p.task_id.empty()) jsonl_error(path, ln, "field 'task_id' must not be empty");
        if (p.entry_point.empty()) jsonl_error(path, ln, "field 'entry_point' must not be empty");
        if (!seen.insert(p.task_id).second) jsonl_error(path, ln, "duplicate task_id '" + p.task_id + "'");
        out.push_back(std::move(p));
      },
      "problems");
  return out;
}

nlohmann::ordered_json problem_to_json(const Problem& p) {
  nlohmann::ordered_json j;
  j["task_id"] = p.task_id;
  j["prompt"] = p.prompt;
  j["canonical_solution"] = p.canonical_solution;
  j["test"] = p.test;
  j["entry_point"] = p.entry_point;
  j["docstring"] = p.docstring;
  j["source"] = p.source;
  j["origin"] = p.origin;
  return j;
}

void write_problems(const std::string& path, const std::vector<Problem>& problems) {
  std::string out;
  for (auto& p : problems)
    out += problem_to_json(p).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_file_atomic(path, out);
}

std::vector<Demo> read_demos(const std::string& path) {
  std::vector<Demo> out;
  for_each_jsonl(
      path,
      [&](int64_t ln, const nlohmann::json& j) {
        Demo d;
        d.prompt = jsonl_string(j, "prompt", path, ln);
        if (j.contains("completion")) d.completion = jsonl_string(j, "completion", path, ln);
        else if (j.contains("response")) d.completion = jsonl_string(j, "response", path, ln);
        else jsonl_error(path, ln, "missing field 'completion' (or 'response')");
        out.push_back(std::move(d));
      },
      "demonstrations");
  return out;
}

void write_demos(const std::string& path, const std::vector<Demo>& demos) {
  std::string out;
  for (auto& d : demos) {
    nlohmann::ordered_json j;
    j["prompt"] = d.prompt;
    j["completion"] = d.completion;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, out);
}

std::vector<Preference> read_preferences(const std::string& path) {
  std::vector<Preference> out;
  int64_t empty = 0;
  auto blank = [](const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; };
  for_each_jsonl(
      path,
      [&](int64_t ln, const nlohmann::json& j) {
        Preference p;
        p.prompt = jsonl_string(j, "prompt", path, ln);
        if (j.contains("chosen") || j.contains("rejected")) {
          p.chosen = jsonl_string(j, "chosen", path, ln);
          p.rejected = jsonl_string(j, "rejected", path, ln);
        } else if (j.contains("completion_a") || j.contains("completion_b") || j.contains("label")) {
          std::string a = jsonl_string(j, "completion_a", path, ln);
          std::string b = jsonl_string(j, "completion_b", path, ln);
          auto it = j.find("label");
          if (it == j.end()) jsonl_error(path, ln, "missing field 'label' (0 = completion_a preferred, 1 = b)");
          if (!it->is_number_integer() || (it->get<int64_t>() != 0 && it->get<int64_t>() != 1))
            jsonl_error(path, ln, "field 'label' must be 0 (completion_a preferred) or 1 (completion_b)");
          bool a_wins = it->get<int64_t>() == 0;
          p.chosen = a_wins ? a : b;
          p.rejected = a_wins ? b : a;
        } else {
          jsonl_error(path, ln,
                      "expected 'chosen' and 'rejected' (or 'completion_a', 'completion_b' and 'label')");
        }
        if (auto it = j.find("margin"); it != j.end() && !it->is_null()) {
          if (!it->is_number() || !std::isfinite(it->get<double>()))
            jsonl_error(path, ln, "field 'margin' must be a finite number");
          p.margin = it->get<double>();
        }
        // A pair whose two responses are the same text teaches nothing and pulls the reward
        // model's scores of one sequence apart: refused.
        if (p.chosen == p.rejected)
          jsonl_error(path, ln, "the chosen and rejected responses are identical; drop the pair or fix the file");
        if (blank(p.chosen) || blank(p.rejected)) ++empty;
        out.push_back(std::move(p));
      },
      "preferences");
  if (empty > 0) {
    // Said once per file per process (a file may be read by several stages).
    static std::mutex mu;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> lock(mu);
    if (warned.insert(path).second)
      spdlog::warn("{}: {} of {} preference pairs have an empty (or whitespace-only) response; the reward model "
                   "learns to rank empty output too", path, empty, out.size());
  }
  return out;
}

}  // namespace codex
