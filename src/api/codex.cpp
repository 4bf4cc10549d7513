// The public C++ API (include/codex/codex.h) over the library functions the commands call.
// Each entry point builds a Config exactly as the command line would (struct fields first, then
// the caller's dotted overrides), runs the stage, and turns every internal error into codex::Error
// with the command line's message.
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "config/device.h"
#include "data/jsonl.h"
#include "generate/generate.h"
#include "rl/ppo.h"
#include "tokenizer/prepare.h"
#include "tokenizer/tokenizer.h"
#include "train/pretrain.h"
#include "train/reward.h"
#include "train/sequences.h"
#include "train/sft.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"
// Last: the internal headers above have their own codex::Demo / codex::Preference, which the
// API's inline-namespace types (codex::v1::Demo, ...) would make ambiguous inside them.
#include <codex/codex.h>

namespace codex {
inline namespace v1 {
namespace {

using json = nlohmann::json;

void ensure_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!spdlog::get("codex")) init_logging(false);
  });
}

// Runs f, rethrowing anything but codex::Error as codex::Error with the same message.
template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  ensure_logging();
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string(e.what()));
  } catch (...) {
    throw Error(std::string(what) + ": unknown failure");
  }
}

std::string make_run_dir(const std::string& given, const std::string& stage) {
  if (!given.empty()) {
    make_output_dir(given, stage + ": run_dir");
    return fs::absolute(given).lexically_normal().string();
  }
  std::string tmpl = (fs::temp_directory_path() / ("codex-" + stage + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw Error(stage + ": cannot create a temporary run folder " + tmpl);
  return tmpl;
}

// A YAML scalar that survives any path (JSON strings are YAML).
std::string yaml_str(const std::string& s) { return json(s).dump(); }
std::string num(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}

// Struct fields first, then the caller's overrides (which win).
Config build_config(std::vector<std::string> base, const std::map<std::string, std::string>& overrides,
                    std::set<std::string>* user_keys = nullptr) {
  for (const auto& [k, v] : overrides) {
    base.push_back(k + "=" + v);
    if (user_keys) user_keys->insert(k);
  }
  return load_config("", base);
}

std::vector<std::string> overrides_list(std::vector<std::string> base, const std::map<std::string, std::string>& o) {
  for (const auto& [k, v] : o) base.push_back(k + "=" + v);
  return base;
}

// "... Please set it to a value <= 371." -> 371 (SentencePiece's message when a corpus cannot
// yield vocab_size pieces); 0 when the message says something else.
int64_t supported_vocab(const std::string& message) {
  std::smatch m;
  static const std::regex re("<= *([0-9]+)");
  if (std::regex_search(message, m, re)) return std::stoll(m[1].str());
  return 0;
}

// Tokenizer training; a corpus too small for tokenizer.vocab_size gets the largest vocabulary it
// supports instead (said in one line), unless the caller set the size explicitly.
void train_tokenizer_fitting(Config& cfg, const std::string& out, bool size_given) {
  try {
    train_tokenizer(cfg, out);
  } catch (const UsageError& e) {
    const int64_t fits = supported_vocab(e.what());
    if (size_given || fits <= 0 || fits >= cfg.tokenizer.vocab_size) throw;
    spdlog::warn("tokenizer: the corpus supports at most {} tokens; tokenizer.vocab_size shrunk from {} to {}", fits,
                 cfg.tokenizer.vocab_size, fits);
    cfg.tokenizer.vocab_size = fits;
    train_tokenizer(cfg, out);
  }
}

// Runs the pretraining stage on a resolved config; returns the final checkpoint folder.
std::string run_pretrain_stage(const Config& cfg) {
  const json summary = codex::pretrain(cfg);
  std::string ck = summary.value("checkpoint", std::string());
  if (ck.empty()) throw Error("pretrain: the run wrote no checkpoint (train.max_steps=0?)");
  return fs::canonical(ck).string();
}

// The model a reward trunk starts from by default: the last one sft() returned in this process,
// else the last one pretrain() returned (InstructGPT / the seeds: the reward model starts from
// the supervised model). Set by those two functions.
struct LastModels {
  std::mutex mu;
  std::string sft, pretrain;
};
LastModels& last_models() {
  static LastModels m;
  return m;
}

struct Loaded {
  LoadedModel lm;
  std::unique_ptr<Tokenizer> tok;
};

Loaded load(const Weights& w, const char* what) {
  if (w.dir.empty()) throw Error(std::string(what) + ": the model has no weights folder (Weights::dir is empty)");
  Loaded l{load_model(w.dir), nullptr};
  if (l.lm.tokenizer_path.empty()) throw Error(std::string(what) + ": " + l.lm.dir + " holds no tokenizer");
  l.tok = std::make_unique<Tokenizer>(l.lm.tokenizer_path);
  return l;
}

}  // namespace

// ---- ModelHandle ------------------------------------------------------------------------------

std::string ModelHandle::generate(const std::string& prompt, int64_t max_new_tokens, double temperature) const {
  return guarded("generate", [&] {
    if (max_new_tokens < 1) throw Error("generate: max_new_tokens must be >= 1, got " + std::to_string(max_new_tokens));
    if (!(temperature >= 0)) throw Error("generate: temperature must be >= 0, got " + num(temperature));
    Loaded l = load(weights, "generate");
    SamplingOptions opt = SamplingOptions::from(l.lm.config.generate, static_cast<uint64_t>(l.lm.config.run.seed));
    opt.temperature = temperature;
    opt.max_new_tokens = max_new_tokens;
    for (const auto& d : disallowed)
      if (!d.empty() && std::find(opt.disallowed.begin(), opt.disallowed.end(), d) == opt.disallowed.end())
        opt.disallowed.push_back(d);
    auto samples = codex::generate(l.lm.model, *l.tok, {prompt}, 1, opt);
    return samples.empty() ? std::string() : samples.front().text;
  });
}

std::vector<int64_t> ModelHandle::tokenize(const std::string& text) const {
  return guarded("tokenize", [&] {
    if (weights.dir.empty()) throw Error("tokenize: the model has no weights folder (Weights::dir is empty)");
    std::string path = tokenizer_file_in(weights.dir);
    if (path.empty()) path = load_model(weights.dir).tokenizer_path;  // a run folder: its latest checkpoint
    if (path.empty()) throw Error("tokenize: " + weights.dir + " holds no tokenizer");
    Tokenizer tok(path);
    auto ids = tok.encode(text);
    return std::vector<int64_t>(ids.begin(), ids.end());
  });
}

void ModelHandle::save(const std::string& dir) const {
  guarded("save", [&] {
    if (dir.empty()) throw Error("save: no folder given");
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) throw Error("save: '" + dir + "' is a file");
    if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec) && !fs::exists(fs::path(dir) / "MANIFEST.json", ec))
      throw Error("save: '" + dir + "' is not empty and holds no checkpoint; choose another folder (nothing was changed)");
    Loaded l = load(weights, "save");
    Config cfg = l.lm.config;
    for (const auto& d : disallowed)
      if (std::find(cfg.generate.disallowed.begin(), cfg.generate.disallowed.end(), d) == cfg.generate.disallowed.end())
        cfg.generate.disallowed.push_back(d);
    save_model_checkpoint(dir, l.lm.model, cfg, l.lm.tokenizer_path);
  });
}

std::vector<int64_t> tokenize(const std::string& text, const ModelHandle& model) { return model.tokenize(text); }

// ---- pretrain -----------------------------------------------------------------------------------

ModelHandle pretrain(const std::vector<std::string>& corpus, const PretrainCfg& pc) {
  return guarded("pretrain", [&] {
    size_t nonempty = 0;
    for (const auto& d : corpus) nonempty += !d.empty();
    if (nonempty == 0) throw Error("pretrain: the corpus is empty (give at least one non-empty document)");
    if (pc.steps < 1) throw Error("pretrain: steps must be >= 1, got " + std::to_string(pc.steps));
    // Its tokenizer, data and checkpoints would be replaced: refused before anything is written.
    for (const char* held : {"checkpoints", "tokenizer.model", "data"})
      if (!pc.run_dir.empty() && fs::exists(fs::path(pc.run_dir) / held))
        throw Error("pretrain: run_dir '" + pc.run_dir + "' already holds a run (" + held +
                    "); choose another run_dir (nothing was changed)");
    const std::string run = make_run_dir(pc.run_dir, "pretrain");

    // the corpus as a JSONL file ({"text": ...} per document), what `data prepare` reads
    const std::string corpus_path = (fs::path(run) / "corpus.jsonl").string();
    std::string jsonl;
    for (const auto& d : corpus)
      if (!d.empty()) jsonl += json{{"text", d}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    write_file_atomic(corpus_path, jsonl);

    std::vector<std::string> base = {"run.dir=" + yaml_str(run),
                                     "run.seed=" + std::to_string(pc.seed),
                                     "tokenizer.input=[" + yaml_str(corpus_path) + "]",
                                     "data.input=[" + yaml_str(corpus_path) + "]",
                                     "train.data=" + yaml_str((fs::path(run) / "data").string()),
                                     "train.max_steps=" + std::to_string(pc.steps),
                                     "optim.lr=" + num(pc.lr)};
    std::set<std::string> user;
    Config cfg = build_config(base, pc.overrides, &user);

    // tokenizer, shrunk to what the corpus supports
    train_tokenizer_fitting(cfg, (fs::path(run) / "tokenizer.model").string(), user.count("tokenizer.vocab_size") > 0);
    // data
    json stats = prepare_data(cfg);
    const int64_t train_tokens = stats["tokens"].value("train", int64_t{0});
    const int64_t val_tokens = stats["tokens"].value("val", int64_t{0});

    // A tiny corpus: a shorter context and no val loss rather than an error (unless asked for).
    std::vector<std::string> fit;
    if (!user.count("model.block_size") && train_tokens - 1 < cfg.model.block_size) {
      if (train_tokens < 3) throw Error("pretrain: the corpus has only " + std::to_string(train_tokens) +
                                        " training tokens; give it more text");
      spdlog::warn("pretrain: the corpus has {} training tokens; model.block_size lowered from {} to {}", train_tokens,
                   cfg.model.block_size, train_tokens - 1);
      fit.push_back("model.block_size=" + std::to_string(train_tokens - 1));
    }
    const int64_t block = fit.empty() ? cfg.model.block_size : train_tokens - 1;
    if (!user.count("train.eval_every") && cfg.train.eval_every > 0 && val_tokens < block + 1) {
      spdlog::warn("pretrain: the val split has {} tokens (fewer than block_size + 1 = {}); no val loss "
                   "(train.eval_every=0)",
                   val_tokens, block + 1);
      fit.push_back("train.eval_every=0");
    }
    // the final config: struct fields, the fitted keys, then the caller's overrides (they win)
    std::vector<std::string> all = base;
    all.insert(all.end(), fit.begin(), fit.end());
    all = overrides_list(all, pc.overrides);
    Config final_cfg = load_config("", all);
    const std::string ck = run_pretrain_stage(final_cfg);
    {
      std::lock_guard<std::mutex> lock(last_models().mu);
      last_models().pretrain = ck;
    }
    return ModelHandle{Weights{ck}, {}};
  });
}

// ---- fine-tuning: SFT, reward model, PPO ----------------------------------------------------------

namespace {

// The checkpoint a trainer's summary names, else its run folder's latest.
std::string final_checkpoint(const json& summary, const std::string& run) {
  std::string ck = summary.is_object() ? summary.value("checkpoint", std::string()) : std::string();
  return fs::canonical(ck.empty() ? resolve_checkpoint(run) : ck).string();
}

void write_jsonl(const std::string& path, const std::vector<json>& rows) {
  std::string text;
  for (const auto& r : rows) text += r.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic(path, text);
}

}  // namespace

ModelHandle sft(const ModelHandle& model, const std::vector<Demo>& demos, const SFTCfg& cfg) {
  return guarded("sft", [&]() -> ModelHandle {
    if (demos.empty()) throw Error("sft: the demos list is empty");
    if (cfg.epochs < 1) throw Error("sft: epochs must be >= 1, got " + std::to_string(cfg.epochs));
    if (model.weights.dir.empty()) throw Error("sft: the model has no weights folder (Weights::dir is empty)");
    const std::string run = make_run_dir(cfg.run_dir, "sft");
    const std::string data = (fs::path(run) / "demos.jsonl").string();
    std::vector<json> rows;
    for (const auto& d : demos) rows.push_back({{"prompt", d.prompt}, {"completion", d.response}});
    write_jsonl(data, rows);
    const std::vector<std::string> all = overrides_list(
        {"run.dir=" + yaml_str(run), "run.seed=" + std::to_string(cfg.seed), "sft.init=" + yaml_str(model.weights.dir),
         "sft.data=" + yaml_str(data), "sft.epochs=" + std::to_string(cfg.epochs), "optim.lr=" + num(cfg.lr)},
        cfg.overrides);
    const json summary = codex::sft(load_config("", all));
    const std::string ck = final_checkpoint(summary, run);
    {
      std::lock_guard<std::mutex> lock(last_models().mu);
      last_models().sft = ck;
    }
    return ModelHandle{Weights{ck}, model.disallowed};
  });
}

RewardModelHandle train_reward_model(const std::vector<Preference>& prefs, const RewardModelCfg& cfg) {
  return guarded("train_reward_model", [&]() -> RewardModelHandle {
    if (prefs.empty()) throw Error("train_reward_model: the preferences list is empty");
    if (cfg.epochs < 1) throw Error("train_reward_model: epochs must be >= 1, got " + std::to_string(cfg.epochs));
    // Where the reward trunk starts: overrides["reward.init"] when given, else the last model
    // sft() returned in this process, else the last one pretrain() returned.
    std::vector<std::string> start;
    auto init = cfg.overrides.find("reward.init");
    if (init == cfg.overrides.end() || init->second.empty()) {
      std::string from, which;
      {
        std::lock_guard<std::mutex> lock(last_models().mu);
        from = !last_models().sft.empty() ? last_models().sft : last_models().pretrain;
        which = !last_models().sft.empty() ? "sft()" : "pretrain()";
      }
      if (from.empty())
        throw Error("train_reward_model: no model to start the reward trunk from: call sft() (or pretrain()) first in "
                    "this process, or set overrides[\"reward.init\"] to a weights folder (e.g. the SFT model's "
                    "weights.dir)");
      spdlog::info("train_reward_model: the reward trunk starts from {} (the last model {} returned; "
                   "overrides[\"reward.init\"] chooses another)", from, which);
      start.push_back("reward.init=" + yaml_str(from));
    }
    const std::string run = make_run_dir(cfg.run_dir, "reward");
    const std::string data = (fs::path(run) / "prefs.jsonl").string();
    std::vector<json> rows;
    for (const auto& p : prefs) rows.push_back({{"prompt", p.prompt}, {"chosen", p.chosen}, {"rejected", p.rejected}});
    write_jsonl(data, rows);
    std::vector<std::string> all =
        overrides_list({"run.dir=" + yaml_str(run), "run.seed=" + std::to_string(cfg.seed),
                        "reward.data=" + yaml_str(data), "reward.epochs=" + std::to_string(cfg.epochs),
                        "optim.lr=" + num(cfg.lr)},
                       cfg.overrides);
    all.insert(all.end(), start.begin(), start.end());
    const json summary = codex::train_reward(load_config("", all));
    return RewardModelHandle{Weights{final_checkpoint(summary, run)}};
  });
}

double RewardModelHandle::score(const std::string& prompt, const std::string& completion) const {
  return guarded("score", [&]() -> double {
    if (weights.dir.empty()) throw Error("score: the reward model has no weights folder (Weights::dir is empty)");
    LoadedModel lm = load_model(weights.dir);
    if (!lm.model->has_head("reward_head")) throw Error("score: " + lm.dir + " has no reward head (not a reward model)");
    if (lm.tokenizer_path.empty()) throw Error("score: " + lm.dir + " holds no tokenizer");
    Tokenizer tok(lm.tokenizer_path);
    torch::NoGradGuard no_grad;
    lm.model->eval();
    Sequence seq = make_sequence(tok, prompt, completion);
    return score_sequences(lm.model, {&seq}, tok, torch::kCPU).to(torch::kCPU)[0].item<double>();
  });
}

ModelHandle rlhf_ppo(const ModelHandle& model, const RewardModelHandle& rm, const RLHFCfg& cfg) {
  return guarded("rlhf_ppo", [&]() -> ModelHandle {
    if (cfg.steps < 1) throw Error("rlhf_ppo: steps must be >= 1, got " + std::to_string(cfg.steps));
    if (model.weights.dir.empty()) throw Error("rlhf_ppo: the model has no weights folder (Weights::dir is empty)");
    if (rm.weights.dir.empty()) throw Error("rlhf_ppo: the reward model has no weights folder (Weights::dir is empty)");
    const std::string run = make_run_dir(cfg.run_dir, "ppo");
    // The prompts: overrides["ppo.prompts"] when given, else those the reward model was trained on.
    std::vector<std::string> base = {"run.dir=" + yaml_str(run), "run.seed=" + std::to_string(cfg.seed),
                                     "ppo.init=" + yaml_str(model.weights.dir),
                                     "ppo.reward_model=" + yaml_str(rm.weights.dir),
                                     "ppo.kl.coef=" + num(cfg.kl_coef), "train.max_steps=" + std::to_string(cfg.steps),
                                     "optim.lr=" + num(cfg.lr)};
    if (!cfg.overrides.count("ppo.prompts")) {
      const Config rm_cfg = load_model(rm.weights.dir).config;
      if (rm_cfg.reward.data.empty() || !fs::exists(rm_cfg.reward.data))
        throw Error("rlhf_ppo: set overrides[\"ppo.prompts\"] (the reward model's preference file is not at hand)");
      std::vector<json> rows;
      std::set<std::string> seen;
      for (const auto& p : read_preferences(rm_cfg.reward.data))
        if (seen.insert(p.prompt).second) rows.push_back({{"prompt", p.prompt}});
      const std::string prompts = (fs::path(run) / "prompts.jsonl").string();
      write_jsonl(prompts, rows);
      base.push_back("ppo.prompts=" + yaml_str(prompts));
    }
    const json summary = codex::ppo(load_config("", overrides_list(base, cfg.overrides)));
    return ModelHandle{Weights{final_checkpoint(summary, run)}, model.disallowed};
  });
}

}  // namespace v1
}  // namespace codex
