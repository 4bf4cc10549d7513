#include "pipeline/pipeline.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/config.h"
#include "data/corpus.h"
#include "data/jsonl.h"
#include "tokenizer/prepare.h"
#include "eval/humaneval.h"
#include "eval/evaluate.h"
#include "rl/ppo.h"
#include "rl/prefs.h"
#include "tokenizer/tokenizer.h"
#include "train/pretrain.h"
#include "train/reward.h"
#include "train/run.h"
#include "train/sft.h"
#include "config/device.h"
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

// One key of the pipeline's config as the user wrote it ("ppo.train.max_steps"), its value, and
// where it came from for messages ("FILE:LINE: " or "override 'k=v': ").
struct Assignment {
  std::string key;
  YAML::Node value;
  std::string at;
};

void flatten(const YAML::Node& n, const std::string& prefix, const std::string& file, std::vector<Assignment>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>();
      if (it->second.IsNull()) continue;  // a section whose keys are all commented out
      if (it->second.IsMap()) flatten(it->second, k, file, out);
      else out.push_back({k, it->second, yaml_origin(file, it->second)});
    }
  }
}

// The pipeline's config as assignments: the file (with its `base:` chain), then overrides.
std::vector<Assignment> config_assignments(const std::string& file, const std::vector<std::string>& overrides) {
  std::vector<Assignment> out;
  std::function<void(const std::string&, int)> load = [&](const std::string& f, int depth) {
    if (depth > 8) throw UsageError(f + ": 'base:' chain is too deep");
    if (fs::is_directory(f)) throw UsageError("config '" + f + "' is a folder, not a YAML file");
    if (!fs::is_regular_file(f)) throw UsageError("config '" + f + "': no such file");
    YAML::Node root;
    try {
      root = YAML::LoadFile(f);
    } catch (const YAML::ParserException& e) {
      throw UsageError(f + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
      throw UsageError(f + ": not valid YAML (" + std::string(e.what()) + ")");
    }
    if (root.IsNull()) return;
    if (!root.IsMap()) throw UsageError(f + ": expected a mapping of config sections at the top level");
    if (root["base"]) {
      fs::path b = root["base"].as<std::string>();
      if (b.is_relative()) b = fs::path(f).parent_path() / b;
      load(b.string(), depth + 1);
      root.remove("base");
    }
    flatten(root, "", f, out);
  };
  if (!file.empty()) load(file, 0);
  for (auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("override '" + o + "': expected key=value");
    const std::string val = o.substr(eq + 1);
    YAML::Node node;
    try {
      node = val.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(val);
    } catch (const YAML::Exception&) {
      node = YAML::Node(val);
    }
    out.push_back({o.substr(0, eq), node, "override '" + o + "': "});
  }
  return out;
}

// "sft.optim.lr" -> stage "sft", rest "optim.lr": a key one stage sets for itself.
bool scoped(const std::string& key, std::string* stage, std::string* rest) {
  const auto dot = key.find('.');
  if (dot == std::string::npos) return false;
  const std::string st = key.substr(0, dot), tail = key.substr(dot + 1);
  if (std::find(kScopedStages.begin(), kScopedStages.end(), st) == kScopedStages.end()) return false;
  if (tail.find('.') == std::string::npos) return false;
  const std::string section = tail.substr(0, tail.find('.'));
  if (std::find(kScopedSections.begin(), kScopedSections.end(), section) == kScopedSections.end()) return false;
  *stage = st;
  *rest = tail;
  return true;
}

// Keys the pipeline sets itself for every stage (a value given for one would be ignored), and
// what to use instead.
const std::map<std::string, std::string>& pipeline_owned_keys() {
  static const std::map<std::string, std::string> k = {
      {"run.dir", "every stage writes in --output-dir/<nn>-<stage>/; use --output-dir"},
      {"tokenizer.input", "the corpus is --corpus"},
      {"data.input", "the corpus is --corpus"},
      {"problems.input", "the corpus is --corpus"},
      {"data.tokenizer", "the data stage uses the tokenizer stage's tokenizer"},
      {"train.data", "pretraining reads the data stage's shards"},
      {"sft.init", "SFT starts from the pretrain stage's M0"},
      {"sft.data", "SFT data is --demos plus the problems stage's solutions; use --demos"},
      {"reward.init", "the reward model starts from the sft stage's M1"},
      {"reward.data", "preferences are --prefs plus those from execution; use --prefs"},
      {"ppo.init", "PPO starts from the sft stage's M1"},
      {"ppo.prompts", "PPO's prompts are the problems stage's train.jsonl"},
      {"ppo.reward_model", "PPO uses the reward stage's model (pipeline.reward_model)"},
      {"eval.limit", "the pipeline evaluates every problem of a set; pipeline.humaneval_limit limits HumanEval"},
      {"resume", "rerunning the same command always resumes"},
      {"overwrite", "an unfinished stage is always redone; --force is about a foreign --output-dir"}};
  return k;
}

struct Plan {
  Config shared;
  std::map<std::string, std::vector<Assignment>> scoped;  // stage -> its own assignments (key without the stage)
  Config for_stage(const std::string& stage) const {
    Config c = shared;
    auto it = scoped.find(stage);
    if (it != scoped.end())
      for (auto& a : it->second) set_key_as(c, a.key, a.value, a.at, stage + ".");
    finalize_config(c);
    return c;
  }
  // The key as the user would write it for this stage: "sft.optim.lr" when the stage sets it itself.
  std::string shown(const std::string& stage, const std::string& key) const {
    auto it = scoped.find(stage);
    if (it != scoped.end())
      for (auto& a : it->second)
        if (a.key == key) return stage + "." + key;
    return key;
  }
};

Plan make_plan(const PipelineArgs& a) {
  Plan p;
  std::vector<Assignment> shared;
  for (auto& asg : config_assignments(a.config_path, a.overrides)) {
    std::string st, rest;
    const bool is_scoped = scoped(asg.key, &st, &rest);
    auto owned = pipeline_owned_keys().find(is_scoped ? rest : asg.key);
    if (owned != pipeline_owned_keys().end())
      throw UsageError(asg.at + asg.key + ": the pipeline sets this key itself (" + owned->second + ")");
    if (is_scoped) p.scoped[st].push_back({rest, asg.value, asg.at});
    else shared.push_back(asg);
  }
  for (auto& asg : shared) set_key(p.shared, asg.key, asg.value, asg.at);
  finalize_config(p.shared);
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
      {"ppo", {"run.seed", "ppo.", "train.", "optim.", "generate.", "eval.sandbox", "eval.timeout", "pipeline.reward_model",
               "pipeline.ppo_prompts"}},
      {"eval", {"run.seed", "eval.", "generate.", "pipeline.eval_sets", "pipeline.humaneval_limit"}}};
  return k;
}
// Keys added after runs existed, with their defaults: at the default they stay out of a stage's
// fingerprint, so a run made before the key existed is not redone by a newer binary.
const std::map<std::string, std::string> kAddedLater = {
    {"pipeline.practice_extra", "0"}, {"pipeline.practice_rl_split", "false"}, {"pipeline.ppo_prompts", "train"},
    {"ppo.exec_reward", "outcome"}};
// The practice set writes PPO-only problems (rl.jsonl) only with one of these keys.
bool practice_has_rl(const PipelineConfig& pc) {
  return pc.practice && (pc.practice_extra > 0 || pc.practice_rl_split);
}
const std::vector<std::string> kVolatile = {"train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
                                            "train.data", "sft.init", "sft.data", "reward.init", "reward.data",
                                            "ppo.init", "ppo.reward_model", "ppo.prompts", "eval.workers"};

void flatten_lines(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten_lines(it->second, prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>(),
                    out);
  } else {
    YAML::Emitter e;
    e << YAML::Flow << n;
    out[prefix] = e.c_str();
  }
}

// Keys whose value is a file or folder of the user's: fingerprinted by content, never by the path
// as typed ("./x.jsonl", "x.jsonl" and "/abs/x.jsonl" are one input). The corpus (tokenizer.input,
// data.input) is --corpus, fingerprinted as an input of its own.
const std::vector<std::string> kPathKeys = {"train.init_from", "sft.val_data", "reward.val_data", "ppo.ref",
                                            "ppo.value_init", "ppo.problems", "ppo.ptx_data", "eval.problems"};
const std::vector<std::string> kCorpusKeys = {"tokenizer.input", "data.input"};

// pipeline.eval_sets with every file entry as its name and content checksum ("x.jsonl#<sum>:5").
std::string eval_sets_fingerprint(const std::vector<std::string>& sets) {
  std::string out;
  for (const auto& entry : sets) {
    std::string set = entry, n;
    if (const auto colon = entry.rfind(':'); colon != std::string::npos && colon + 1 < entry.size() &&
                                              entry.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      set = entry.substr(0, colon);
      n = entry.substr(colon);
    }
    if (set != "practice" && set != "humaneval") set = fs::path(set).filename().string() + "#" + content_checksum(set);
    out += (out.empty() ? "" : ",") + set + n;
  }
  return "[" + out + "]";
}

// What a stage's fingerprint covers: the keys it reads (key -> value as YAML), the output folder
// written as <O>, the user's files as "content:<checksum>".
std::map<std::string, std::string> normalised(const std::string& stage, const Config& c, const std::string& out_dir) {
  std::map<std::string, std::string> all, kept;
  flatten_lines(YAML::Load(config_to_yaml(c)), "", all);
  const auto& keys = stage_keys().at(stage);
  for (auto& [key, value] : all) {
    bool keep = false;
    for (auto& k : keys) keep = keep || key.rfind(k, 0) == 0;
    for (auto& v : kVolatile) keep = keep && key != v;
    for (auto& v : kCorpusKeys) keep = keep && key != v;
    if (!keep) continue;
    if (auto added = kAddedLater.find(key); added != kAddedLater.end() && added->second == value) continue;
    std::string y = value;
    for (size_t at; (at = y.find(out_dir)) != std::string::npos;) y.replace(at, out_dir.size(), "<O>");
    kept[key] = y;
  }
  auto path_of = [&](const std::string& key) -> std::string {
    if (key == "train.init_from") return c.train.init_from;
    if (key == "sft.val_data") return c.sft.val_data;
    if (key == "reward.val_data") return c.reward.val_data;
    if (key == "ppo.ref") return c.ppo.ref;
    if (key == "ppo.value_init") return c.ppo.value_init;
    if (key == "ppo.problems") return c.ppo.problems;
    if (key == "ppo.ptx_data") return c.ppo.ptx_data;
    return c.eval.problems;
  };
  for (auto& key : kPathKeys) {
    auto it = kept.find(key);
    if (it == kept.end() || it->second.find("<O>") != std::string::npos) continue;
    std::string path = path_of(key);
    if (path.empty()) continue;
    if (key == "eval.problems") {
      try {
        path = eval::resolve_problems_path(c, "eval.problems");
      } catch (const UsageError&) {  // not needed unless a humaneval set is evaluated (checked before)
      }
    }
    it->second = "content:" + content_checksum(path);
  }
  if (kept.count("pipeline.eval_sets")) kept["pipeline.eval_sets"] = eval_sets_fingerprint(c.pipeline.eval_sets);
  return kept;
}

std::string fingerprint_of(const std::string& upstream, const std::string& stage,
                           const std::map<std::string, std::string>& config,
                           const std::map<std::string, std::string>& inputs) {
  std::string s = upstream + "|" + stage + "|";
  for (auto& [k, v] : config) s += k + "=" + v + "\n";
  for (auto& [k, v] : inputs) s += k + "=" + v + "\n";
  return hex64(fnv1a64(s.data(), s.size()));
}

// SIGINT / SIGTERM outside a trainer's loop (the trainers stop gracefully themselves, and say
// the same): one line saying how to continue, then the usual exit status of the signal.
char g_interrupt_line[512] = "codex-train: pipeline: interrupted; rerun the same command to continue\n";
int g_interrupt_fd = 2;  // the real stderr (a stage may point fd 2 elsewhere, e.g. the tokenizer's quiet trainer)
extern "C" void on_pipeline_signal(int sig) {
  const ssize_t n = ::write(g_interrupt_fd, g_interrupt_line, std::strlen(g_interrupt_line));
  (void)n;
  ::_exit(128 + sig);
}

class InterruptMessage {
 public:
  InterruptMessage() {
    const int fd = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (fd >= 0) g_interrupt_fd = fd;
    for (int i = 0; i < 2; ++i) {
      ::sigaction(kSignals[i], nullptr, &old_[i]);
      if (old_[i].sa_handler == SIG_IGN) continue;  // `cmd &` in a script: stays ignored
      struct sigaction sa {};
      sa.sa_handler = on_pipeline_signal;
      sigemptyset(&sa.sa_mask);
      ::sigaction(kSignals[i], &sa, nullptr);
    }
  }
  ~InterruptMessage() {
    for (int i = 0; i < 2; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
    if (g_interrupt_fd != 2) ::close(g_interrupt_fd);
    g_interrupt_fd = 2;
  }
  static void stage(const std::string& name) {
    std::snprintf(g_interrupt_line, sizeof g_interrupt_line,
                  "codex-train: pipeline: interrupted in %s (finished stages are kept); rerun the same command to "
                  "continue\n",
                  name.c_str());
  }

 private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  struct sigaction old_[2];
};

class Pipeline {
 public:
  Pipeline(const PipelineArgs& a, Plan p) : args_(a), plan_(std::move(p)) {
    out_ = fs::weakly_canonical(fs::absolute(a.output_dir)).string();
    const char* r = std::getenv("RANK");
    rank_ = r ? std::atoi(r) : 0;
  }

  json run() {
    InterruptMessage interrupt;
    std::unique_ptr<DirLock> lock;
    if (rank_ == 0) {
      make_output_dir(out_, "--output-dir");
      // One pipeline per output folder: a second one exits 2 naming the holder's pid.
      lock = std::make_unique<DirLock>(out_, "--output-dir");
      write_pipeline_json();
    }
    fingerprint_stages();
    run_stages();
    json summary = read_summary();
    const bool paired = add_paired(summary);
    if (rank_ == 0 && (add_stage_seconds(summary) || paired))
      write_file_atomic(fs::path(out_) / "summary.json", summary.dump(2) + "\n");
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
  void write_pipeline_json() const {
    json pj = {{"command", args_.command_line}, {"config", config_to_yaml(plan_.shared)},
               {"started", static_cast<int64_t>(std::time(nullptr))}};
    std::vector<std::string> names;
    for (size_t i = 0; i < kStages.size(); ++i) names.push_back(stage_dir_name(i));
    pj["stages"] = names;
    write_file_atomic(fs::path(out_) / "pipeline.json", pj.dump(2) + "\n");
  }

  // Every stage's config, inputs and fingerprint (each chained to the one before it).
  void fingerprint_stages() {
    if (!args_.corpus.empty()) {
      std::string sums;
      for (auto& c : args_.corpus) sums += content_checksum(c);
      corpus_sum_ = hex64(fnv1a64(sums.data(), sums.size()));
    }
    std::string upstream;
    for (size_t i = 0; i < kStages.size(); ++i) {
      const std::string& st = kStages[i];
      StageFp f;
      f.cfg = stage_config(st, fs::path(out_) / stage_dir_name(i));
      f.config = normalised(st, f.cfg, out_);
      f.inputs = inputs_of(st);
      f.upstream = upstream;
      f.fingerprint = upstream = fingerprint_of(upstream, st, f.config, f.inputs);
      fps_.push_back(std::move(f));
    }
  }

  // Stage by stage: skipped when done with the same fingerprint, else (and every later one) redone.
  void run_stages() {
    bool invalidated = false;
    for (size_t i = 0; i < kStages.size(); ++i) {
      const std::string& st = kStages[i];
      const fs::path dir = fs::path(out_) / stage_dir_name(i);
      const Config& cfg = fps_[i].cfg;
      const std::string& fp = fps_[i].fingerprint;
      const fs::path done = dir / "DONE";
      // Every rank decides alike from the folder (rank 0 alone moves it aside): a rank other than
      // 0 must not skip a stage on an earlier run's DONE that rank 0 is about to move.
      if (fs::exists(dir / "stage.json") && (invalidated || !recorded(dir, fp))) {
        if (rank_ == 0) move_aside(i);
        invalidated = true;
      }
      if (fs::exists(done) && !invalidated) {
        summaries_[st] = json::parse(read_file(done), nullptr, false);
        spdlog::info("pipeline: {} done earlier; skipped", stage_dir_name(i));
        continue;
      }
      const bool all_ranks = st == "pretrain" || st == "sft" || st == "reward" || st == "ppo";
      if (rank_ == 0) {
        make_output_dir(dir, "stage folder");
        write_file_atomic(dir / "stage.json", json{{"fingerprint", fp},
                                                   {"stage", st},
                                                   {"after", fps_[i].upstream},
                                                   {"config", fps_[i].config},
                                                   {"inputs", fps_[i].inputs}}
                                                      .dump(1) +
                                                  "\n");
      }
      if (rank_ != 0 && !all_ranks) {
        wait_for(dir, fp);
        summaries_[st] = json::parse(read_file(done), nullptr, false);
        continue;
      }
      if (rank_ == 0) fs::remove(dir / "FAILED");  // an earlier run's failure: this run tries again
      InterruptMessage::stage(stage_dir_name(i));
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
  }

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
      // train: the problems SFT learned from; rl: the practice_extra ones SFT never saw; both.
      c.ppo.prompts = (O / "04-problems" / (c.pipeline.ppo_prompts == "train" ? "train.jsonl"
                                            : c.pipeline.ppo_prompts == "rl"  ? "rl.jsonl"
                                                                              : "train_and_rl.jsonl"))
                          .string();
      // U = alpha L_SFT + beta L_RLHF + gamma Omega: the SFT term on the SFT stage's own data.
      if (c.ppo.alpha > 0 && c.ppo.ptx_data.empty()) c.ppo.ptx_data = (O / "05-sft" / "data.jsonl").string();
    }
    return c;
  }

  // Content checksums of the user's input files a stage reads, by the flag that names them.
  std::map<std::string, std::string> inputs_of(const std::string& st) const {
    std::map<std::string, std::string> in;
    if (st == "tokenizer" || st == "data" || (st == "problems" && plan_.shared.pipeline.extract))
      in["--corpus"] = corpus_sum_;
    if (st == "sft" && !args_.demos.empty()) in["--demos"] = content_checksum(args_.demos);
    if (st == "prefs" && !args_.prefs.empty()) in["--prefs"] = content_checksum(args_.prefs);
    return in;
  }

  // Why stage i's recorded fingerprint (its stage.json) differs from this run's: "sft.optim.lr:
  // 0.001 -> 0.0005", "--demos content changed", or that a stage before it changed.
  std::string why_changed(size_t i, size_t first) const {
    const fs::path dir = fs::path(out_) / stage_dir_name(i);
    const json old = json::parse(read_file(dir / "stage.json"), nullptr, false);
    if (old.is_discarded() || !old.is_object() || !old.contains("config") || !old["config"].is_object())
      return "its stage.json is from an older codex-train or damaged";
    const StageFp& now = fps_[i];
    std::vector<std::string> why;
    std::set<std::string> keys;
    for (auto& [k, v] : now.config) keys.insert(k);
    for (auto it = old["config"].begin(); it != old["config"].end(); ++it) keys.insert(it.key());
    for (auto& k : keys) {
      const std::string a = old["config"].contains(k) && old["config"][k].is_string() ? old["config"][k].get<std::string>()
                                                                                     : "(unset)";
      const std::string b = now.config.count(k) ? now.config.at(k) : "(unset)";
      if (a == b) continue;
      const std::string shown = plan_.shown(kStages[i], k);
      if (a.rfind("content:", 0) == 0 && b.rfind("content:", 0) == 0) why.push_back(shown + " content changed");
      else why.push_back(shown + ": " + a + " -> " + b);
    }
    const json oin = old.value("inputs", json::object());
    std::set<std::string> flags;
    for (auto& [k, v] : now.inputs) flags.insert(k);
    for (auto it = oin.begin(); it != oin.end(); ++it) flags.insert(it.key());
    for (auto& f : flags) {
      const bool had = oin.contains(f), has = now.inputs.count(f) > 0;
      if (had && has && oin[f] != now.inputs.at(f)) why.push_back(f + " content changed");
      else if (had != has) why.push_back(f + (has ? " given" : " no longer given"));
    }
    if (why.empty())
      why.push_back(i > first ? "it follows " + stage_dir_name(first) + ", which is redone"
                              : "a stage before it changed");
    std::string out;
    for (auto& w : why) out += (out.empty() ? "" : "; ") + w;
    return out;
  }

  void move_aside(size_t from) {
    const fs::path aside = fs::path(out_) / ".invalidated" / std::to_string(std::time(nullptr));
    for (size_t i = from; i < kStages.size(); ++i) {
      const fs::path d = fs::path(out_) / stage_dir_name(i);
      if (!fs::exists(d)) continue;
      const std::string why = fs::exists(d / "stage.json") ? why_changed(i, from) : "it follows " + stage_dir_name(from);
      fs::create_directories(aside);
      fs::rename(d, aside / stage_dir_name(i));
      spdlog::warn("pipeline: {} no longer matches the config or its inputs ({}); moved to {} and redone",
                   stage_dir_name(i), why, (aside / stage_dir_name(i)).string());
    }
    fs::remove(fs::path(out_) / "summary.json");
  }

  // dir/stage.json records fingerprint fp (false when missing, unreadable or moved meanwhile).
  static bool recorded(const fs::path& dir, const std::string& fp) {
    try {
      const json j = json::parse(read_file(dir / "stage.json"), nullptr, false);
      return !j.is_discarded() && j.value("fingerprint", "") == fp;
    } catch (const std::exception&) {
      return false;
    }
  }

  // Until rank 0 has finished this run's stage: its DONE, under a stage.json of this fingerprint.
  void wait_for(const fs::path& dir, const std::string& fp) {
    while (!fs::exists(dir / "DONE") || !recorded(dir, fp)) {
      // A FAILED left by an earlier run (older than this one) is rank 0's to clear, not a failure now.
      std::error_code ec;
      const auto failed_at = fs::last_write_time(dir / "FAILED", ec);
      if (!ec && failed_at >= started_) throw RunError("pipeline: rank 0 failed in " + dir.filename().string());
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
    std::vector<Problem> train, heldout, rl;
    json s = json::object();
    if (c.pipeline.practice) {
      std::vector<std::string> a = {"data", "practice", "--out", (dir / "practice").string(), "--seed",
                                    std::to_string(c.pipeline.practice_seed), "--extra",
                                    std::to_string(c.pipeline.practice_extra), "--force"};
      if (c.pipeline.practice_rl_split) a.push_back("--rl-split");
      run_self(a, "data practice");
      train = read_problems((dir / "practice" / "train.jsonl").string());
      heldout = read_problems((dir / "practice" / "heldout.jsonl").string());
      if (practice_has_rl(c.pipeline)) rl = read_problems((dir / "practice" / "rl.jsonl").string());
      s["practice_train"] = train.size();
      s["practice_heldout"] = heldout.size();
      s["practice_rl"] = rl.size();
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
    write_problems((dir / "rl.jsonl").string(), rl);  // PPO only (pipeline.ppo_prompts): never SFT demos
    std::vector<Problem> both = train;
    both.insert(both.end(), rl.begin(), rl.end());
    write_problems((dir / "train_and_rl.jsonl").string(), both);
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
        path = eval::resolve_problems_path(c, "eval.problems");
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

  // summary["stage_seconds"]: each stage's wall time on rank 0 (from its DONE: a stage skipped as
  // done earlier keeps the time it took then) and their "total". Returns whether it changed.
  bool add_stage_seconds(json& summary) const {
    if (!summary.is_object()) return false;
    json secs = json::object();
    double total = 0;
    for (size_t i = 0; i < kStages.size(); ++i) {
      auto it = summaries_.find(kStages[i]);
      if (it == summaries_.end() || !it->second.is_object() || !it->second.contains("seconds") ||
          !it->second["seconds"].is_number())
        continue;
      const double v = it->second["seconds"].get<double>();
      secs[stage_dir_name(i)] = v;
      total += v;
    }
    if (secs.empty()) return false;
    secs["total"] = total;
    if (summary.contains("stage_seconds") && summary["stage_seconds"] == secs) return false;
    summary["stage_seconds"] = secs;
    return true;
  }

  json read_summary() {
    const fs::path p = fs::path(out_) / "summary.json";
    if (fs::exists(p)) return json::parse(read_file(p), nullptr, false);
    return json::object();
  }

  struct StageFp {
    Config cfg;
    std::map<std::string, std::string> config, inputs;
    std::string upstream, fingerprint;
  };

  PipelineArgs args_;
  Plan plan_;
  std::vector<StageFp> fps_;
  std::string corpus_sum_;
  std::string out_;
  int rank_ = 0;
  std::map<std::string, json> summaries_;
  fs::file_time_type started_ = fs::file_time_type::clock::now();  // a FAILED older than this is stale
};

// The entries of a folder, for messages: "report.html, summary.json, 01-tokenizer/ (+2 more)".
std::string folder_listing(const fs::path& dir, size_t* count) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n == ".lock") continue;  // a pipeline's own lock (one that died before writing pipeline.json)
    names.push_back(n + (e.is_directory(ec) ? "/" : ""));
  }
  std::sort(names.begin(), names.end());
  *count = names.size();
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += " (+" + std::to_string(names.size() - 5) + " more)";
  return out;
}

// Every input checked before anything is written to the output folder.
void check_inputs(const PipelineArgs& a, const Plan& p) {
  if (a.output_dir.empty()) throw UsageError("pipeline: --output-dir is required");
  if (fs::exists(a.output_dir) && !fs::is_directory(a.output_dir))
    throw UsageError("--output-dir '" + a.output_dir + "' is a file");
  // A folder of the user's (their report.html, summary.json, 01-tokenizer/) is never written into
  // unless they say so; a pipeline run (pipeline.json) resumes.
  if (fs::is_directory(a.output_dir) && !fs::exists(fs::path(a.output_dir) / "pipeline.json") && !a.force) {
    size_t n = 0;
    const std::string there = folder_listing(a.output_dir, &n);
    if (n > 0)
      throw UsageError("--output-dir '" + a.output_dir + "' is not empty and is not a pipeline run (it holds " + there +
                       "); choose a new or empty folder, or pass --force to use it anyway (files the pipeline "
                       "writes there are replaced)");
  }
  if (a.corpus.empty()) throw UsageError("pipeline: --corpus is required (directories, .py files or JSONL)");
  for (auto& c : a.corpus)
    if (!fs::exists(c)) throw UsageError("--corpus '" + c + "': does not exist");
  int64_t docs = 0;
  SkipCounts skipped;
  for_each_document(a.corpus, [&](Document&) { ++docs; }, skipped);
  if (docs == 0)
    throw UsageError("--corpus: no documents (no .py files, and no JSONL lines with a text or content field" +
                     std::string(skipped.binary > 0 ? "; " + std::to_string(skipped.binary) +
                                                          " binary files skipped: they contain NUL bytes"
                                                    : "") +
                     ")");
  if (!a.demos.empty()) (void)read_demos(a.demos);
  if (!a.prefs.empty()) (void)read_preferences(a.prefs);
  const PipelineConfig& pc = p.shared.pipeline;
  if (a.demos.empty() && !pc.practice && !pc.extract)
    throw UsageError("pipeline: the sft stage has no data: give --demos, or enable pipeline.practice or "
                     "pipeline.extract");
  if (pc.reward_model && a.prefs.empty() && !pc.prefs_from_execution)
    throw UsageError("pipeline: the reward stage has no preferences: give --prefs, set "
                     "pipeline.prefs_from_execution=true, or pipeline.reward_model=false");
  if (pc.ppo_prompts != "train" && !practice_has_rl(pc))
    throw UsageError("pipeline.ppo_prompts=" + pc.ppo_prompts + " needs the practice set's RL problems: set "
                     "pipeline.practice_extra > 0 or pipeline.practice_rl_split=true (with pipeline.practice=true)");
  if (!pc.reward_model && !pc.practice && !pc.extract)
    throw UsageError("pipeline: ppo has no reward: without a reward model it needs problems with tests "
                     "(pipeline.practice or pipeline.extract)");
  // Trainers that must take a step: M0 and M2 would not exist (found at the eval stage otherwise).
  for (const std::string st : {"pretrain", "ppo"}) {
    const Config c = p.for_stage(st);
    if (c.train.max_steps < 1)
      throw UsageError(p.shown(st, "train.max_steps") + "=" + std::to_string(c.train.max_steps) + ": the " + st +
                       " stage needs at least one step (it makes " + (st == "ppo" ? "M2" : "M0") + ")");
  }
  // Evaluation sets: practice, humaneval (the shipped file must be found), or a problems file.
  if (pc.eval_sets.empty()) throw UsageError("pipeline.eval_sets: empty; name at least one set (practice, humaneval)");
  const Config ev = p.for_stage("eval");
  for (const auto& entry : pc.eval_sets) {
    std::string set = entry;
    if (const auto colon = entry.rfind(':'); colon != std::string::npos && colon + 1 < entry.size() &&
                                              entry.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      set = entry.substr(0, colon);
      if (std::stoll(entry.substr(colon + 1)) < 1)
        throw UsageError("pipeline.eval_sets: '" + entry + "' asks for no samples");
    }
    if (set == "practice") {
      if (!pc.practice) throw UsageError("pipeline.eval_sets: 'practice' needs pipeline.practice=true");
    } else if (set == "humaneval") {
      (void)eval::resolve_problems_path(ev, "eval.problems");
    } else if (!fs::is_regular_file(set)) {
      const std::string near = cli::closest_name(set, {"practice", "humaneval"});
      throw UsageError("pipeline.eval_sets: '" + set + "' is not practice, humaneval or an existing problems file" +
                       (near.empty() ? std::string() : " (did you mean '" + near + "'?)"));
    } else {
      (void)eval::load_problems(set);
    }
  }
}

std::string absolute_path(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// A word as a POSIX shell reads it back: as is when it holds only safe characters, else in single quotes.
std::string shell_word(const std::string& w) {
  if (!w.empty() && w.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+=.,/:@%") ==
                        std::string::npos)
    return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run_pipeline_cmd(cli::Invocation& inv) {
  PipelineArgs a;
  a.corpus = inv.all("corpus");
  a.demos = inv.get("demos");
  a.prefs = inv.get("prefs");
  a.output_dir = inv.get("output-dir");
  a.config_path = inv.config_path;
  a.overrides = inv.overrides;
  a.force = inv.has("force");
  // The command as it can be rerun from any folder (the report's "reproduce"): absolute paths.
  a.command_line = "codex-train pipeline";
  for (auto& c : a.corpus) a.command_line += " --corpus " + shell_word(absolute_path(c));
  if (!a.demos.empty()) a.command_line += " --demos " + shell_word(absolute_path(a.demos));
  if (!a.prefs.empty()) a.command_line += " --prefs " + shell_word(absolute_path(a.prefs));
  if (!a.output_dir.empty()) a.command_line += " --output-dir " + shell_word(absolute_path(a.output_dir));
  if (!a.config_path.empty()) a.command_line += " --config " + shell_word(absolute_path(a.config_path));
  for (auto& o : a.overrides) a.command_line += " " + shell_word(o);
  if (a.force) a.command_line += " --force";
  json s = run_pipeline(a);
  std::cout << s.dump() << std::endl;
  return 0;
}

std::vector<std::string> owned_key_names() {
  std::vector<std::string> k;
  for (auto& [key, why] : pipeline_owned_keys()) k.push_back(key);
  return k;
}

cli::Registrar reg({"pipeline", "",
                    "every stage end to end: tokenizer -> data -> M0 -> problems -> M1 -> prefs -> reward -> M2 -> eval",
                    {{"corpus", true, "directory, .py file or JSONL(.gz) with text/content", "", true},
                     {"demos", true, "demonstrations JSONL {prompt, completion|response}"},
                     {"prefs", true, "preferences JSONL {prompt, chosen, rejected}"},
                     {"output-dir", true, "where every stage writes (rerun to resume)"},
                     {"force", false, "use an --output-dir that is not empty and not a pipeline run"}},
                    false, run_pipeline_cmd, {""}, owned_key_names()});

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
