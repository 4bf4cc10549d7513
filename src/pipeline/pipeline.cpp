#include "pipeline/pipeline.h"

#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/config.h"
#include "data/corpus.h"
#include "data/jsonl.h"
#include "data/prepare.h"
#include "eval/humaneval.h"
#include "generate/evaluate.h"
#include "rl/ppo.h"
#include "rl/prefs.h"
#include "tokenizer/tokenizer.h"
#include "train/pretrain.h"
#include "train/reward.h"
#include "train/run.h"
#include "train/sft.h"
#include "util/device.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

namespace {

const std::vector<std::string> kStages = {"tokenizer", "data", "pretrain", "problems", "sft",
                                          "prefs",     "reward", "ppo",    "eval"};
// Sections a stage may override for itself: "sft.optim.lr=1e-4" -> optim.lr in the sft stage only.
const std::vector<std::string> kScopedStages = {"pretrain", "sft", "reward", "ppo", "eval"};
const std::vector<std::string> kScopedSections = {"run", "model", "train", "optim", "generate", "eval", "dist"};

std::string stage_dir_name(size_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%02zu-%s", i + 1, kStages[i].c_str());
  return buf;
}

void flatten(const YAML::Node& n, const std::string& prefix, std::vector<std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten(it->second, prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>(), out);
  } else if (!n.IsNull()) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out.push_back(prefix + "=" + e.c_str());
  }
}

// The pipeline's config as dotted assignments: the file (with its `base:` chain), then overrides.
std::vector<std::string> config_assignments(const std::string& file, const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  std::function<void(const std::string&, int)> load = [&](const std::string& f, int depth) {
    if (depth > 8) throw UsageError(f + ": 'base:' chain is too deep");
    if (!fs::is_regular_file(f)) throw UsageError("config '" + f + "': no such file");
    YAML::Node root;
    try {
      root = YAML::LoadFile(f);
    } catch (const YAML::Exception& e) {
      throw UsageError(f + ": not valid YAML (" + std::string(e.what()) + ")");
    }
    if (root["base"]) {
      fs::path b = root["base"].as<std::string>();
      if (b.is_relative()) b = fs::path(f).parent_path() / b;
      load(b.string(), depth + 1);
      root.remove("base");
    }
    flatten(root, "", out);
  };
  if (!file.empty()) load(file, 0);
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

bool scoped(const std::string& assignment, std::string* stage, std::string* rest) {
  const std::string key = assignment.substr(0, assignment.find('='));
  const auto dot = key.find('.');
  if (dot == std::string::npos) return false;
  const std::string st = key.substr(0, dot), tail = assignment.substr(dot + 1);
  if (std::find(kScopedStages.begin(), kScopedStages.end(), st) == kScopedStages.end()) return false;
  const std::string section = tail.substr(0, tail.find('.'));
  if (std::find(kScopedSections.begin(), kScopedSections.end(), section) == kScopedSections.end()) return false;
  if (tail.find('.') == std::string::npos || tail.find('.') > tail.find('=')) return false;
  *stage = st;
  *rest = tail;
  return true;
}

struct Plan {
  Config shared;
  std::map<std::string, std::vector<std::string>> scoped;  // stage -> its own assignments
  Config for_stage(const std::string& stage) const {
    Config c = shared;
    auto it = scoped.find(stage);
    if (it != scoped.end())
      for (auto& a : it->second) apply_override(c, a);
    finalize_config(c);
    return c;
  }
};

Plan make_plan(const PipelineArgs& a) {
  Plan p;
  std::vector<std::string> shared;
  for (auto& asg : config_assignments(a.config_path, a.overrides)) {
    std::string st, rest;
    if (scoped(asg, &st, &rest)) p.scoped[st].push_back(rest);
    else shared.push_back(asg);
  }
  p.shared = load_config("", shared);
  for (auto& [st, v] : p.scoped) (void)p.for_stage(st);  // unknown keys / bad values: exit 2 now
  return p;
}

std::string self_exe() {
  std::error_code ec;
  std::string p = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) return "codex-train";
  // The binary was rebuilt while we ran: the new one at the same path is the one to run.
  const std::string deleted = " (deleted)";
  if (p.size() > deleted.size() && p.compare(p.size() - deleted.size(), deleted.size(), deleted) == 0)
    p.resize(p.size() - deleted.size());
  return p;
}

// Runs this program with `args` (a command of its own, e.g. one a stage reuses) and waits.
void run_self(const std::vector<std::string>& args, const std::string& what) {
  std::vector<char*> argv;
  const std::string exe = self_exe();
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid < 0) throw RunError(what + ": fork failed");
  if (pid == 0) {
    ::execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw RunError(what + " failed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128) + ")");
}

// The config keys a stage's result depends on (prefixes). Output paths, threads and the
// log/checkpoint cadence are left out: they do not change what a stage produces.
const std::map<std::string, std::vector<std::string>>& stage_keys() {
  static const std::map<std::string, std::vector<std::string>> k = {
      {"tokenizer", {"run.seed", "tokenizer."}},
      {"data", {"data."}},
      {"pretrain", {"run.seed", "run.device", "model.", "train.", "optim.", "dist.zero1"}},
      {"problems", {"pipeline.practice", "pipeline.extract", "problems."}},
      {"sft", {"run.seed", "sft.", "train.", "optim."}},
      {"prefs", {"run.seed", "pipeline.prefs_", "generate.", "eval.max_new_tokens", "eval.sandbox"}},
      {"reward", {"run.seed", "reward.", "train.", "optim.", "pipeline.reward_model"}},
      {"ppo", {"run.seed", "ppo.", "train.", "optim.", "generate.", "eval.sandbox", "eval.timeout", "pipeline.reward_model"}},
      {"eval", {"run.seed", "eval.", "generate.", "pipeline.eval_sets", "pipeline.humaneval_limit"}}};
  return k;
}
const std::vector<std::string> kVolatile = {"train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
                                            "train.data", "sft.init", "sft.data", "reward.init", "reward.data",
                                            "ppo.init", "ppo.ref", "ppo.reward_model", "ppo.prompts", "eval.workers"};

void flatten_lines(const YAML::Node& n, const std::string& prefix, std::vector<std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten_lines(it->second, prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>(),
                    out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out.push_back(prefix + "=" + e.c_str());
  }
}

// What a stage's fingerprint covers: the keys it reads, with the output folder written as <O>.
std::string normalised(const std::string& stage, const Config& c, const std::string& out_dir) {
  std::vector<std::string> lines;
  flatten_lines(YAML::Load(config_to_yaml(c)), "", lines);
  std::string y;
  const auto& keys = stage_keys().at(stage);
  for (auto& l : lines) {
    const std::string key = l.substr(0, l.find('='));
    bool keep = false;
    for (auto& k : keys) keep = keep || key.rfind(k, 0) == 0;
    for (auto& v : kVolatile) keep = keep && key != v;
    if (keep) y += l + "\n";
  }
  for (size_t at; (at = y.find(out_dir)) != std::string::npos;) y.replace(at, out_dir.size(), "<O>");
  return y;
}

class Pipeline {
 public:
  Pipeline(const PipelineArgs& a, Plan p) : args_(a), plan_(std::move(p)) {
    out_ = fs::weakly_canonical(fs::absolute(a.output_dir)).string();
    const char* r = std::getenv("RANK");
    rank_ = r ? std::atoi(r) : 0;
  }

  json run() {
    if (rank_ == 0) {
      make_output_dir(out_, "--output-dir");
      json pj = {{"command", args_.command_line}, {"config", config_to_yaml(plan_.shared)},
                 {"started", static_cast<int64_t>(std::time(nullptr))}};
      std::vector<std::string> names;
      for (size_t i = 0; i < kStages.size(); ++i) names.push_back(stage_dir_name(i));
      pj["stages"] = names;
      write_file_atomic(fs::path(out_) / "pipeline.json", pj.dump(2) + "\n");
    }
    std::string upstream;  // fingerprint chain
    bool invalidated = false;
    for (size_t i = 0; i < kStages.size(); ++i) {
      const std::string& st = kStages[i];
      const fs::path dir = fs::path(out_) / stage_dir_name(i);
      Config cfg = stage_config(st, dir);
      const std::string fp = hex64(fnv1a64(0, 0) ^ std::hash<std::string>{}(upstream + "|" + st + "|" +
                                                                             normalised(st, cfg, out_) + inputs_fp(st)));
      upstream = fp;
      const fs::path done = dir / "DONE";
      if (rank_ == 0 && fs::exists(dir / "stage.json")) {
        const json old = json::parse(read_file(dir / "stage.json"), nullptr, false);
        if (invalidated || old.is_discarded() || old.value("fingerprint", "") != fp) {
          move_aside(i);
          invalidated = true;
        }
      }
      if (fs::exists(done) && !invalidated) {
        summaries_[st] = json::parse(read_file(done), nullptr, false);
        spdlog::info("pipeline: {} done earlier; skipped", stage_dir_name(i));
        continue;
      }
      const bool all_ranks = st == "pretrain" || st == "sft" || st == "reward" || st == "ppo";
      if (rank_ == 0) {
        make_output_dir(dir, "stage folder");
        write_file_atomic(dir / "stage.json", json{{"fingerprint", fp}, {"stage", st}}.dump() + "\n");
      }
      if (rank_ != 0 && !all_ranks) {
        wait_for(dir);
        summaries_[st] = json::parse(read_file(done), nullptr, false);
        continue;
      }
      spdlog::info("pipeline: ---- {} ----", stage_dir_name(i));
      const auto t0 = std::chrono::steady_clock::now();
      json summary;
      try {
        summary = run_stage(st, cfg, dir);
      } catch (...) {
        if (rank_ == 0) write_file_atomic(dir / "FAILED", "failed\n");
        throw;
      }
      summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rank_ == 0) {
        fs::remove(dir / "FAILED");
        write_file_atomic(done, summary.dump(2) + "\n");
      }
      summaries_[st] = summary;
    }
    json summary = read_summary();
    if (rank_ == 0 && add_paired(summary)) write_file_atomic(fs::path(out_) / "summary.json", summary.dump(2) + "\n");
    if (rank_ == 0) {
      try {
        run_self({"report", "--run", out_}, "report");
      } catch (const std::exception& e) {
        spdlog::warn("pipeline: the report could not be written ({})", e.what());
      }
    }
    return summary;
  }

 private:
  Config stage_config(const std::string& st, const fs::path& dir) const {
    Config c = plan_.for_stage(st);
    c.resume = true;  // every trainer continues an interrupted run (a fresh one when there is none)
    c.overwrite = true;  // a stage without DONE is incomplete: what it wrote in its own folder is redone
    c.run.dir = dir.string();
    const fs::path O(out_);
    if (st == "tokenizer") {
      c.tokenizer.input = args_.corpus;
    } else if (st == "data") {
      c.data.input = args_.corpus;
      c.data.tokenizer = (O / "01-tokenizer" / "tokenizer.model").string();
    } else if (st == "pretrain") {
      c.train.data = (O / "02-data" / "data").string();
    } else if (st == "sft") {
      c.sft.init = (O / "03-pretrain").string();
      c.sft.data = (dir / "data.jsonl").string();
    } else if (st == "reward") {
      c.reward.init = (O / "05-sft").string();
      c.reward.data = (O / "06-prefs" / "prefs.jsonl").string();
    } else if (st == "ppo") {
      c.ppo.init = (O / "05-sft").string();
      if (c.ppo.ref.empty()) c.ppo.ref = c.ppo.init;
      if (c.pipeline.reward_model) c.ppo.reward_model = (O / "07-reward").string();
      else c.ppo.w_rm = 0;
      c.ppo.prompts = (O / "04-problems" / "train.jsonl").string();
      // U = alpha L_SFT + beta L_RLHF + gamma Omega: the SFT term on the SFT stage's own data.
      if (c.ppo.alpha > 0 && c.ppo.ptx_data.empty()) c.ppo.ptx_data = (O / "05-sft" / "data.jsonl").string();
    }
    return c;
  }

  // Checksums of the user's input files a stage reads.
  std::string inputs_fp(const std::string& st) const {
    std::string s;
    if (st == "tokenizer" || st == "data" || (st == "problems" && plan_.shared.pipeline.extract))
      for (auto& c : args_.corpus) s += content_checksum(c);
    if (st == "sft" && !args_.demos.empty()) s += content_checksum(args_.demos);
    if (st == "prefs" && !args_.prefs.empty()) s += content_checksum(args_.prefs);
    return s;
  }

  void move_aside(size_t from) {
    const fs::path aside = fs::path(out_) / ".invalidated" / std::to_string(std::time(nullptr));
    for (size_t i = from; i < kStages.size(); ++i) {
      const fs::path d = fs::path(out_) / stage_dir_name(i);
      if (!fs::exists(d)) continue;
      fs::create_directories(aside);
      fs::rename(d, aside / stage_dir_name(i));
      spdlog::warn("pipeline: {} no longer matches the config or its inputs; moved to {} and redone",
                   stage_dir_name(i), (aside / stage_dir_name(i)).string());
    }
    fs::remove(fs::path(out_) / "summary.json");
  }

  void wait_for(const fs::path& dir) {
    while (!fs::exists(dir / "DONE")) {
      if (fs::exists(dir / "FAILED")) throw RunError("pipeline: rank 0 failed in " + dir.filename().string());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }

  json run_stage(const std::string& st, const Config& c, const fs::path& dir) {
    const fs::path O(out_);
    if (st == "tokenizer") {
      train_tokenizer(c, (dir / "tokenizer.model").string());
      Tokenizer tok((dir / "tokenizer.model").string());
      return {{"vocab_size", tok.vocab_size()}};
    }
    if (st == "data") {
      return prepare_data(c);
    }
    if (st == "pretrain") return pretrain(c);
    if (st == "problems") return problems_stage(c, dir);
    if (st == "sft") {
      // Demonstrations given by the user, plus every problem with a solution (Codex-S).
      std::string text;
      int64_t demos = 0, problems = 0;
      if (!args_.demos.empty())
        for (auto& d : read_demos(args_.demos)) {
          text += json{{"prompt", d.prompt}, {"completion", d.completion}}.dump() + "\n";
          ++demos;
        }
      const fs::path train = O / "04-problems" / "train.jsonl";
      if (fs::exists(train) && fs::file_size(train) > 0)
        for (auto& p : read_problems(train.string()))
          if (!p.canonical_solution.empty()) {
            text += json{{"prompt", p.prompt}, {"completion", p.canonical_solution}}.dump() + "\n";
            ++problems;
          }
      if (rank_ == 0 && !fs::exists(dir / "data.jsonl")) write_file_atomic(dir / "data.jsonl", text);
      while (!fs::exists(dir / "data.jsonl")) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      json s = sft(c);
      s["demos"] = demos;
      s["problems"] = problems;
      return s;
    }
    if (st == "prefs") return prefs_stage(c, dir);
    if (st == "reward") {
      if (!c.pipeline.reward_model) return {{"skipped", "pipeline.reward_model=false"}};
      return train_reward(c);
    }
    if (st == "ppo") return ppo(c);
    if (st == "eval") return eval_stage(c, dir);
    throw std::logic_error("unknown stage " + st);
  }

  json problems_stage(const Config& c, const fs::path& dir) {
    std::vector<Problem> train, heldout;
    json s = json::object();
    if (c.pipeline.practice) {
      run_self({"data", "practice", "--out", (dir / "practice").string(), "--seed",
                std::to_string(c.pipeline.practice_seed), "--force"},
               "data practice");
      train = read_problems((dir / "practice" / "train.jsonl").string());
      heldout = read_problems((dir / "practice" / "heldout.jsonl").string());
      s["practice_train"] = train.size();
      s["practice_heldout"] = heldout.size();
    }
    if (c.pipeline.extract) {
      std::vector<std::string> a = {"data", "problems", "run.dir=" + (dir / "extracted").string(),
                                    "run.threads=" + std::to_string(c.run.threads)};
      std::string inputs = "problems.input=[";
      for (size_t i = 0; i < args_.corpus.size(); ++i) inputs += (i ? "," : "") + json(args_.corpus[i]).dump();
      a.push_back(inputs + "]");
      run_self(a, "data problems");
      auto ex = read_problems((dir / "extracted" / "problems.jsonl").string());
      s["extracted"] = ex.size();
      s["extracted_stats"] = json::parse(read_file(dir / "extracted" / "problems_stats.json"), nullptr, false);
      train.insert(train.end(), ex.begin(), ex.end());
    }
    write_problems((dir / "train.jsonl").string(), train);
    write_problems((dir / "heldout.jsonl").string(), heldout);
    s["train"] = train.size();
    s["heldout"] = heldout.size();
    return s;
  }

  json prefs_stage(const Config& c, const fs::path& dir) {
    std::string text;
    json s = {{"given", 0}};
    if (!args_.prefs.empty()) {
      for (auto& p : read_preferences(args_.prefs))
        text += json{{"prompt", p.prompt}, {"chosen", p.chosen}, {"rejected", p.rejected}, {"margin", p.margin}}.dump() +
                "\n";
      s["given"] = read_preferences(args_.prefs).size();
    }
    const fs::path train = fs::path(out_) / "04-problems" / "train.jsonl";
    if (c.pipeline.prefs_from_execution && fs::exists(train) && fs::file_size(train) > 0) {
      configure_threads(c.run.threads);
      LoadedModel m1 = load_model((fs::path(out_) / "05-sft").string(), pick_device(c.run));
      Tokenizer tok(m1.tokenizer_path);
      eval::Sandbox sandbox(eval::sandbox_options(c));
      std::vector<eval::Problem> probs;
      for (auto& p : read_problems(train.string()))
        if (!p.test.empty()) probs.push_back({p.task_id, p.prompt, p.canonical_solution, p.test, p.entry_point});
      if (!probs.empty()) {
        json ex = prefs_from_execution(m1.model, tok, probs, sandbox, c.pipeline.prefs_n, c.pipeline.prefs_max_pairs,
                                       c.pipeline.prefs_temperature, c.eval.max_new_tokens,
                                       static_cast<uint64_t>(c.run.seed), c, (dir / "from_execution.jsonl").string());
        s["from_execution"] = ex;
        text += read_file(dir / "from_execution.jsonl");
      }
    }
    write_file_atomic(dir / "prefs.jsonl", text);
    int64_t n = 0;
    for (char ch : text) n += ch == '\n';
    s["pairs"] = n;
    if (n == 0 && c.pipeline.reward_model)
      throw UsageError("pipeline: no preference pairs (no --prefs, and no pair from execution: every sample of M1 "
                       "had the same outcome); give --prefs or set pipeline.reward_model=false");
    return s;
  }

  json eval_stage(const Config& c, const fs::path& dir) {
    configure_threads(c.run.threads);
    eval::Sandbox sandbox(eval::sandbox_options(c));
    const fs::path O(out_);
    std::vector<std::pair<std::string, std::string>> models = {{"M0", "03-pretrain"}, {"M1", "05-sft"}, {"M2", "08-ppo"}};
    json out = {{"models", json::object()}};
    for (auto entry : c.pipeline.eval_sets) {
      // "<set>:<n>" evaluates that set with n samples per problem instead of eval.n.
      int64_t n = c.eval.n;
      if (const auto colon = entry.rfind(':'); colon != std::string::npos && colon + 1 < entry.size() &&
                                                entry.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        n = std::stoll(entry.substr(colon + 1));
        entry = entry.substr(0, colon);
        if (n < 1) throw UsageError("pipeline.eval_sets: '" + entry + ":0' asks for no samples");
      }
      const std::string& set = entry;
      std::string path, name;
      int64_t limit = 0;
      if (set == "practice") {
        path = (O / "04-problems" / "heldout.jsonl").string();
        name = "practice_heldout";
      } else if (set == "humaneval") {
        path = c.eval.problems;
        if (!fs::exists(path) && fs::path(path).is_relative()) path = (fs::path(CODEX_SOURCE_DIR) / path).string();
        name = "humaneval";
        limit = c.pipeline.humaneval_limit;
      } else {
        path = set;
        name = fs::path(set).filename().string();
        name = name.substr(0, name.find('.'));
      }
      if (!fs::exists(path) || fs::file_size(path) == 0) {
        spdlog::warn("pipeline: eval set '{}' ({}) is empty or missing; skipped", set, path);
        continue;
      }
      auto problems = eval::load_problems(path);
      if (limit > 0 && static_cast<size_t>(limit) < problems.size()) problems.resize(limit);
      if (limit > 0) name += "_first" + std::to_string(limit);
      for (auto& [m, stage] : models) {
        LoadedModel lm = load_model((O / stage).string(), pick_device(c.run));
        Tokenizer tok(lm.tokenizer_path);
        EvalSpec spec = EvalSpec::from(c);
        spec.n = n;
        spec.k.erase(std::remove_if(spec.k.begin(), spec.k.end(), [&](int64_t k) { return k > n; }), spec.k.end());
        if (spec.k.empty()) spec.k = {1};
        spec.out_dir = (dir / m / name).string();
        spec.tag = "t" + fmt::format("{}", spec.temperature) + "_n" + std::to_string(spec.n);
        json r = evaluate_problems(lm.model, tok, problems, sandbox, spec, c);
        spdlog::info("pipeline: {} on {}: {}", m, name, r.dump());
        json pk = json::object();
        for (auto& [k, v] : r.items())
          if (k.rfind("pass@", 0) == 0 || k == "rerank@1") pk[k] = v;
        out["models"][m][name] = pk;
      }
    }
    write_file_atomic(O / "summary.json", out.dump(2) + "\n");
    return out;
  }

  // summary["paired"][set]["M1-M0" | "M2-M1"]: the paired pass@1 difference of consecutive models on
  // the same problems with its 95% half-width, from their per-problem results in 09-eval (the noise
  // of "did this stage help?", tighter than comparing the two models' own intervals). Returns
  // whether it added or changed anything.
  bool add_paired(json& summary) const {
    if (!summary.is_object() || !summary.contains("models") || !summary["models"].is_object()) return false;
    const fs::path ev = fs::path(out_) / "09-eval";
    auto per_problem = [&](const std::string& model, const std::string& set) -> std::string {
      std::vector<fs::path> found;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(ev / model / set, ec)) {
        const std::string f = e.path().filename().string();
        if (f.size() > 14 && f.compare(f.size() - 14, 14, "_summary.jsonl") == 0) found.push_back(e.path());
      }
      return found.size() == 1 ? found[0].string() : std::string();
    };
    json paired = json::object();
    const std::vector<std::pair<std::string, std::string>> steps = {{"M0", "M1"}, {"M1", "M2"}};
    for (const auto& [a, b] : steps) {
      if (!summary["models"].contains(a) || !summary["models"][a].is_object()) continue;
      for (auto it = summary["models"][a].begin(); it != summary["models"][a].end(); ++it) {
        const std::string fa = per_problem(a, it.key()), fb = per_problem(b, it.key());
        if (fa.empty() || fb.empty()) continue;
        try {
          paired[it.key()][b + "-" + a] = paired_pass_at_1(fa, fb);
        } catch (const std::exception& e) {  // a derived figure: say so, never fail a finished run over it
          spdlog::warn("pipeline: no paired {}-{} difference on {} ({})", b, a, it.key(), e.what());
        }
      }
    }
    if (paired.empty() || (summary.contains("paired") && summary["paired"] == paired)) return false;
    summary["paired"] = paired;
    return true;
  }

  json read_summary() {
    const fs::path p = fs::path(out_) / "summary.json";
    if (fs::exists(p)) return json::parse(read_file(p), nullptr, false);
    return json::object();
  }

  PipelineArgs args_;
  Plan plan_;
  std::string out_;
  int rank_ = 0;
  std::map<std::string, json> summaries_;
};

// Every input checked before anything is written to the output folder.
void check_inputs(const PipelineArgs& a, const Plan& p) {
  if (a.output_dir.empty()) throw UsageError("pipeline: --output-dir is required");
  if (fs::exists(a.output_dir) && !fs::is_directory(a.output_dir))
    throw UsageError("--output-dir '" + a.output_dir + "' is a file");
  if (a.corpus.empty()) throw UsageError("pipeline: --corpus is required (directories, .py files or JSONL)");
  for (auto& c : a.corpus)
    if (!fs::exists(c)) throw UsageError("--corpus '" + c + "': does not exist");
  int64_t docs = 0;
  SkipCounts skipped;
  for_each_document(a.corpus, [&](Document&) { ++docs; }, skipped);
  if (docs == 0)
    throw UsageError("--corpus: no documents (no .py files, and no JSONL lines with a text or content field)");
  if (!a.demos.empty()) (void)read_demos(a.demos);
  if (!a.prefs.empty()) (void)read_preferences(a.prefs);
  const PipelineConfig& pc = p.shared.pipeline;
  if (a.demos.empty() && !pc.practice && !pc.extract)
    throw UsageError("pipeline: the sft stage has no data: give --demos, or enable pipeline.practice or "
                     "pipeline.extract");
  if (pc.reward_model && a.prefs.empty() && !pc.prefs_from_execution)
    throw UsageError("pipeline: the reward stage has no preferences: give --prefs, set "
                     "pipeline.prefs_from_execution=true, or pipeline.reward_model=false");
  if (!pc.reward_model && !pc.practice && !pc.extract)
    throw UsageError("pipeline: ppo has no reward: without a reward model it needs problems with tests "
                     "(pipeline.practice or pipeline.extract)");
}

int run_pipeline_cmd(cli::Invocation& inv) {
  PipelineArgs a;
  a.corpus = inv.all("corpus");
  a.demos = inv.get("demos");
  a.prefs = inv.get("prefs");
  a.output_dir = inv.get("output-dir");
  a.config_path = inv.config_path;
  a.overrides = inv.overrides;
  a.command_line = "codex-train pipeline";
  for (auto& c : a.corpus) a.command_line += " --corpus " + c;
  if (!a.demos.empty()) a.command_line += " --demos " + a.demos;
  if (!a.prefs.empty()) a.command_line += " --prefs " + a.prefs;
  a.command_line += " --output-dir " + a.output_dir;
  if (!a.config_path.empty()) a.command_line += " --config " + a.config_path;
  for (auto& o : a.overrides) a.command_line += " " + o;
  json s = run_pipeline(a);
  std::cout << s.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"pipeline", "",
                    "every stage end to end: tokenizer -> data -> M0 -> problems -> M1 -> prefs -> reward -> M2 -> eval",
                    {{"corpus", true, "directory, .py file or JSONL(.gz) with text/content (repeatable)", "", true},
                     {"demos", true, "demonstrations JSONL {prompt, completion|response}"},
                     {"prefs", true, "preferences JSONL {prompt, chosen, rejected}"},
                     {"output-dir", true, "where every stage writes (rerun to resume)"}},
                    false, run_pipeline_cmd, {""}});

}  // namespace

std::map<std::string, Config> pipeline_stage_configs(const std::string& file, const std::vector<std::string>& overrides) {
  PipelineArgs a;
  a.config_path = file;
  a.overrides = overrides;
  Plan p = make_plan(a);
  std::map<std::string, Config> out;
  for (auto& st : kStages) out[st] = p.for_stage(st);
  return out;
}

json run_pipeline(const PipelineArgs& args) {
  Plan plan = make_plan(args);
  check_inputs(args, plan);
  Pipeline p(args, std::move(plan));
  return p.run();
}

}  // namespace codex
