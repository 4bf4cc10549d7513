#include "eval/filter.h"

#include <iostream>
#include <map>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "eval/humaneval.h"
#include "eval/problems.h"
#include "eval/sampling.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

std::vector<Problem> filter_problems(const std::vector<Problem>& problems, const ProblemSampler& sample,
                                     const eval::Sandbox& sandbox, const FilterOptions& opt,
                                     nlohmann::ordered_json& stats) {
  stats["in"] = static_cast<int64_t>(problems.size());
  stats["kept"] = int64_t{0};
  nlohmann::ordered_json dropped = {{"no_test", 0}, {"canonical_fails", 0}, {"unsolved", 0}, {"flaky", 0}};
  std::vector<char> alive(problems.size(), 1);
  auto drop = [&](size_t i, const char* why) {
    if (!alive[i]) return;
    alive[i] = 0;
    dropped[why] = dropped[why].get<int64_t>() + 1;
    spdlog::debug("filter: {} dropped ({})", problems[i].task_id, why);
  };
  // 1. A test, and a canonical solution that passes it twice.
  std::vector<size_t> idx;
  std::vector<std::string> programs;
  for (size_t i = 0; i < problems.size(); ++i) {
    if (problems[i].test.empty()) {
      drop(i, "no_test");
      continue;
    }
    idx.push_back(i);
    auto prog = eval::check_program(problems[i], problems[i].canonical_solution);
    programs.push_back(prog);
    programs.push_back(prog);
  }
  auto canon = sandbox.run_programs(programs);
  std::vector<Problem> todo;
  std::vector<size_t> todo_idx;
  for (size_t k = 0; k < idx.size(); ++k) {
    if (!canon[2 * k].passed || !canon[2 * k + 1].passed) drop(idx[k], "canonical_fails");
    else todo.push_back(problems[idx[k]]), todo_idx.push_back(idx[k]);
  }
  // 2. n samples each; a problem survives when one passes.
  std::vector<std::vector<std::string>> comps;
  if (!todo.empty()) comps = sample(todo, opt.n);
  if (comps.size() != todo.size()) throw std::runtime_error("filter: the sampler returned the wrong number of problems");
  programs.clear();
  std::vector<std::pair<size_t, size_t>> who;  // (todo index, sample index)
  for (size_t t = 0; t < todo.size(); ++t)
    for (size_t s = 0; s < comps[t].size(); ++s) {
      programs.push_back(eval::check_program(todo[t], comps[t][s]));
      who.emplace_back(t, s);
    }
  Progress progress("filter", static_cast<double>(programs.size()), "samples");
  auto res = sandbox.run_programs(programs, [&](size_t d) { progress.update(static_cast<double>(d)); });
  progress.finish();
  std::vector<int64_t> passing(todo.size(), 0);
  std::vector<size_t> rerun;  // indexes into programs
  int64_t samples_passed = 0;
  for (size_t k = 0; k < programs.size(); ++k)
    if (res[k].passed) {
      ++passing[who[k].first];
      ++samples_passed;
      rerun.push_back(k);
    }
  for (size_t t = 0; t < todo.size(); ++t)
    if (passing[t] == 0) drop(todo_idx[t], "unsolved");
  // 3. Every passing sample again, `repeat` times: any failure marks the problem flaky.
  std::vector<std::string> again;
  std::vector<size_t> again_who;
  for (size_t k : rerun)
    for (int64_t r = 0; r < opt.repeat; ++r) {
      again.push_back(programs[k]);
      again_who.push_back(who[k].first);
    }
  auto res2 = sandbox.run_programs(again);
  for (size_t k = 0; k < again.size(); ++k)
    if (!res2[k].passed) drop(todo_idx[again_who[k]], "flaky");
  std::vector<Problem> kept;
  for (size_t i = 0; i < problems.size(); ++i)
    if (alive[i]) kept.push_back(problems[i]);
  stats["kept"] = static_cast<int64_t>(kept.size());
  stats["dropped"] = dropped;
  stats["samples"] = static_cast<int64_t>(programs.size());
  stats["samples_passed"] = samples_passed;
  stats["n"] = opt.n;
  stats["repeat"] = opt.repeat;
  return kept;
}

namespace {

// "<out without .jsonl/.jsonl.gz>_stats.json"
std::string stats_path_for(const std::string& out) {
  std::string base = out;
  for (const char* ext : {".jsonl.gz", ".jsonl", ".json"})
    if (ends_with(base, ext)) {
      base = base.substr(0, base.size() - std::string(ext).size());
      break;
    }
  return base + "_stats.json";
}

int run_filter(cli::Invocation& inv) {
  Config cfg = inv.config();
  const std::string problems_path = inv.require("problems");
  const std::string out = inv.require("out");
  FilterOptions opt;
  opt.n = inv.get_int("n", 100);
  opt.repeat = inv.get_int("repeat", 2);
  if (opt.n < 1) throw UsageError("--n: expected a positive number of samples per problem");
  if (opt.repeat < 0) throw UsageError("--repeat: expected 0 or more");
  if (inv.has("checkpoint") == inv.has("samples"))
    throw UsageError("data filter: give --checkpoint C (sample from a model) or --samples F (task_id, completion lines)");
  if (fs::is_directory(out)) throw UsageError("--out '" + out + "' is a folder; expected a file name");
  check_overwrite(out, "data filter: --out", cfg.overwrite);
  check_can_write(out, "data filter: --out");  // before any sample runs
  auto problems = read_problems(problems_path);
  eval::Sandbox sandbox(problems_sandbox_options(cfg));

  ProblemSampler sampler;
  std::unique_ptr<LoadedModel> lm;
  std::unique_ptr<Tokenizer> tok;
  std::map<std::string, std::vector<std::string>> given;
  if (inv.has("samples")) {
    // Completions from a file: the first n of each problem.
    const std::string sp = inv.get("samples");
    for_each_jsonl(
        sp,
        [&](int64_t ln, const nlohmann::json& j) {
          given[jsonl_string(j, "task_id", sp, ln)].push_back(jsonl_string(j, "completion", sp, ln));
        },
        "samples");
    sampler = [&](const std::vector<Problem>& ps, int64_t n) {
      std::vector<std::vector<std::string>> c;
      for (auto& p : ps) {
        auto v = given[p.task_id];
        if (static_cast<int64_t>(v.size()) > n) v.resize(static_cast<size_t>(n));
        c.push_back(v);
      }
      return c;
    };
  } else {
    bool cuda = torch::cuda::is_available();
    if (cfg.run.device == "cuda" && !cuda) throw UsageError("run.device: 'cuda' requested but no CUDA device is available");
    torch::Device device = (cfg.run.device != "cpu" && cuda) ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    if (cfg.run.threads > 0) torch::set_num_threads(static_cast<int>(cfg.run.threads));
    lm = std::make_unique<LoadedModel>(load_model(inv.get("checkpoint"), device));
    if (lm->tokenizer_path.empty()) throw UsageError(inv.get("checkpoint") + ": checkpoint has no tokenizer.model");
    tok = std::make_unique<Tokenizer>(lm->tokenizer_path);
    const double temperature = inv.get_double("temperature", 0.8);
    sampler = [&, temperature](const std::vector<Problem>& ps, int64_t n) {
      auto samples = sample_problems(lm->model, *tok, ps, n, cfg.generate,
                                     {temperature, cfg.eval.top_p, cfg.eval.max_new_tokens,
                                      static_cast<uint64_t>(cfg.run.seed), true});
      std::vector<std::vector<std::string>> c(ps.size());
      for (auto& s : samples) c[static_cast<size_t>(s.prompt_index)].push_back(s.text);
      return c;
    };
  }
  nlohmann::ordered_json stats;
  auto kept = filter_problems(problems, sampler, sandbox, opt, stats);
  stats["problems"] = problems_path;
  stats["source"] = inv.has("samples") ? inv.get("samples") : inv.get("checkpoint");
  fs::path parent = fs::path(out).parent_path();
  if (!parent.empty()) make_output_dir(parent, "--out folder");
  write_problems(out, kept);
  write_file_atomic(stats_path_for(out), stats.dump(2) + "\n");
  spdlog::info("data filter: kept {} of {} problems -> {} (stats: {})", kept.size(), problems.size(), out,
               stats_path_for(out));
  std::cout << stats.dump() << std::endl;
  return 0;
}

cli::Registrar filter_cmd(
    {"data", "filter",
     "keep problems a model can solve: n samples each in the sandbox, drop unsolved, flaky and broken ones",
     {{"problems", true, "problems JSONL(.gz) (task_id, prompt, canonical_solution, test, entry_point)"},
      {"checkpoint", true, "model to sample from (checkpoint folder or run dir)"},
      {"samples", true, "instead of --checkpoint: completions to use (JSONL task_id, completion)"},
      {"n", true, "samples per problem (default 100)"},
      {"repeat", true, "extra runs of each passing sample; any failure drops the problem as flaky (default 2)"},
      {"temperature", true, "sampling temperature (default 0.8)"},
      {"out", true, "kept problems (JSONL); stats go to <out>_stats.json"},
      {"sandbox", true, "bwrap | rlimits-only (no isolation: unsafe)", "eval.sandbox"},
      cli::kForceFlag},
     false,
     run_filter,
     {"problems.", "run.", "eval.", "generate.", "overwrite"}});

}  // namespace
}  // namespace codex
