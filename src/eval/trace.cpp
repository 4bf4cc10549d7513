// `data trace`: problems from calls recorded while a project's own tests run (docs/problems.md).
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "eval/embedded_python.h"
#include "eval/problems.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

// Modules whose doctests call small pure functions with literal arguments; `python3 -m doctest`
// imports each file and runs its examples. Every standard-library function these runs call
// (with literal arguments and results) is recorded, not only the modules' own.
const char* const kDefaultTracePackage = "/usr/lib/python3.11";
const char* const kDefaultTraceCommand =
    "python3 -m doctest statistics.py difflib.py fractions.py _pydecimal.py bisect.py colorsys.py "
    "textwrap.py shlex.py fnmatch.py base64.py calendar.py ipaddress.py";

namespace {

constexpr int64_t kMaxCopyFile = 1 << 20;      // files copied into the sandbox: at most 1 MiB each
constexpr int64_t kMaxCopyTotal = 48LL << 20;  // and 48 MiB in all

bool valid_utf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += len;
  }
  return true;
}

struct Call {
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> kwargs;
  std::string result;
};

std::string call_assert(const Call& c) {
  std::string s = "assert candidate(";
  bool first = true;
  for (auto& a : c.args) s += (first ? "" : ", ") + a, first = false;
  for (auto& [k, v] : c.kwargs) s += (first ? "" : ", ") + k + "=" + v, first = false;
  s += ")";
  return s + (c.result == "None" ? " is None" : " == " + c.result);
}

// The package's text files for the sandbox (those under /usr it reads in place): opts["files"]
// {relative path: text} and stats files_copied / files_not_copied.
void copy_package(const std::string& root, const std::string& package, nlohmann::json& opts,
                  nlohmann::ordered_json& stats) {
  std::error_code ec;
  nlohmann::json files = nlohmann::json::object();
  int64_t total = 0, skipped = 0;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    if (it->is_directory() && (name == ".git" || name == "__pycache__" || name == ".venv" || name == "node_modules")) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    auto size = static_cast<int64_t>(it->file_size(ec));
    std::string text;
    if (ec || size > kMaxCopyFile || ends_with(name, ".pyc") || !valid_utf8(text = read_file(it->path()))) {
      ++skipped;
      continue;
    }
    total += size;
    if (total > kMaxCopyTotal)
      throw UsageError("data trace: --package '" + package + "' holds more than 48 MiB of text files");
    files[fs::relative(it->path(), root).string()] = text;
  }
  opts["files"] = files;
  stats["files_copied"] = files.size();
  stats["files_not_copied"] = skipped;
}

// What the tracing program printed: calls per function (file, line, qualified name), sorted
// (shortest first) so the choice does not depend on process order, and the command's own line.
using FunctionKey = std::tuple<std::string, int64_t, std::string>;
struct Traced {
  std::map<FunctionKey, std::map<std::pair<size_t, std::string>, Call>> by_fn;
  nlohmann::ordered_json cmd_info = nlohmann::ordered_json::object();
  int64_t recorded = 0, inconsistent = 0, mutated = 0;
};

Traced read_calls(const std::string& stdout_text) {
  Traced t;
  for (const auto& j : json_lines(stdout_text)) {
    if (j.value("kind", "") == "command") {
      t.cmd_info["status"] = j["status"];
      t.cmd_info["processes"] = j["processes"];
      t.cmd_info["output_tail"] = j["output_tail"];
      continue;
    }
    ++t.recorded;
    if (j["result"].is_null()) {
      ++t.inconsistent;
      continue;
    }
    if (j.value("mutated", false)) {
      ++t.mutated;
      continue;
    }
    Call c;
    for (auto& a : j["args"]) c.args.push_back(a.get<std::string>());
    for (auto& [k, v] : j["kwargs"].items()) c.kwargs.emplace_back(k, v.get<std::string>());
    c.result = j["result"].get<std::string>();
    std::string text = call_assert(c);
    t.by_fn[{j["file"].get<std::string>(), j["lineno"].get<int64_t>(), j["name"].get<std::string>()}]
           [{text.size(), text}] = std::move(c);
  }
  return t;
}

// One candidate per traced function whose definition the extractor takes (read here, parsed in
// the sandbox), its steps the asserts of its first 4 x max_tests calls; counts the others.
std::vector<FunctionCandidate> traced_candidates(const Traced& t, const std::string& root,
                                                 const eval::Sandbox& sandbox, int64_t max_tests,
                                                 int64_t& not_standalone) {
  std::set<std::string> rels;
  for (auto& [key, _] : t.by_fn) rels.insert(std::get<0>(key));
  std::vector<std::pair<std::string, std::string>> files;
  for (auto& rel : rels) {
    fs::path p = fs::path(root) / rel;
    try {
      files.emplace_back(p.string(), read_file(p));
    } catch (const UsageError&) {
    }
  }
  nlohmann::ordered_json ex;  // extraction counts of every function in those files (not reported)
  auto defs = extract_candidates(files, sandbox, true, ex);
  std::map<std::pair<std::string, std::string>, std::vector<FunctionCandidate*>> by_name;
  for (auto& d : defs) by_name[{d.file, d.name}].push_back(&d);
  std::vector<FunctionCandidate> cands;
  for (auto& [key, cs] : t.by_fn) {
    auto& [rel, line, qual] = key;
    FunctionCandidate* def = nullptr;
    auto it = by_name.find({(fs::path(root) / rel).string(), qual});
    if (it != by_name.end())
      for (auto* d : it->second)
        if (d->lineno == line || d->first_lineno == line) def = d;
    if (!def) {
      ++not_standalone;
      continue;
    }
    FunctionCandidate c = *def;
    c.steps.clear();  // tests come from the calls, not the doctests
    size_t n = 0;
    for (auto& [k, call] : cs) {
      if (n++ >= static_cast<size_t>(4 * max_tests)) break;
      c.steps.emplace_back("assert", k.second);
    }
    cands.push_back(std::move(c));
  }
  return cands;
}

// task ids: <path relative to the package>:<qualified name>, unique (a repeat gets "#2", "#3").
void assign_traced_ids(std::vector<FunctionCandidate>& cands, const std::string& root) {
  std::map<std::string, int> used;
  for (auto& c : cands) {
    std::string id = fs::relative(c.file, root).string() + ":" + c.name;
    int k = ++used[id];
    c.problem.task_id = k == 1 ? id : id + "#" + std::to_string(k);
  }
}

// A UsageError saying that the command recorded nothing, with the end of its output.
[[noreturn]] void no_calls(const Traced& t, const std::string& command, const std::string& root,
                           const nlohmann::ordered_json& stats) {
  std::string tail = t.cmd_info.value("output_tail", std::string());
  if (tail.size() > 300) tail = tail.substr(tail.size() - 300);
  for (auto& ch : tail)
    if (ch == '\n') ch = ' ';
  throw UsageError("data trace: `" + command + "` in " + root + " (exit status " +
                   stats["command_status"].dump() + ") made no recordable calls of functions under that folder" +
                   (tail.empty() ? std::string() : "; its output ends: " + tail));
}

}  // namespace

nlohmann::ordered_json trace_problems(const Config& cfg, std::string package, std::string command) {
  const fs::path dir = cfg.run.dir;
  check_overwrite(dir / "traced.jsonl", "data trace: output", cfg.overwrite);  // before the test command runs
  if (package.empty()) package = kDefaultTracePackage;
  if (command.empty()) {
    if (package != kDefaultTracePackage)
      throw UsageError("data trace: --command is required with --package (the project's test command)");
    command = kDefaultTraceCommand;
  }
  std::error_code ec;
  if (!fs::is_directory(package, ec)) throw UsageError("data trace: --package '" + package + "' is not a folder");
  std::string root = fs::canonical(package).string();
  NgramIndex index = eval_set_index(cfg.problems.eval_sets, cfg.problems.decontam_ngram);
  eval::SandboxOptions so = problems_sandbox_options(cfg);
  eval::SandboxOptions run_opts = so;
  run_opts.timeout_s = cfg.problems.trace_timeout + 30;
  run_opts.workers = 1;
  run_opts.tmpfs_bytes = 256LL << 20;
  run_opts.memory_bytes = 2LL << 30;

  // Under /usr the sandbox sees the folder as it is (read-only); anything else is copied in.
  nlohmann::json opts = {{"command", command},
                         {"hook", kTraceHookPy},
                         {"max_calls", cfg.problems.max_tests},
                         {"timeout", cfg.problems.trace_timeout}};
  nlohmann::ordered_json stats;
  stats["package"] = root;
  stats["command"] = command;
  if (root.rfind("/usr/", 0) == 0) {
    opts["root"] = root;
  } else {
    opts["root"] = nullptr;
    copy_package(root, package, opts, stats);
  }
  eval::Sandbox runner(run_opts);
  make_output_dir(dir, "run.dir");
  DirLock lock(dir);

  spdlog::info("data trace: running `{}` in {} (sandboxed, up to {} s)", command, root, cfg.problems.trace_timeout);
  std::string program = std::string(kTraceRunPy) + "\nrun(__import__('json').loads(" +
                        python_string_literal(opts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) +
                        "))\n";
  auto res = runner.run(program);
  if (!res.passed)
    throw RunError("data trace: the tracing program failed in the sandbox: " + res.result + " " +
                   res.stderr_text.substr(0, 500));

  const Traced t = read_calls(res.stdout_text);
  stats["command_status"] = t.cmd_info.value("status", nlohmann::ordered_json());
  stats["command_processes"] = t.cmd_info.value("processes", nlohmann::ordered_json());
  // (ordered_json keeps its keys in a vector: no references into `stats` across insertions)
  nlohmann::ordered_json calls = nlohmann::ordered_json::object();
  calls["recorded"] = t.recorded;
  calls["dropped"] = {{"different_results", t.inconsistent}, {"mutated_arguments", t.mutated}};
  calls["functions"] = static_cast<int64_t>(t.by_fn.size());
  stats["calls"] = calls;
  if (t.by_fn.empty()) no_calls(t, command, root, stats);

  eval::Sandbox sandbox(so);
  int64_t not_standalone = 0;
  std::vector<FunctionCandidate> cands = traced_candidates(t, root, sandbox, cfg.problems.max_tests, not_standalone);
  stats["functions_dropped"] = {{"not_standalone_or_no_docstring", not_standalone}};
  stats["dropped"] = nlohmann::ordered_json::object();
  dedupe_and_decontaminate(cands, index, stats);
  build_tests(cands, sandbox, cfg.problems.max_tests, "trace", "", stats);
  assign_traced_ids(cands, root);
  stats["kept"] = static_cast<int64_t>(cands.size());
  std::vector<Problem> ps;
  for (auto& c : cands) ps.push_back(c.problem);
  write_problems((dir / "traced.jsonl").string(), ps);
  write_file_atomic(dir / "traced_stats.json", stats.dump(2) + "\n");
  spdlog::info("data trace: {} calls recorded in {} functions -> {} problems with traced tests -> {}", t.recorded,
               t.by_fn.size(), cands.size(), (dir / "traced.jsonl").string());
  return stats;
}

}  // namespace codex
