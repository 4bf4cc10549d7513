// `generate` (sample from a checkpoint, JSON lines on stdout) and `bench generate` (KV cache vs
// full recompute on random weights).
#include <chrono>
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "generate/generate.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace codex::cli {
namespace {

// "\n", "\t", "\\" in --stop values, so `--stop '\ndef'` works without $'...' quoting.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    if (c == 'n') out += '\n';
    else if (c == 't') out += '\t';
    else if (c == '\\') out += '\\';
    else out += std::string("\\") + c;
  }
  return out;
}

nlohmann::json sample_json(const Sample& s) {
  return {{"prompt_index", s.prompt_index}, {"sample", s.sample_index}, {"text", s.text},
          {"tokens", s.tokens}, {"logprobs", s.logprobs}, {"mean_logprob", s.mean_logprob()},
          {"finish_reason", s.finish_reason}};
}

int run_generate(Invocation& inv) {
  Config cfg = inv.config();
  if (inv.has("no-kv-cache")) cfg.generate.kv_cache = false;
  if (inv.has("stop")) {
    cfg.generate.stop.clear();
    for (auto& s : inv.all("stop")) cfg.generate.stop.push_back(unescape(s));
  }
  std::vector<std::string> prompts;
  for (auto& p : inv.all("prompt")) prompts.push_back(p);
  for (auto& f : inv.all("prompt-file")) prompts.push_back(read_file(f));
  if (prompts.empty()) throw UsageError("generate: --prompt TEXT (or --prompt-file FILE) is required");
  const std::string format = inv.get("format", "json");
  if (format != "json" && format != "text")
    throw UsageError("generate: --format: '" + format + "' is not one of: json, text");
  const std::string dir = inv.require("checkpoint");
  configure_threads(cfg.run.threads);

  LoadedModel lm = load_model(dir, pick_device(cfg.run));
  if (lm.tokenizer_path.empty())
    throw UsageError(lm.dir + ": the checkpoint has no tokenizer.model (its training data had none); copy the "
                     "tokenizer the model was trained with into the checkpoint folder");
  Tokenizer tok(lm.tokenizer_path);
  auto opt = SamplingOptions::from(cfg.generate, static_cast<uint64_t>(cfg.run.seed));
  auto t0 = std::chrono::steady_clock::now();
  auto samples = generate(lm.model, tok, prompts, cfg.generate.n, opt);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t ntok = 0;
  for (auto& s : samples) {
    ntok += s.tokens.size();
    if (format == "text") {
      // For a person: a header per sample, then the prompt and its completion as they read.
      std::cout << "=== prompt " << s.prompt_index + 1 << ", sample " << s.sample_index + 1 << " ("
                << s.tokens.size() << " tokens, " << s.finish_reason << ", mean log-prob "
                << fmt::format("{:.3f}", s.mean_logprob()) << ") ===\n"
                << prompts[static_cast<size_t>(s.prompt_index)] << s.text;
      if (s.text.empty() || s.text.back() != '\n') std::cout << "\n";
      continue;
    }
    // byte-level samples may cut a UTF-8 sequence: replace rather than fail
    std::cout << sample_json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  std::cout.flush();
  spdlog::info("generate: {} samples, {} tokens in {:.2f}s ({:.1f} tokens/s, kv_cache={})", samples.size(), ntok, secs,
               ntok / std::max(secs, 1e-9), cfg.generate.kv_cache);
  return 0;
}

Registrar generate_cmd({"generate", "", "sample completions from a checkpoint (one JSON line per sample)",
                        {{"checkpoint", true, "checkpoint folder, run dir (its newest checkpoint) or checkpoints/latest"},
                         {"prompt", true, "prompt text", "", true},
                         {"prompt-file", true, "read a prompt from a file", "", true},
                         {"n", true, "samples per prompt", "generate.n"},
                         {"temperature", true, "0 = greedy", "generate.temperature"},
                         {"top-p", true, "nucleus sampling mass", "generate.top_p"},
                         {"top-k", true, "keep the k most likely tokens (0 = off)", "generate.top_k"},
                         {"max-new-tokens", true, "completion length limit", "generate.max_new_tokens"},
                         {"stop", true, "stop sequence (\\n, \\t escapes; replaces the defaults)", "", true},
                         {"disallowed", true, "string never emitted", "generate.disallowed", true},
                         {"batch-size", true, "rows decoded together", "generate.batch_size"},
                         {"seed", true, "sample i uses seed + i", "run.seed"},
                         {"no-kv-cache", false, "recompute the whole sequence at every step"},
                         {"format", true, "json (one line per sample, for scripts; default) or text (for a person)"}},
                        false, run_generate, {"run.seed", "run.threads", "run.device", "generate."}});

// ---------------------------------------------------------------- bench generate

// Decodes `new_tokens` greedily after a random prompt, with and without the KV cache, on random
// weights of the configured model (default preset: small). One JSON line.
int run_bench(Invocation& inv) {
  Config cfg = inv.config();
  if (!cfg.explicitly_set.count("model.preset") && !cfg.explicitly_set.count("model.n_layer")) {
    cfg.model.preset = "small";
    finalize_config(cfg);
  }
  configure_threads(cfg.run.threads);
  const int64_t prompt_len = inv.get_int("prompt-tokens", 64), new_tokens = inv.get_int("new-tokens", 256);
  const int64_t batch = inv.get_int("batch", 1);
  if (prompt_len < 1 || new_tokens < 1 || batch < 1)
    throw UsageError("bench generate: --prompt-tokens, --new-tokens and --batch must be at least 1");
  if (cfg.model.block_size < prompt_len + new_tokens) {
    spdlog::info("bench generate: model.block_size {} -> {} (prompt + new tokens)", cfg.model.block_size,
                 prompt_len + new_tokens);
    cfg.model.block_size = prompt_len + new_tokens;
  }
  const int64_t vocab = cfg.model.vocab_size > 0 ? cfg.model.vocab_size : cfg.tokenizer.vocab_size;
  torch::manual_seed(cfg.run.seed);
  auto device = pick_device(cfg.run);
  GPT model(GPTConfig::from(cfg.model, vocab));
  model->to(device);
  model->eval();

  TokenTable table;  // synthetic: no end-of-text, so every run decodes exactly new_tokens
  for (int64_t i = 0; i < vocab; ++i) table.bytes.push_back(" t" + std::to_string(i));
  table.eot_id = -1;
  table.pad_id = -1;
  auto ids = torch::randint(vocab, {prompt_len}, torch::kLong);
  std::vector<std::vector<int32_t>> prompts(1);
  for (int64_t i = 0; i < prompt_len; ++i) prompts[0].push_back(static_cast<int32_t>(ids[i].item<int64_t>()));

  SamplingOptions opt;
  opt.temperature = 0;
  opt.max_new_tokens = new_tokens;
  opt.stop = {};
  opt.batch_size = batch;
  auto timed = [&](bool kv, std::vector<Sample>& out) {
    opt.kv_cache = kv;
    SamplingOptions warm = opt;  // a short untimed run warms up allocators and thread pools
    warm.max_new_tokens = std::min<int64_t>(8, new_tokens);
    generate_tokens(gpt_logits_fn(model), table, prompts, batch, warm, cfg.model.block_size, device);
    auto t0 = std::chrono::steady_clock::now();
    out = generate_tokens(gpt_logits_fn(model), table, prompts, batch, opt, cfg.model.block_size, device);
    if (device.is_cuda()) torch::cuda::synchronize();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t n = 0;
    for (auto& x : out) n += x.tokens.size();
    return n / s;
  };
  std::vector<Sample> a, b;
  double cached = timed(true, a), uncached = timed(false, b);
  bool same = a.size() == b.size();
  for (size_t i = 0; same && i < a.size(); ++i) same = a[i].tokens == b[i].tokens;
  nlohmann::json j = {{"bench", "generate"},
                      {"device", device.str()},
                      {"threads", torch::get_num_threads()},
                      {"n_layer", cfg.model.n_layer},
                      {"n_embd", cfg.model.n_embd},
                      {"vocab_size", vocab},
                      {"batch", batch},
                      {"prompt_tokens", prompt_len},
                      {"new_tokens", new_tokens},
                      {"cached_tokens_per_s", cached},
                      {"uncached_tokens_per_s", uncached},
                      {"speedup", cached / uncached},
                      {"greedy_identical", same},
                      {"arch", cfg.model.arch},
                      {"params", model->num_params()}};
  std::cout << j.dump() << std::endl;
  return same ? 0 : 1;
}

Registrar bench_cmd({"bench", "generate", "tokens/s with vs without the KV cache (random weights, preset small)",
                     {{"prompt-tokens", true, "prompt length (default 64)"},
                      {"new-tokens", true, "tokens decoded (default 256)"},
                      {"batch", true, "sequences decoded together (default 1)"}},
                     false, run_bench, {"run.seed", "run.threads", "run.device", "model.", "tokenizer.vocab_size", "generate."}});

}  // namespace
}  // namespace codex::cli
