#include "config/config.h"

#include <spdlog/fmt/fmt.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <variant>

#include "util/error.h"
#include "util/fs.h"
#include "util/text.h"

namespace codex {
namespace {

using Ptr = std::variant<int64_t*, double*, bool*, std::string*, std::vector<std::string>*,
                         std::vector<int64_t>*>;

struct Field {
  std::string key;
  Ptr ptr;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  std::vector<std::string> choices;  // for strings: allowed values (empty = any)
};

constexpr double kInf = std::numeric_limits<double>::infinity();

// Every key registered here also needs a one-line description in key_docs.cpp (a test checks).
std::vector<Field> fields(Config& c) {
  return {
      {"run.dir", &c.run.dir},
      {"run.seed", &c.run.seed, 0, 9.2e18},
      {"run.threads", &c.run.threads, 0, 1024},
      {"run.device", &c.run.device, -kInf, kInf, {"auto", "cpu", "cuda"}},
      {"tokenizer.input", &c.tokenizer.input},
      {"tokenizer.vocab_size", &c.tokenizer.vocab_size, 300, 1 << 20},
      {"tokenizer.whitespace_runs", &c.tokenizer.whitespace_runs},
      {"tokenizer.max_train_bytes", &c.tokenizer.max_train_bytes, 1000, 1e12},
      {"tokenizer.max_piece_length", &c.tokenizer.max_piece_length, 2, 64},
      {"data.input", &c.data.input},
      {"data.tokenizer", &c.data.tokenizer},
      {"data.val_fraction", &c.data.val_fraction, 0, 0.5},
      {"data.max_file_bytes", &c.data.max_file_bytes, 1, 1e12},
      {"data.max_avg_line_length", &c.data.max_avg_line_length, 1, 1e9},
      {"data.max_line_length", &c.data.max_line_length, 1, 1e12},
      {"data.min_alnum_fraction", &c.data.min_alnum_fraction, 0, 1},
      {"data.generated_header_lines", &c.data.generated_header_lines, 0, 1e6},
      {"data.shard_tokens", &c.data.shard_tokens, 1, 1e12},
      {"model.preset", &c.model.preset, -kInf, kInf, {"", "tiny", "small", "gpt2-124m", "llama-tiny", "qwen2-0.5b"}},
      {"model.n_layer", &c.model.n_layer, 1, 256},
      {"model.n_head", &c.model.n_head, 1, 256},
      {"model.n_embd", &c.model.n_embd, 1, 65536},
      {"model.block_size", &c.model.block_size, 2, 1 << 20},
      {"model.vocab_size", &c.model.vocab_size, 0, 1 << 24},
      {"model.dropout", &c.model.dropout, 0, 0.99},
      {"model.bias", &c.model.bias},
      {"model.attention", &c.model.attention, -kInf, kInf, {"auto", "fused", "reference"}},
      {"model.arch", &c.model.arch, -kInf, kInf, {"gpt2", "llama"}},
      {"model.n_kv_head", &c.model.n_kv_head, 0, 256},
      {"model.intermediate_size", &c.model.intermediate_size, 0, 1 << 20},
      {"model.rope_theta", &c.model.rope_theta, 1, 1e12},
      {"model.norm_eps", &c.model.norm_eps, 1e-12, 0.1},
      {"model.qkv_bias", &c.model.qkv_bias},
      {"model.tie_embeddings", &c.model.tie_embeddings},
      {"train.data", &c.train.data},
      {"train.batch_size", &c.train.batch_size, 1, 1 << 20},
      {"train.grad_accum", &c.train.grad_accum, 1, 1 << 20},
      {"train.max_steps", &c.train.max_steps, 0, 1e12},
      {"train.log_every", &c.train.log_every, 1, 1e12},
      {"train.eval_every", &c.train.eval_every, 0, 1e12},
      {"train.eval_batches", &c.train.eval_batches, 1, 1e9},
      {"train.checkpoint_every", &c.train.checkpoint_every, 0, 1e12},
      {"train.keep_checkpoints", &c.train.keep_checkpoints, 1, 1e6},
      {"train.grad_clip", &c.train.grad_clip, 0, 1e9},
      {"train.init_from", &c.train.init_from},
      {"train.dtype", &c.train.dtype, -kInf, kInf, {"auto", "fp32", "bf16"}},
      {"train.fused_loss", &c.train.fused_loss},
      {"train.tf32", &c.train.tf32},
      {"train.patience", &c.train.patience, 0, 1e9},
      {"optim.lr", &c.optim.lr, 0, 10},
      {"optim.min_lr_ratio", &c.optim.min_lr_ratio, 0, 1},
      {"optim.weight_decay", &c.optim.weight_decay, 0, 10},
      {"optim.warmup_steps", &c.optim.warmup_steps, 0, 1e12},
      {"optim.beta1", &c.optim.beta1, 0, 0.999999},
      {"optim.beta2", &c.optim.beta2, 0, 0.999999},
      {"optim.eps", &c.optim.eps, 0, 1},
      {"dist.backend", &c.dist.backend, -kInf, kInf, {"auto", "gloo", "nccl"}},
      {"dist.timeout_s", &c.dist.timeout_s, 1, 1e6},
      {"dist.zero1", &c.dist.zero1},
      {"dist.bucket_mb", &c.dist.bucket_mb, 0.001, 1e4},
      {"generate.n", &c.generate.n, 1, 1e6},
      {"generate.temperature", &c.generate.temperature, 0, 100},
      {"generate.top_p", &c.generate.top_p, 1e-6, 1},
      {"generate.top_k", &c.generate.top_k, 0, 1 << 24},
      {"generate.max_new_tokens", &c.generate.max_new_tokens, 0, 1 << 20},
      {"generate.stop", &c.generate.stop},
      {"generate.disallowed", &c.generate.disallowed},
      {"generate.kv_cache", &c.generate.kv_cache},
      {"generate.batch_size", &c.generate.batch_size, 1, 1 << 16},
      {"eval.problems", &c.eval.problems},
      {"eval.n", &c.eval.n, 1, 1e6},
      {"eval.k", &c.eval.k},
      {"eval.timeout", &c.eval.timeout, 0.01, 3600},
      {"eval.workers", &c.eval.workers, 0, 1024},
      {"eval.sandbox", &c.eval.sandbox, -kInf, kInf, {"bwrap", "rlimits-only"}},
      {"eval.temperature", &c.eval.temperature, 0, 100},
      {"eval.top_p", &c.eval.top_p, 1e-6, 1},
      {"eval.max_new_tokens", &c.eval.max_new_tokens, 1, 1 << 20},
      {"eval.limit", &c.eval.limit, 0, 1e9},
      {"sft.init", &c.sft.init},
      {"sft.data", &c.sft.data},
      {"sft.val_data", &c.sft.val_data},
      {"sft.val_fraction", &c.sft.val_fraction, 0, 0.9},
      {"sft.task", &c.sft.task, -kInf, kInf, {"code", "docstring"}},
      {"sft.mask_prompt", &c.sft.mask_prompt},
      {"sft.epochs", &c.sft.epochs, 1, 1e6},
      {"sft.lr_ratio", &c.sft.lr_ratio, 0, 100},
      {"sft.sort_by_length", &c.sft.sort_by_length},
      {"reward.init", &c.reward.init},
      {"reward.data", &c.reward.data},
      {"reward.val_data", &c.reward.val_data},
      {"reward.val_fraction", &c.reward.val_fraction, 0, 0.9},
      {"reward.margin", &c.reward.margin, -1e6, 1e6},
      {"reward.center_coef", &c.reward.center_coef, 0, 1e6},
      {"reward.epochs", &c.reward.epochs, 1, 1e6},
      {"ppo.init", &c.ppo.init},
      {"ppo.ref", &c.ppo.ref},
      {"ppo.reward_model", &c.ppo.reward_model},
      {"ppo.value_init", &c.ppo.value_init},
      {"ppo.prompts", &c.ppo.prompts},
      {"ppo.problems", &c.ppo.problems},
      {"ppo.advantage", &c.ppo.advantage, -kInf, kInf, {"gae", "grpo", "rloo"}},
      {"ppo.kl.coef", &c.ppo.kl.coef, 0, 1e6},
      {"ppo.kl.target", &c.ppo.kl.target, 0, 1e6},
      {"ppo.kl.horizon", &c.ppo.kl.horizon, 1, 1e12},
      {"ppo.kl.estimator", &c.ppo.kl.estimator, -kInf, kInf, {"k1", "k3"}},
      {"ppo.rollout.prompts_per_step", &c.ppo.rollout.prompts_per_step, 1, 1e6},
      {"ppo.rollout.samples_per_prompt", &c.ppo.rollout.samples_per_prompt, 1, 1e6},
      {"ppo.rollout.max_new_tokens", &c.ppo.rollout.max_new_tokens, 1, 1 << 20},
      {"ppo.rollout.temperature", &c.ppo.rollout.temperature, 1e-3, 100},
      {"ppo.safety.patterns", &c.ppo.safety.patterns},
      {"ppo.safety.no_eos_penalty", &c.ppo.safety.no_eos_penalty, 0, 1e6},
      {"ppo.clip", &c.ppo.clip, 0, 10},
      {"ppo.clip_value", &c.ppo.clip_value, 0, 1e6},
      {"ppo.vf_coef", &c.ppo.vf_coef, 0, 1e6},
      {"ppo.entropy_coef", &c.ppo.entropy_coef, 0, 1e6},
      {"ppo.gamma_discount", &c.ppo.gamma_discount, 0, 1},
      {"ppo.lam", &c.ppo.lam, 0, 1},
      {"ppo.epochs", &c.ppo.epochs, 1, 1e6},
      {"ppo.minibatches", &c.ppo.minibatches, 1, 1e6},
      {"ppo.w_rm", &c.ppo.w_rm, -1e6, 1e6},
      {"ppo.w_exec", &c.ppo.w_exec, -1e6, 1e6},
      {"ppo.exec_reward", &c.ppo.exec_reward, -kInf, kInf, {"outcome", "partial"}},
      {"ppo.alpha", &c.ppo.alpha, 0, 1e6},
      {"ppo.beta", &c.ppo.beta, 0, 1e6},
      {"ppo.gamma", &c.ppo.gamma, 0, 1e6},
      {"ppo.ptx_data", &c.ppo.ptx_data},
      {"ppo.whiten", &c.ppo.whiten},
      {"ppo.value_lr_ratio", &c.ppo.value_lr_ratio, 0, 1e6},
      {"pipeline.practice", &c.pipeline.practice},
      {"pipeline.practice_seed", &c.pipeline.practice_seed, 0, 9.2e18},
      {"pipeline.practice_extra", &c.pipeline.practice_extra, 0, 1000},
      {"pipeline.practice_rl_split", &c.pipeline.practice_rl_split},
      {"pipeline.ppo_prompts", &c.pipeline.ppo_prompts, -kInf, kInf, {"train", "rl", "both"}},
      {"pipeline.extract", &c.pipeline.extract},
      {"pipeline.prefs_from_execution", &c.pipeline.prefs_from_execution},
      {"pipeline.prefs_n", &c.pipeline.prefs_n, 2, 1e6},
      {"pipeline.prefs_max_pairs", &c.pipeline.prefs_max_pairs, 1, 1e6},
      {"pipeline.prefs_temperature", &c.pipeline.prefs_temperature, 0, 100},
      {"pipeline.eval_sets", &c.pipeline.eval_sets},
      {"pipeline.humaneval_limit", &c.pipeline.humaneval_limit, 0, 1e9},
      {"pipeline.reward_model", &c.pipeline.reward_model},
      {"problems.input", &c.problems.input},
      {"problems.max_tests", &c.problems.max_tests, 1, 1e6},
      {"problems.decontam_ngram", &c.problems.decontam_ngram, 1, 1e6},
      {"problems.eval_sets", &c.problems.eval_sets},
      {"problems.timeout", &c.problems.timeout, 0.1, 3600},
      {"problems.trace_timeout", &c.problems.trace_timeout, 1, 86400},
      {"resume", &c.resume},
      {"overwrite", &c.overwrite},
  };
}

std::string leaf_of(const std::string& key) {
  auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string nearest_key(const std::string& key) {
  Config tmp;
  std::string best;
  size_t bd = SIZE_MAX;
  const std::string leaf = leaf_of(key);
  for (auto& f : fields(tmp)) {
    // The full key, and the last components against each other (+1 for the other section):
    // "lr" and "train.lr" both find "optim.lr", "eval.temp" finds "eval.temperature" via prefix.
    size_t d = edit_distance(key, f.key);
    const std::string fleaf = leaf_of(f.key);
    d = std::min(d, edit_distance(leaf, fleaf) + (key.substr(0, key.size() - leaf.size()) ==
                                                          f.key.substr(0, f.key.size() - fleaf.size())
                                                      ? 0
                                                      : 1));
    const bool same_section = key.size() - leaf.size() == f.key.size() - fleaf.size() &&
                              key.compare(0, key.size() - leaf.size(), f.key, 0, f.key.size() - fleaf.size()) == 0;
    if (leaf.size() >= 3 && fleaf.rfind(leaf, 0) == 0) d = std::min<size_t>(d, same_section ? 1 : 2);  // a prefix
    if (d < bd) bd = d, best = f.key;
  }
  // A suggestion only when it is close: "foo" is not a typo of anything.
  return bd <= std::max<size_t>(2, leaf.size() / 3) ? best : std::string();
}

// "did you mean 'optim.lr'?" or, with nothing close, the sections there are; `optim` alone is a
// section, not a key.
std::string suggestion(const std::string& key, const std::string& shown = "") {
  Config tmp;
  std::set<std::string> sections;
  for (auto& f : fields(tmp)) {
    auto dot = f.key.find('.');
    if (dot != std::string::npos) sections.insert(f.key.substr(0, dot));
  }
  if (sections.count(key))
    return "'" + shown + key + "' is a section: set one of its keys, e.g. " + shown + key + ".<name>";
  if (key.find('.') == std::string::npos)
    for (auto& s : sections)
      if (key.rfind(s, 0) == 0 || edit_distance(key, s) <= key.size() / 3)
        return "did you mean the section '" + s + "'?";
  std::string near = nearest_key(key);
  if (!near.empty()) return "did you mean '" + shown + near + "'?";
  std::string list;
  for (auto& s : sections) list += (list.empty() ? "" : ", ") + s;
  return "keys are <section>.<name> with sections " + list + "; `codex-train config show` lists them all";
}

// "FILE:LINE: " prefix for messages about a YAML node.
std::string where(const std::string& origin, const YAML::Node& n) {
  if (origin.empty()) return "";
  auto m = n.Mark();
  if (m.line < 0) return origin + ": ";
  return origin + ":" + std::to_string(m.line + 1) + ": ";
}

std::string scalar_kind(const Ptr& p) {
  switch (p.index()) {
    case 0: return "an integer";
    case 1: return "a number";
    case 2: return "true or false";
    case 3: return "a string";
    case 4: return "a list of strings (or one string)";
    default: return "a list of integers";
  }
}

void check_range(const Field& f, double v, const std::string& at, const std::string& shown) {
  if (!(v >= f.lo && v <= f.hi)) {
    std::ostringstream ss;
    ss << at << shown << f.key << ": value " << v << " out of range [" << f.lo << ", " << f.hi << "]";
    throw UsageError(ss.str());
  }
}

// `shown` prefixes the key in messages: the key as the user wrote it ("ppo." + "train.max_steps").
// A string key with a fixed set of values: anything else is refused, naming them all.
void check_choice(const Field& f, const std::string& value, const std::string& at, const std::string& shown) {
  if (f.choices.empty() || std::find(f.choices.begin(), f.choices.end(), value) != f.choices.end()) return;
  std::string all;
  for (auto& c : f.choices) all += (all.empty() ? "" : ", ") + (c.empty() ? "\"\"" : c);
  throw UsageError(at + shown + f.key + ": '" + value + "' is not one of: " + all);
}

void set_field(Config& cfg, Field& f, const YAML::Node& n, const std::string& at, const std::string& shown) {
  auto bad = [&]() {
    throw UsageError(at + shown + f.key + ": expected " + scalar_kind(f.ptr));
  };
  try {
    switch (f.ptr.index()) {
      case 0: {
        if (!n.IsScalar()) bad();
        // accept 1e6-style integers, reject 1.5
        double d = n.as<double>();
        if (d != std::floor(d) || std::abs(d) > 9.2e18) bad();
        check_range(f, d, at, shown);
        *std::get<0>(f.ptr) = static_cast<int64_t>(d);
        break;
      }
      case 1: {
        if (!n.IsScalar()) bad();
        double d = n.as<double>();
        check_range(f, d, at, shown);
        *std::get<1>(f.ptr) = d;
        break;
      }
      case 2:
        if (!n.IsScalar()) bad();
        if (f.key == "resume") cfg.resume_must = n.Scalar() == "must";  // resume=must: a run must be there
        *std::get<2>(f.ptr) = cfg.resume_must || n.as<bool>();
        break;
      case 3:
        if (!n.IsScalar() && !n.IsNull()) bad();
        *std::get<3>(f.ptr) = n.IsNull() ? "" : n.as<std::string>();
        check_choice(f, *std::get<3>(f.ptr), at, shown);
        break;
      case 4: {
        auto* v = std::get<4>(f.ptr);
        v->clear();
        if (n.IsNull()) break;
        if (n.IsScalar()) {
          v->push_back(n.as<std::string>());
        } else if (n.IsSequence()) {
          for (auto e : n) {
            if (!e.IsScalar()) bad();
            v->push_back(e.as<std::string>());
          }
        } else {
          bad();
        }
        break;
      }
      case 5: {
        auto* v = std::get<5>(f.ptr);
        v->clear();
        auto one = [&](const YAML::Node& e) {
          if (!e.IsScalar()) bad();
          double d = e.as<double>();
          if (!std::isfinite(d) || d != std::floor(d)) bad();
          if (d < 1 || d > 1e6)
            throw UsageError(at + shown + f.key + ": every value must be an integer in [1, 1000000], got " + e.as<std::string>());
          v->push_back(static_cast<int64_t>(d));
        };
        if (n.IsScalar()) {
          // "1,10,100" is accepted as well as [1, 10, 100]
          std::stringstream ss(n.as<std::string>());
          std::string tok;
          while (std::getline(ss, tok, ',')) one(YAML::Load(tok));
        } else if (n.IsSequence()) {
          for (auto e : n) one(e);
        } else {
          bad();
        }
        break;
      }
    }
  } catch (const YAML::Exception&) {
    bad();
  }
  cfg.explicitly_set.insert(f.key);
}

void assign(Config& cfg, const std::string& key, const YAML::Node& value, const std::string& at,
            const std::string& shown = "") {
  for (auto& f : fields(cfg)) {
    if (f.key == key) {
      set_field(cfg, f, value, at, shown);
      return;
    }
  }
  throw UsageError(at + "unknown key '" + shown + key + "' (" + suggestion(key, shown) + ")");
}

// Walks a mapping, assigning leaves; sections are maps, list-valued keys are sequences.
void walk(Config& cfg, const YAML::Node& node, const std::string& prefix, const std::string& origin) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string k = it->first.as<std::string>();
    std::string key = prefix.empty() ? k : prefix + "." + k;
    const YAML::Node& v = it->second;
    if (prefix.empty() && k == "base") continue;  // handled by load_file
    bool is_section = false, is_key = false;
    {
      Config probe;
      for (auto& f : fields(probe)) {
        if (f.key.rfind(key + ".", 0) == 0) is_section = true;
        if (f.key == key) is_key = true;
      }
    }
    if (is_section && v.IsNull()) continue;  // a section whose keys are all commented out
    if (v.IsMap()) {
      if (is_key)
        throw UsageError(where(origin, it->first) + key + ": expected a value, got a mapping");
      if (!is_section)
        throw UsageError(where(origin, it->first) + "unknown section '" + key + "' (" + suggestion(key) + ")");
      walk(cfg, v, key, origin);
    } else {
      assign(cfg, key, v, where(origin, v));
    }
  }
}

void load_file(Config& cfg, const std::string& file, int depth) {
  if (depth > 8) throw UsageError(file + ": 'base:' chain is too deep (a cycle?)");
  YAML::Node root;
  if (fs::is_directory(file)) throw UsageError("config '" + file + "' is a folder, not a YAML file");
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw UsageError("cannot read config '" + file + "'");
  } catch (const YAML::ParserException& e) {
    throw UsageError(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw UsageError(file + ": expected a mapping of config sections at the top level");
  if (root["base"]) {
    fs::path base = fs::path(file).parent_path() / root["base"].as<std::string>();
    load_file(cfg, base.string(), depth + 1);
  }
  walk(cfg, root, "", file);
}

void validate(Config& c) {
  if (c.run.dir.empty()) throw UsageError("run.dir: expected a folder, got an empty value");
  auto& m = c.model;
  if (m.n_embd % m.n_head != 0)
    throw UsageError("model.n_embd (" + std::to_string(m.n_embd) + ") must be divisible by model.n_head (" +
                     std::to_string(m.n_head) + ")");
  if (c.train.keep_checkpoints < 1) throw UsageError("train.keep_checkpoints must be at least 1");
}

}  // namespace

void apply_model_preset(Config& cfg) {
  const std::string& p = cfg.model.preset;
  if (p.empty()) return;
  struct Shape { int64_t l, h, e, b; };
  Shape s{};
  if (p == "tiny") s = {2, 2, 64, 128};
  else if (p == "small") s = {6, 6, 384, 256};
  else if (p == "gpt2-124m") s = {12, 12, 768, 1024};
  else if (p == "llama-tiny") s = {2, 4, 64, 128};
  else if (p == "qwen2-0.5b") s = {24, 14, 896, 32768};  // Qwen2.5-0.5B's shapes
  auto set = [&](const char* key, auto& dst, auto v) {
    if (!cfg.explicitly_set.count(key)) dst = v;
  };
  set("model.n_layer", cfg.model.n_layer, s.l);
  set("model.n_head", cfg.model.n_head, s.h);
  set("model.n_embd", cfg.model.n_embd, s.e);
  set("model.block_size", cfg.model.block_size, s.b);
  if (p == "llama-tiny") {
    set("model.arch", cfg.model.arch, std::string("llama"));
    set("model.n_kv_head", cfg.model.n_kv_head, int64_t{2});
    set("model.intermediate_size", cfg.model.intermediate_size, int64_t{176});
  } else if (p == "qwen2-0.5b") {
    set("model.arch", cfg.model.arch, std::string("llama"));
    set("model.n_kv_head", cfg.model.n_kv_head, int64_t{2});
    set("model.intermediate_size", cfg.model.intermediate_size, int64_t{4864});
    set("model.rope_theta", cfg.model.rope_theta, 1000000.0);
    set("model.qkv_bias", cfg.model.qkv_bias, true);
    set("model.vocab_size", cfg.model.vocab_size, int64_t{151936});
  }
}

void set_key(Config& cfg, const std::string& key, const YAML::Node& value, const std::string& origin) {
  assign(cfg, key, value, origin);
}

void set_key_as(Config& cfg, const std::string& key, const YAML::Node& value, const std::string& origin,
                const std::string& shown_prefix) {
  assign(cfg, key, value, origin, shown_prefix);
}

std::string yaml_origin(const std::string& file, const YAML::Node& node) { return where(file, node); }

void apply_override(Config& cfg, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw UsageError("override '" + assignment + "': expected key=value");
  std::string key = assignment.substr(0, eq), val = assignment.substr(eq + 1);
  YAML::Node node;
  try {
    node = val.empty() ? YAML::Node(YAML::NodeType::Null) : YAML::Load(val);
  } catch (const YAML::Exception&) {
    node = YAML::Node(val);
  }
  assign(cfg, key, node, "override '" + assignment + "': ");
}

void finalize_config(Config& cfg) {
  apply_model_preset(cfg);
  validate(cfg);
}

Config load_config(const std::string& file, const std::vector<std::string>& overrides) {
  Config cfg;
  if (!file.empty()) {
    load_file(cfg, file, 0);
    cfg.source = file;
  }
  for (const auto& o : overrides) apply_override(cfg, o);
  finalize_config(cfg);
  return cfg;
}

std::vector<std::string> config_keys() {
  Config c;
  std::vector<std::string> out;
  for (auto& f : fields(c)) out.push_back(f.key);
  return out;
}

bool key_matches_prefix(const std::string& key, const std::string& prefix) {
  if (prefix.empty()) return true;
  if (key == prefix) return true;
  const std::string p = prefix.back() == '.' ? prefix : prefix + ".";
  return key.rfind(p, 0) == 0;
}

std::vector<KeyInfo> config_key_info() {
  Config c;
  const auto& docs = config_key_docs();
  std::vector<KeyInfo> out;
  static const char* kTypes[] = {"integer", "number", "bool", "string", "list of strings", "list of integers"};
  for (auto& f : fields(c)) {
    KeyInfo k;
    k.key = f.key;
    k.type = kTypes[f.ptr.index()];
    std::visit(
        [&](auto* p) {
          using T = std::decay_t<decltype(*p)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            std::string s;
            for (auto& e : *p) s += (s.empty() ? "" : ", ") + YAML::Dump(YAML::Node(e));
            k.default_value = "[" + s + "]";
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            std::string s;
            for (auto e : *p) s += (s.empty() ? "" : ", ") + std::to_string(e);
            k.default_value = "[" + s + "]";
          } else if constexpr (std::is_same_v<T, std::string>) {
            k.default_value = p->empty() ? "\"\"" : *p;
          } else if constexpr (std::is_same_v<T, double>) {
            k.default_value = fmt::format("{}", *p);
          } else if constexpr (std::is_same_v<T, bool>) {
            k.default_value = *p ? "true" : "false";
          } else {
            k.default_value = std::to_string(*p);
          }
        },
        f.ptr);
    if (!f.choices.empty()) {
      for (auto& ch : f.choices) k.range += (k.range.empty() ? "" : " | ") + (ch.empty() ? std::string("\"\"") : ch);
    } else if (std::isfinite(f.lo) || std::isfinite(f.hi)) {
      auto num = [&](double v) {
        if (!std::isfinite(v)) return std::string(v < 0 ? "-inf" : "inf");
        if (f.ptr.index() == 0 && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
        return fmt::format("{}", v);
      };
      k.range = "[" + num(f.lo) + ", " + num(f.hi) + "]";
    }
    auto it = docs.find(f.key);
    k.help = it == docs.end() ? std::string() : it->second;
    out.push_back(std::move(k));
  }
  return out;
}

std::string config_to_yaml(const Config& cfg_in) {
  Config cfg = cfg_in;
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  bool open = false;
  for (auto& f : fields(cfg)) {
    auto dot = f.key.find('.');
    std::string sec = dot == std::string::npos ? "" : f.key.substr(0, dot);
    std::string leaf = dot == std::string::npos ? f.key : f.key.substr(dot + 1);
    if (sec != section) {
      if (open) out << YAML::EndMap;
      open = false;
      section = sec;
      if (!sec.empty()) {
        out << YAML::Key << sec << YAML::Value << YAML::BeginMap;
        open = true;
      }
    }
    out << YAML::Key << leaf << YAML::Value;
    std::visit(
        [&](auto* p) {
          using T = std::decay_t<decltype(*p)>;
          if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int64_t>>) {
            out << YAML::Flow << YAML::BeginSeq;
            for (auto& e : *p) {
              if constexpr (std::is_same_v<T, std::vector<std::string>>) out << YAML::DoubleQuoted << e;
              else out << e;
            }
            out << YAML::EndSeq;
          } else if constexpr (std::is_same_v<T, std::string>) {
            out << YAML::DoubleQuoted << *p;
          } else if constexpr (std::is_same_v<T, double>) {
            // The shortest text that reads back as the same double (0.1, not 0.10000000000000001).
            if (std::isfinite(*p)) out << fmt::format("{}", *p);
            else out << YAML::Precision(17) << *p;
          } else {
            out << *p;
          }
        },
        f.ptr);
  }
  if (open) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace codex
