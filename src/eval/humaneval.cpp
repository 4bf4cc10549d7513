#include "eval/humaneval.h"

#include <set>
#include <unordered_map>

#include "data/jsonl.h"
#include "eval/passk.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex::eval {

std::string resolve_problems_path(const Config& cfg, const std::string& flag) {
  const std::string& given = cfg.eval.problems;
  const fs::path p(given);
  std::error_code ec;
  if (given != Config().eval.problems) {
    if (!fs::exists(p, ec))
      throw UsageError(flag + " '" + given + "': no such file" +
                       (p.is_relative() ? " (relative to " + fs::current_path(ec).string() + ")" : std::string()));
    return given;
  }
  std::vector<fs::path> where = {fs::absolute(p, ec), fs::path(CODEX_SOURCE_DIR) / p};
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) where.push_back(exe.parent_path().parent_path() / "share" / "codex-train" / p);
  std::string looked;
  for (auto& w : where) {
    if (fs::is_regular_file(w, ec)) return w.string();
    looked += (looked.empty() ? "" : ", ") + w.lexically_normal().string();
  }
  throw UsageError("the shipped HumanEval problems (" + given + ") were not found (looked in " + looked +
                   "); pass " + flag + " FILE");
}

std::vector<Problem> load_problems(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw UsageError("problems file '" + path + "' not found" +
                     (std::filesystem::path(path).is_relative()
                          ? " (relative to " + std::filesystem::current_path().string() + ")"
                          : std::string()));
  std::vector<Problem> out;
  int64_t untested = 0;
  for (auto& p : read_problems(path)) {
    // Problems without a test (SFT-only ones, origin "docstring") cannot be scored.
    if (p.test.empty()) ++untested;
    else out.push_back(std::move(p));
  }
  if (untested > 0) spdlog::warn("{}: {} problems without a test skipped", path, untested);
  if (out.empty()) throw UsageError(path + ": no problems with a test in the file");
  return out;
}

std::vector<Sample> load_samples(const std::string& path, const std::vector<Problem>& problems) {
  std::set<std::string> known;
  for (auto& p : problems) known.insert(p.task_id);
  std::vector<Sample> out;
  for_each_jsonl_ordered(
      path,
      [&](int64_t ln, const nlohmann::ordered_json& j) {
        Sample s{jsonl_string(j, "task_id", path, ln), jsonl_string(j, "completion", path, ln), j};
        if (!known.count(s.task_id))
          jsonl_error(path, ln, "unknown task_id '" + s.task_id + "' (not in the problems file)");
        out.push_back(std::move(s));
      },
      "samples");
  return out;
}

std::string check_program(const Problem& p, const std::string& completion) {
  return p.prompt + completion + "\n" + p.test + "\n" + "check(" + p.entry_point + ")";
}

EvalReport evaluate(const std::vector<Problem>& problems, const std::vector<Sample>& samples,
                    const Sandbox& sandbox, const std::vector<int64_t>& ks) {
  std::unordered_map<std::string, const Problem*> by_id;
  for (auto& p : problems) by_id[p.task_id] = &p;
  std::vector<std::string> programs;
  programs.reserve(samples.size());
  for (auto& s : samples) {
    auto it = by_id.find(s.task_id);
    if (it == by_id.end()) throw UsageError("sample for unknown task_id '" + s.task_id + "'");
    programs.push_back(check_program(*it->second, s.completion));
  }
  Progress progress("eval", static_cast<double>(programs.size()), "samples");
  EvalReport rep;
  rep.results = sandbox.run_programs(programs, [&](size_t done) { progress.update(static_cast<double>(done)); });
  progress.finish();

  // (n, c) per problem, in problem order.
  std::map<std::string, std::pair<int64_t, int64_t>> nc;
  for (size_t i = 0; i < samples.size(); ++i) {
    auto& e = nc[samples[i].task_id];
    e.first += 1;
    e.second += rep.results[i].passed ? 1 : 0;
  }
  std::vector<std::pair<int64_t, int64_t>> per_problem;
  for (auto& p : problems) {
    auto it = nc.find(p.task_id);
    if (it == nc.end()) ++rep.problems_without_samples;
    else per_problem.push_back(it->second);
  }
  rep.problems_evaluated = static_cast<int64_t>(per_problem.size());
  rep.pass_at_k = mean_pass_at_k(per_problem, ks);
  for (int64_t k : ks)
    if (!rep.pass_at_k.count(k) && std::find(rep.skipped_k.begin(), rep.skipped_k.end(), k) == rep.skipped_k.end())
      rep.skipped_k.push_back(k);
  for (auto& [n, c] : per_problem) rep.min_samples = rep.min_samples < 0 ? n : std::min(rep.min_samples, n);
  return rep;
}

std::string results_path_for(const std::string& samples_path) { return samples_path + "_results.jsonl"; }

void write_results(const std::string& path, const std::vector<Sample>& samples,
                   const std::vector<ProgramResult>& results) {
  std::string out;
  for (size_t i = 0; i < samples.size(); ++i) {
    nlohmann::ordered_json j = samples[i].line;
    j["result"] = results[i].result;
    j["passed"] = results[i].passed;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_file_atomic(path, out);
}

std::string pass_at_k_json(const std::map<int64_t, double>& pass_at_k, const std::vector<int64_t>& skipped_k) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (auto& [k, v] : pass_at_k) j["pass@" + std::to_string(k)] = v;
  if (!skipped_k.empty()) j["skipped_k"] = skipped_k;
  return j.dump();
}

void warn_skipped_k(const EvalReport& rep) {
  if (rep.skipped_k.empty()) return;
  std::string ks;
  for (int64_t k : rep.skipped_k) ks += (ks.empty() ? "" : ",") + std::to_string(k);
  spdlog::warn("eval: pass@k skipped for k={}: a problem has only {} sample(s) (pass@k needs at least k per problem)",
               ks, rep.min_samples < 0 ? 0 : rep.min_samples);
}

}  // namespace codex::eval
