#include "eval/problems.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "data/corpus.h"
#include "eval/embedded_python.h"
#include "eval/humaneval.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

namespace {

const char* const kStepsMarker = "\n__CODEX_STEPS__";

int64_t& counter(nlohmann::ordered_json& j, const std::string& section, const std::string& key) {
  auto& s = j[section];
  if (!s.is_object()) s = nlohmann::ordered_json::object();
  if (!s.contains(key)) s[key] = int64_t{0};
  return *s[key].get_ptr<int64_t*>();
}

std::string indent(const std::string& code, const std::string& pad) {
  std::string out;
  size_t start = 0;
  while (start <= code.size()) {
    size_t end = code.find('\n', start);
    if (end == std::string::npos) end = code.size();
    std::string line = code.substr(start, end - start);
    out += (line.empty() ? "" : pad + line) + "\n";
    start = end + 1;
  }
  return out;
}

// The program that replays a candidate's steps twice, in two fresh namespaces seeded with the
// module's globals, and prints which steps succeeded both times.
std::string steps_program(const FunctionCandidate& c) {
  nlohmann::json codes = nlohmann::json::array();
  for (auto& s : c.steps) codes.push_back(s.second);
  std::string p = c.problem.prompt + c.problem.canonical_solution + "\n\n";
  p += "def __codex_steps(__steps, __entry):\n"
       "    import json as __json, sys as __sys\n"
       "    __ok = [True] * len(__steps)\n"
       "    for __round in range(2):\n"
       "        __ns = dict(globals())\n"
       "        __ns['candidate'] = __entry\n"
       "        for __i, __code in enumerate(__steps):\n"
       "            try:\n"
       "                exec(__code, __ns)\n"
       "            except BaseException:\n"
       "                __ok[__i] = False\n"
       "    __sys.stdout.flush()\n"
       "    __sys.stdout.write('" + std::string("\\n__CODEX_STEPS__") + "' + __json.dumps(__ok) + '\\n')\n"
       "    __sys.stdout.flush()\n\n";
  p += "__codex_steps(__import__('json').loads(" + python_string_literal(codes.dump()) + "), " +
       c.problem.entry_point + ")\n";
  return p;
}

// Which steps succeeded both times, from the replay program's marker line (none when it failed).
std::vector<bool> steps_passed(const eval::ProgramResult& replay, size_t n_steps) {
  std::vector<bool> ok(n_steps, false);
  const std::string& o = replay.stdout_text;
  size_t m = o.rfind(kStepsMarker);
  if (replay.passed && m != std::string::npos) {
    try {
      auto j = nlohmann::json::parse(o.substr(m + std::string(kStepsMarker).size()));
      for (size_t s = 0; s < ok.size() && s < j.size(); ++s) ok[s] = j[s].get<bool>();
    } catch (const std::exception&) {
    }
  }
  return ok;
}

// The candidate's test from its passing steps: each assert with the setup steps before it, at
// most max_tests asserts. False (test left empty) when no assert passed.
bool assemble_test(FunctionCandidate& c, const std::vector<bool>& ok, int64_t max_tests,
                   nlohmann::ordered_json& stats) {
  std::string body;
  std::string pending_setup;
  int64_t asserts = 0;
  for (size_t s = 0; s < c.steps.size(); ++s) {
    if (!ok[s]) {
      ++counter(stats, "tests", "steps_failed");
      continue;
    }
    if (c.steps[s].first == "setup") {
      pending_setup += indent(c.steps[s].second, "    ");
      continue;
    }
    if (asserts >= max_tests) {
      ++counter(stats, "tests", "asserts_over_limit");
      continue;
    }
    body += pending_setup + indent(c.steps[s].second, "    ");
    pending_setup.clear();
    ++asserts;
  }
  if (asserts == 0) {
    ++counter(stats, "tests", "no_passing_assert");
    return false;
  }
  c.problem.test = "def check(candidate):\n" + body;
  counter(stats, "tests", "asserts_kept") += asserts;
  return true;
}

}  // namespace

std::string python_string_literal(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> word_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) && c < 128) cur += ch;
    else if (c == '_') cur += ch;
    else if (!cur.empty()) out.push_back(std::move(cur)), cur.clear();
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<uint64_t> NgramIndex::hashes(const std::string& text) const {
  auto toks = word_tokens(text);
  std::vector<uint64_t> out;
  if (static_cast<int64_t>(toks.size()) < n_) return out;
  for (size_t i = 0; i + static_cast<size_t>(n_) <= toks.size(); ++i) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t k = i; k < i + static_cast<size_t>(n_); ++k) {
      h = fnv1a64(toks[k].data(), toks[k].size(), h);
      h = fnv1a64(" ", 1, h);
    }
    out.push_back(h);
  }
  return out;
}

void NgramIndex::add(const std::string& text) {
  for (uint64_t h : hashes(text)) grams_.insert(h);
}

bool NgramIndex::overlaps(const std::string& text) const {
  for (uint64_t h : hashes(text))
    if (grams_.count(h)) return true;
  return false;
}

NgramIndex eval_set_index(const std::vector<std::string>& eval_sets, int64_t n) {
  NgramIndex idx(n);
  for (auto& path : eval_sets) {
    if (!fs::exists(path))
      throw UsageError("problems.eval_sets: '" + path + "' not found" +
                       (fs::path(path).is_relative() ? " (relative to " + fs::current_path().string() +
                                                           "; run from the repository root)"
                                                     : std::string()));
    for (auto& p : read_problems(path)) idx.add(p.prompt + "\n" + p.canonical_solution);
  }
  return idx;
}

eval::SandboxOptions problems_sandbox_options(const Config& cfg) {
  eval::SandboxOptions o = eval::sandbox_options(cfg);
  o.timeout_s = cfg.problems.timeout;
  o.output_bytes = 64LL << 20;
  o.memory_bytes = 1LL << 30;
  return o;
}

std::vector<FunctionCandidate> extract_candidates(const std::vector<std::pair<std::string, std::string>>& files,
                                                  const eval::Sandbox& sandbox, bool require_docstring,
                                                  nlohmann::ordered_json& stats) {
  std::string opts = nlohmann::json{{"require_docstring", require_docstring}}.dump();
  std::vector<std::string> programs;
  programs.reserve(files.size());
  for (auto& [name, text] : files)
    programs.push_back(std::string(kProblemsExtractPy) + "\nextract(" + python_string_literal(text) +
                       ", __import__('json').loads(" + python_string_literal(opts) + "))\n");
  Progress progress("extract", static_cast<double>(programs.size()), "files");
  auto results = sandbox.run_programs(programs, [&](size_t d) { progress.update(static_cast<double>(d)); });
  progress.finish();
  std::vector<FunctionCandidate> out;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& r = results[i];
    if (!r.passed) {
      spdlog::debug("extract {}: {}", files[i].first, r.result);
      ++counter(stats, "files", "extract_failed");
      continue;
    }
    for (const auto& j : json_lines(r.stdout_text)) {
      std::string kind = j.value("kind", "");
      if (kind == "file") {
        ++counter(stats, "files", j.value("status", "ok"));
      } else if (kind == "drop") {
        ++counter(stats, "functions", "found");
        ++counter(stats, "dropped", j.value("reason", "other"));
      } else if (kind == "problem") {
        ++counter(stats, "functions", "found");
        FunctionCandidate c;
        c.file = files[i].first;
        c.name = j.value("name", "");
        c.lineno = j.value("lineno", int64_t{0});
        c.first_lineno = j.value("first_lineno", c.lineno);
        c.problem.prompt = j.value("prompt", "");
        c.problem.canonical_solution = j.value("canonical_solution", "");
        c.problem.entry_point = j.value("entry_point", "");
        c.problem.docstring = j.value("docstring", "");
        c.problem.source = c.file + ":" + std::to_string(c.lineno);
        for (auto& s : j["steps"]) c.steps.emplace_back(s[0].get<std::string>(), s[1].get<std::string>());
        for (auto& [k, v] : j["counts"].items()) counter(stats, "doctest", k) += v.get<int64_t>();
        out.push_back(std::move(c));
      }
    }
  }
  return out;
}

void dedupe_and_decontaminate(std::vector<FunctionCandidate>& cands, const NgramIndex& index,
                              nlohmann::ordered_json& stats) {
  std::set<std::pair<uint64_t, uint64_t>> seen;
  std::vector<FunctionCandidate> kept;
  counter(stats, "dropped", "duplicate");
  counter(stats, "dropped", "contaminated");
  for (auto& c : cands) {
    std::string text = c.problem.prompt + "\n" + c.problem.canonical_solution;
    auto key = std::make_pair(fnv1a64(c.problem.prompt.data(), c.problem.prompt.size()),
                              fnv1a64(c.problem.canonical_solution.data(), c.problem.canonical_solution.size()));
    if (!seen.insert(key).second) {
      ++counter(stats, "dropped", "duplicate");
      continue;
    }
    if (index.overlaps(text)) {
      spdlog::info("decontamination: dropping {} ({}): shares a word n-gram with an eval set", c.name,
                   c.problem.source);
      ++counter(stats, "dropped", "contaminated");
      continue;
    }
    kept.push_back(std::move(c));
  }
  cands = std::move(kept);
}

void build_tests(std::vector<FunctionCandidate>& cands, const eval::Sandbox& sandbox, int64_t max_tests,
                 const std::string& tested_origin, const std::string& untested_origin,
                 nlohmann::ordered_json& stats) {
  auto& t = stats["tests"];
  if (!t.is_object()) t = nlohmann::ordered_json::object();
  for (auto* k : {"candidates_with_steps", "steps", "steps_failed", "asserts_kept", "asserts_over_limit",
                  "no_passing_assert", "failed_as_a_whole"})
    counter(stats, "tests", k);
  counter(stats, "origin", tested_origin);
  if (!untested_origin.empty()) counter(stats, "origin", untested_origin);
  // 1. Replay the steps.
  std::vector<size_t> with_steps;
  std::vector<std::string> programs;
  for (size_t i = 0; i < cands.size(); ++i)
    if (!cands[i].steps.empty()) {
      with_steps.push_back(i);
      programs.push_back(steps_program(cands[i]));
    }
  counter(stats, "tests", "candidates_with_steps") += static_cast<int64_t>(with_steps.size());
  Progress p1("replay", static_cast<double>(programs.size()), "functions");
  auto replay = sandbox.run_programs(programs, [&](size_t d) { p1.update(static_cast<double>(d)); });
  p1.finish();
  std::vector<size_t> assembled;
  programs.clear();
  for (size_t k = 0; k < with_steps.size(); ++k) {
    auto& c = cands[with_steps[k]];
    counter(stats, "tests", "steps") += static_cast<int64_t>(c.steps.size());
    if (assemble_test(c, steps_passed(replay[k], c.steps.size()), max_tests, stats)) assembled.push_back(with_steps[k]);
  }
  // 2. The assembled test must pass as a whole, twice (as eval runs it: prompt + solution + test).
  for (size_t i : assembled) {
    auto prog = eval::check_program(cands[i].problem, cands[i].problem.canonical_solution);
    programs.push_back(prog);
    programs.push_back(prog);
  }
  Progress p2("check", static_cast<double>(programs.size()), "programs");
  auto whole = sandbox.run_programs(programs, [&](size_t d) { p2.update(static_cast<double>(d)); });
  p2.finish();
  for (size_t k = 0; k < assembled.size(); ++k) {
    if (!whole[2 * k].passed || !whole[2 * k + 1].passed) {
      auto& c = cands[assembled[k]];
      spdlog::debug("{}: assembled test fails ({})", c.problem.source, whole[2 * k].result);
      ++counter(stats, "tests", "failed_as_a_whole");
      c.problem.test.clear();
    }
  }
  std::vector<FunctionCandidate> kept;
  for (auto& c : cands) {
    if (!c.problem.test.empty()) {
      c.problem.origin = tested_origin;
    } else if (!untested_origin.empty()) {
      c.problem.origin = untested_origin;
    } else {
      ++counter(stats, "dropped", "no_test");
      continue;
    }
    ++counter(stats, "origin", c.problem.origin);
    kept.push_back(std::move(c));
  }
  cands = std::move(kept);
}

namespace {

// "<path relative to the input folder>:<qualified name>", unique (a repeat gets "#2", "#3").
void assign_task_ids(std::vector<FunctionCandidate>& cands, const std::vector<std::string>& roots) {
  std::map<std::string, int> used;
  for (auto& c : cands) {
    std::string file = c.file;
    for (auto& r : roots) {
      std::string root = r;
      while (root.size() > 1 && root.back() == '/') root.pop_back();
      if (file.size() > root.size() && file.compare(0, root.size(), root) == 0 && file[root.size()] == '/') {
        file = file.substr(root.size() + 1);
        break;
      }
    }
    std::string id = file + ":" + c.name;
    int n = ++used[id];
    c.problem.task_id = n == 1 ? id : id + "#" + std::to_string(n);
  }
}

void write_outputs(const fs::path& dir, const std::string& name, const std::vector<FunctionCandidate>& cands,
                   const nlohmann::ordered_json& stats) {
  std::vector<Problem> ps;
  for (auto& c : cands) ps.push_back(c.problem);
  write_problems((dir / (name + ".jsonl")).string(), ps);
  write_file_atomic(dir / (name + "_stats.json"), stats.dump(2) + "\n");
}

}  // namespace

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const std::exception&) {
      // not a line of the program's protocol
    }
  }
  return out;
}

nlohmann::ordered_json make_problems(const Config& cfg) {
  std::vector<std::string> inputs = cfg.problems.input.empty() ? cfg.data.input : cfg.problems.input;
  if (inputs.empty())
    throw UsageError("data problems: no corpus given (set problems.input, or data.input; dirs, .py, .jsonl[.gz])");
  fs::path dir = cfg.run.dir;
  check_overwrite(dir / "problems.jsonl", "data problems: output", cfg.overwrite);  // before any work
  corpus_disk_bytes(inputs);  // every input exists (else a UsageError naming it)
  NgramIndex index = eval_set_index(cfg.problems.eval_sets, cfg.problems.decontam_ngram);
  eval::Sandbox sandbox(problems_sandbox_options(cfg));
  make_output_dir(dir, "run.dir");
  DirLock lock(dir);

  nlohmann::ordered_json stats;
  stats["inputs"] = inputs;
  stats["files"] = nlohmann::ordered_json::object();
  stats["functions"] = nlohmann::ordered_json::object();
  stats["dropped"] = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, std::string>> files;
  SkipCounts skipped;
  for_each_document(inputs, [&](Document& d) { files.emplace_back(d.source, std::move(d.text)); }, skipped);
  counter(stats, "files", "in") = static_cast<int64_t>(files.size()) + skipped.unreadable + skipped.binary;
  counter(stats, "files", "unreadable") = skipped.unreadable;
  counter(stats, "files", "binary") = skipped.binary;
  if (files.empty()) throw UsageError("data problems: no readable Python files in problems.input");
  spdlog::info("data problems: {} files, {} sandboxes", files.size(), sandbox.workers());

  auto cands = extract_candidates(files, sandbox, true, stats);
  files.clear();
  dedupe_and_decontaminate(cands, index, stats);
  build_tests(cands, sandbox, cfg.problems.max_tests, "doctest", "docstring", stats);
  assign_task_ids(cands, inputs);
  stats["kept"] = static_cast<int64_t>(cands.size());
  stats["decontam_ngram"] = cfg.problems.decontam_ngram;
  stats["eval_sets"] = cfg.problems.eval_sets;
  write_outputs(dir, "problems", cands, stats);
  spdlog::info("data problems: {} problems ({} with doctest tests) -> {}", cands.size(),
               stats["origin"].value("doctest", int64_t{0}), (dir / "problems.jsonl").string());
  return stats;
}

}  // namespace codex
