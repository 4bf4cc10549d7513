#pragma once
// Typed configuration. Every key lives in one struct below and is registered once in config.cpp
// (key, type, range; its one-line help in key_docs.cpp); YAML files and dotted `key=value` overrides are checked against that
// registry, so a typo is an error naming the nearest valid key.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace codex {

struct RunConfig {
  std::string dir = "runs/default";  // where a run writes everything
  int64_t seed = 1337;               // seeds every RNG
  int64_t threads = 0;               // CPU threads for LibTorch; 0 = measured default
  std::string device = "auto";       // auto | cpu | cuda
};

struct TokenizerConfig {
  std::vector<std::string> input;    // dirs (recursive *.py), .py files, .jsonl(.gz)
  int64_t vocab_size = 8000;
  bool whitespace_runs = true;       // false: the plain baseline (whitespace split, no runs)
  int64_t max_train_bytes = 8000000; // sample of the corpus the trainer sees (speed)
  int64_t max_piece_length = 16;
};

struct DataConfig {
  std::vector<std::string> input;
  std::string tokenizer;             // tokenizer.model; empty = <run.dir>/tokenizer.model
  double val_fraction = 0.01;
  int64_t max_file_bytes = 1000000;  // Codex: files over 1 MB dropped
  double max_avg_line_length = 100;  // Codex: average line length over 100
  int64_t max_line_length = 1000;    // Codex: longest line over 1000
  double min_alnum_fraction = 0.25;  // Codex: low alphanumeric share
  int64_t generated_header_lines = 10;  // auto-generated markers searched in the first N lines
  int64_t shard_tokens = 16777216;   // tokens per shard file
};

struct ModelConfig {
  std::string preset;                // tiny | small | gpt2-124m; explicit keys override it
  int64_t n_layer = 2;
  int64_t n_head = 2;
  int64_t n_embd = 64;
  int64_t block_size = 128;
  int64_t vocab_size = 0;            // 0 = from the tokenizer
  double dropout = 0.0;
  bool bias = true;
  std::string attention = "auto";    // auto | fused | reference (ops/attention.h)
  // The block family: gpt2 (learned positions, LayerNorm, GELU MLP x4, fused c_attn) or llama
  // (the Llama / Qwen2 / StarCoder2-style decoder: rotary positions, RMSNorm, SwiGLU MLP,
  // grouped-query attention). The keys below apply to llama only.
  std::string arch = "gpt2";
  int64_t n_kv_head = 0;             // key/value heads (0 = n_head; 1 = multi-query)
  int64_t intermediate_size = 0;     // SwiGLU width (0 = 4 * n_embd)
  double rope_theta = 10000;         // rotary base
  double norm_eps = 1e-6;            // RMSNorm epsilon
  bool qkv_bias = false;             // biases on q/k/v projections (Qwen2: true)
  bool tie_embeddings = true;        // LM head tied to the token embedding (else its own lm_head)
};

struct TrainConfig {
  std::string data;                  // a prepared data folder (holds its tokenizer)
  int64_t batch_size = 8;            // global micro-batch (sequences), split across ranks
  int64_t grad_accum = 1;
  int64_t max_steps = 100;
  int64_t log_every = 10;
  int64_t eval_every = 50;
  int64_t eval_batches = 8;
  int64_t checkpoint_every = 50;
  int64_t keep_checkpoints = 2;
  double grad_clip = 1.0;
  std::string init_from;             // checkpoint folder to start from (e.g. `import hf` output)
  std::string dtype = "auto";        // auto | fp32 | bf16 (autocast on CUDA)
  bool fused_loss = true;            // LM head + cross-entropy in row chunks (ops/cross_entropy.h; fp32)
  bool tf32 = true;                  // CUDA, Ampere and newer: float32 matmuls on TF32 tensor cores
  int64_t patience = 0;              // stop after N evals without a lower val_loss (0 = off)
};

struct OptimConfig {
  double lr = 1e-3;
  double min_lr_ratio = 0.1;         // cosine decays to lr * min_lr_ratio
  double weight_decay = 0.1;         // matrices only
  int64_t warmup_steps = 10;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
};

struct DistConfig {
  std::string backend = "auto";      // auto | gloo | nccl
  double timeout_s = 120;            // c10d timeout: no rank waits forever on a dead peer
  bool zero1 = false;
  double bucket_mb = 25;
};

struct GenerateConfig {
  int64_t n = 1;
  double temperature = 0.8;          // 0 = greedy
  double top_p = 1.0;
  int64_t top_k = 0;
  int64_t max_new_tokens = 128;
  std::vector<std::string> stop = {"\nclass", "\ndef", "\n#", "\nif", "\nprint"};
  std::vector<std::string> disallowed;
  bool kv_cache = true;
  int64_t batch_size = 16;
};

struct EvalConfig {
  std::string problems = "data/humaneval/HumanEval.jsonl.gz";
  int64_t n = 1;                     // samples per problem
  std::vector<int64_t> k = {1, 10, 100};
  double timeout = 3.0;
  int64_t workers = 0;               // 0 = number of cores
  std::string sandbox = "bwrap";     // bwrap | rlimits-only (unsafe)
  double temperature = 0.2;
  double top_p = 0.95;
  int64_t max_new_tokens = 128;
  int64_t limit = 0;                 // evaluate only the first N problems (0 = all)
};

struct SFTConfig {
  std::string init;                  // checkpoint (M0 run, imported HF model) to start from
  std::string data;                  // problems (Codex-S/D) or demos JSONL
  std::string val_data;              // optional held-out file; else val_fraction of data
  double val_fraction = 0.1;         // held out when val_data is empty (0 = no validation)
  std::string task = "code";         // code (Codex-S) | docstring (Codex-D)
  bool mask_prompt = true;           // loss on completion tokens only
  int64_t epochs = 2;                // passes over the data (train.max_steps > 0 overrides)
  double lr_ratio = 0.1;             // optim.lr unset: this x the init run's lr (the paper: 1/10)
  bool sort_by_length = false;       // deterministic length-bucketed batches (less padding)
};

struct RewardConfig {
  std::string init;                  // LM checkpoint whose trunk starts the reward model
  std::string data;                  // preferences JSONL
  std::string val_data;              // optional; else val_fraction of data
  double val_fraction = 0.1;
  double margin = 0.0;               // added to every pair's own margin
  double center_coef = 0.0;          // + c * (r_chosen + r_rejected)^2
  int64_t epochs = 3;
};

struct PPOKLConfig {
  double coef = 0.1;                 // initial (or fixed) beta
  double target = 0.0;               // > 0: adaptive controller (Ziegler et al.)
  double horizon = 10000;            // adaptive controller horizon (samples)
  std::string estimator = "k1";      // k1 | k3: per-token KL in the reward
};

struct PPORolloutConfig {
  int64_t prompts_per_step = 4;
  int64_t samples_per_prompt = 2;
  int64_t max_new_tokens = 48;
  double temperature = 1.0;
};

struct PPOSafetyConfig {
  std::vector<std::string> patterns;  // regular expressions counted in each response
  double no_eos_penalty = 1.0;        // added to Omega when a response hits the length limit
};

struct PPOConfig {
  std::string init;                  // the policy's start (M1)
  std::string ref;                   // frozen reference; empty = init
  std::string reward_model;          // optional frozen reward model
  std::string value_init;            // empty = reward_model when given, else init
  std::string prompts;               // prompts / demos / problems JSONL
  std::string problems;              // optional problems file with tests for execution rewards
  std::string advantage = "gae";     // gae | grpo | rloo
  PPOKLConfig kl;
  PPORolloutConfig rollout;
  PPOSafetyConfig safety;
  double clip = 0.2;
  double clip_value = 0.2;
  double vf_coef = 0.5;
  double entropy_coef = 0.0;
  double gamma_discount = 1.0;       // GAE gamma
  double lam = 0.95;                 // GAE lambda
  int64_t epochs = 2;
  int64_t minibatches = 2;
  double w_rm = 1.0;
  double w_exec = 1.0;
  std::string exec_reward = "outcome";  // outcome | partial (a share of the asserts passed)
  double alpha = 0.0;                // U = alpha * L_SFT + beta * L_RLHF + gamma * Omega
  double beta = 1.0;
  double gamma = 0.0;
  std::string ptx_data;              // demos JSONL or prepared token folder for the alpha term
  bool whiten = true;                // whiten advantages
  double value_lr_ratio = 1.0;       // value optimizer lr = optim.lr * this
};

struct PipelineConfig {
  bool practice = true;              // generate the practice set (train + held-out problems)
  int64_t practice_seed = 0;
  int64_t practice_extra = 0;        // extra instances per practice family for PPO only (rl.jsonl)
  bool practice_rl_split = false;    // the (family + k) % 5 == 1 pairs go to rl.jsonl, not SFT's train
  std::string ppo_prompts = "train"; // PPO's prompts: train (SFT's problems) | rl (rl.jsonl) | both
  bool extract = false;              // also extract problems (docstrings, doctests) from the corpus
  bool prefs_from_execution = true;  // preference pairs from M1's samples run against tests
  int64_t prefs_n = 8;
  int64_t prefs_max_pairs = 4;
  double prefs_temperature = 0.8;
  std::vector<std::string> eval_sets = {"practice", "humaneval"};
  int64_t humaneval_limit = 0;       // evaluate only the first N HumanEval problems (0 = all)
  bool reward_model = true;          // train a reward model and use it in PPO
};

struct ProblemsConfig {
  std::vector<std::string> input;    // corpus for `data problems`: dirs, .py, .jsonl(.gz); empty = data.input
  int64_t max_tests = 10;            // assertions kept per problem (doctest examples / traced calls)
  int64_t decontam_ngram = 13;       // drop problems sharing a word n-gram this long with an eval set
  std::vector<std::string> eval_sets = {"data/humaneval/HumanEval.jsonl.gz"};
  double timeout = 20;               // seconds per sandboxed program (one file's parse, one check)
  double trace_timeout = 300;        // seconds for the whole traced command (`data trace`)
};

struct Config {
  RunConfig run;
  TokenizerConfig tokenizer;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  OptimConfig optim;
  DistConfig dist;
  GenerateConfig generate;
  EvalConfig eval;
  SFTConfig sft;
  RewardConfig reward;
  PPOConfig ppo;
  PipelineConfig pipeline;
  ProblemsConfig problems;
  bool resume = false;
  bool resume_must = false;  // resume=must: like resume=true, but no checkpoint to continue is an error
  bool overwrite = false;  // replace complete outputs (data, tokenizer, exports, results): --force

  std::set<std::string> explicitly_set;  // keys given by a file or an override
  std::string source;                    // the file it was loaded from, if any
};

// Loads defaults, then FILE (if non-empty; `base: other.yaml` chains to a parent first), then
// overrides ("a.b=value", value parsed as YAML), then applies presets and validates.
// Throws UsageError with "FILE:LINE: key: what was expected" on any problem.
Config load_config(const std::string& file, const std::vector<std::string>& overrides);
// The fully resolved config as YAML (what `config show` prints and a run saves).
std::string config_to_yaml(const Config& cfg);
// Every registered dotted key, in declaration order.
std::vector<std::string> config_keys();

// What `--help` and `config keys` show for a key: all but `help` come from the registry itself.
struct KeyInfo {
  std::string key;
  std::string type;           // integer | number | bool | string | list of strings | list of integers
  std::string default_value;  // the default, as YAML (`""` for an empty string)
  std::string range;          // "[1, 256]", "auto | cpu | cuda", or "" (anything of the type)
  std::string help;           // one line (config/key_docs.cpp)
};
std::vector<KeyInfo> config_key_info();
// Keys equal to a prefix, or under it ("train." or "train" -> train.*; "resume" -> resume).
bool key_matches_prefix(const std::string& key, const std::string& prefix);
// The one-line descriptions, by key (config/key_docs.cpp).
const std::map<std::string, std::string>& config_key_docs();
// Applies one override to an existing config (used by commands that map flags to keys).
void apply_override(Config& cfg, const std::string& assignment);
// Sets one key from a YAML node; `origin` prefixes error messages.
void set_key(Config& cfg, const std::string& key, const YAML::Node& value, const std::string& origin);
// set_key, with messages naming the key as the user wrote it: `shown_prefix` + key (a pipeline
// stage's "ppo." before "train.max_steps"), suggestions included ("did you mean 'ppo.train.max_steps'?").
void set_key_as(Config& cfg, const std::string& key, const YAML::Node& value, const std::string& origin,
                const std::string& shown_prefix);
// "FILE:LINE: " for a node loaded from FILE ("FILE: " without a line; "" without a file).
std::string yaml_origin(const std::string& file, const YAML::Node& node);
// Re-runs presets + range checks (after programmatic edits).
void finalize_config(Config& cfg);
// Model presets: fills model.* keys the user did not set explicitly.
void apply_model_preset(Config& cfg);

}  // namespace codex
