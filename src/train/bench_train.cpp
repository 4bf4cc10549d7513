// `codex-train bench train --config F [overrides] [--steps N] [--warmup N]`: training speed of
// the configured model on synthetic tokens (no data folder needed). Prints ONE JSON line:
// {"tokens_per_s", "ms_per_step", "peak_rss_mb", "params", "threads", "losses", ...}. The same
// random batch every step at the constant optim.lr (no schedule), so the loss falls as the model
// memorises it: "losses" (every step, warm-up first) is a curve two runs of one seed can be
// compared by (scripts/gpu_check.sh: model.attention=auto / fused / reference side by side);
// "attention_path" says which implementation model.attention picked for this model's q.
#include <algorithm>
#include <chrono>
#include <random>
#include <iostream>

#include "cli/registry.h"
#include "model/gpt.h"
#include "ops/attention.h"
#include "dist/context.h"
#include "train/engine.h"
#include "train/pretrain.h"
#include "util/error.h"

namespace codex {
namespace {

int run_bench_train(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const torch::Device device = pick_device(cfg.run);
  const bool bf16 = use_bf16_autocast(cfg.train, device);
  make_current_device(device);
  configure_float32_math(cfg.train, device);
  const int64_t steps = inv.get_int("steps", 20), warmup = inv.get_int("warmup", 3);
  if (steps < 1 || warmup < 0) throw UsageError("--steps must be >= 1 and --warmup >= 0");
  const int64_t vocab = cfg.model.vocab_size > 0 ? cfg.model.vocab_size : cfg.tokenizer.vocab_size;
  GPTConfig g = GPTConfig::from(cfg.model, vocab);
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(g);
  model->to(device);
  model->train();
  auto opt = make_adamw(*model, cfg.optim);
  const int64_t B = cfg.train.batch_size, T = g.block_size;
  auto data = torch::randint(0, g.vocab_size, {B, T + 1}, torch::kLong).to(device);  // (B, T + 1)
  auto x = data.slice(1, 0, T), y = data.slice(1, 1, T + 1);
  std::vector<Trainable> trainables = {{"", model->parameters(), opt.get()}};
  auto dist = single_process_context();

  // The same work per step as the trainer: the engine's update (forward, backward, clip, AdamW).
  int64_t step = 0;
  std::vector<double> losses;
  auto one_step = [&] {
    losses.push_back(update(trainables, *dist, cfg.train.grad_accum, [&](int64_t) {
      const double n = static_cast<double>(x.numel());
      return MicroOut{lm_loss(model, x, y, bf16, cfg.train.fused_loss) * n, n, {}};
    }, cfg.train.grad_clip, ++step).loss);
  };
  for (int64_t i = 0; i < warmup; ++i) one_step();
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) one_step();
  if (device.is_cuda()) torch::cuda::synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(steps * cfg.train.grad_accum * B * T);
  // What attention sees in this model: (B, n_head, T, n_embd / n_head) in the autocast dtype.
  const auto probe = torch::empty({1, g.n_head, 1, g.n_embd / g.n_head},
                                  torch::TensorOptions().device(device).dtype(bf16 ? torch::kBFloat16 : torch::kFloat))
                         .requires_grad_();
  nlohmann::json out = {{"bench", "train"},
                        {"tokens_per_s", tokens / s},
                        {"ms_per_step", 1000.0 * s / static_cast<double>(steps)},
                        {"peak_rss_mb", peak_rss_mb()},
                        {"params", model->num_params()},
                        {"threads", threads},
                        {"device", device.str()},
                        {"batch_size", B},
                        {"block_size", T},
                        {"n_layer", g.n_layer},
                        {"n_embd", g.n_embd},
                        {"vocab_size", g.vocab_size},
                        {"fused_loss", cfg.train.fused_loss && !bf16},
                        {"dtype", bf16 ? "bf16" : "fp32"},
                        {"attention", cfg.model.attention},
                        {"attention_path", attention_path(probe, 0.0, parse_attention_kind(cfg.model.attention))},
                        {"steps", steps},
                        {"warmup", warmup},
                        {"losses", losses}};
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"bench", "train", "training speed on synthetic tokens (one JSON line)",
                    {{"steps", true, "timed steps (default 20)"}, {"warmup", true, "untimed steps first (default 3)"}},
                    false, run_bench_train,
                    {"run.seed", "run.threads", "run.device", "model.", "tokenizer.vocab_size", "train.", "optim."}});

}  // namespace
}  // namespace codex

// `codex-train bench sft --config F [--steps N]`: SFT steps on synthetic left-padded prompt /
// completion batches of the configured model, as the SFT trainer draws them (length buckets
// across steps, sft.sort_by_length) and as a plain shuffle draws them, interleaved with plain LM
// steps on full windows of the same model and batch (ONE JSON line): tokens/s counting every real
// token and counting completion tokens only, the padding share, and the ratios to the LM step's
// tokens/s ("all_vs_lm": bucketed; "unbucketed_all_vs_lm": plain).
#include "train/sequences.h"
namespace codex {
namespace {

// n prompt / completion pairs of random tokens, each part 8 .. T/2 - 1 tokens long.
std::vector<Sequence> random_sequences(int64_t n, int64_t T, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Sequence> seqs(static_cast<size_t>(n));
  for (auto& s : seqs) {
    s.prompt.resize(8 + rng() % static_cast<uint64_t>(T / 2 - 8));
    s.completion.resize(8 + rng() % static_cast<uint64_t>(T / 2 - 8));
    for (auto& t : s.prompt) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    for (auto& t : s.completion) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  }
  return seqs;
}

// Tokens of the timed SFT steps of one batch order: real (prompt + completion), completion, padding.
struct SftTally {
  double real = 0, comp = 0, padded = 0, secs = 0;
};

nlohmann::json sft_report(const SftTally& tb, const SftTally& tp, double lm_tps) {
  return {{"bench", "sft"},
          {"tokens_per_s_all", tb.real / tb.secs},
          {"tokens_per_s_completion", tb.comp / tb.secs},
          {"padding_share", tb.padded / (tb.real + tb.padded)},
          {"lm_tokens_per_s", lm_tps},
          {"all_vs_lm", tb.real / tb.secs / lm_tps},
          {"unbucketed_tokens_per_s_all", tp.real / tp.secs},
          {"unbucketed_padding_share", tp.padded / (tp.real + tp.padded)},
          {"unbucketed_all_vs_lm", tp.real / tp.secs / lm_tps},
          {"bucketed_vs_unbucketed", (tb.real / tb.secs) / (tp.real / tp.secs)}};
}

int run_bench_sft(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const torch::Device device = pick_device(cfg.run);
  const int64_t steps = inv.get_int("steps", 10);
  if (steps < 1) throw UsageError("--steps must be >= 1");
  const int64_t vocab = cfg.model.vocab_size > 0 ? cfg.model.vocab_size : cfg.tokenizer.vocab_size;
  GPTConfig g = GPTConfig::from(cfg.model, vocab);
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(g);
  model->to(device);
  model->train();
  auto opt = make_adamw(*model, cfg.optim);
  std::vector<Trainable> tr = {{"", model->parameters(), opt.get()}};
  auto dist = single_process_context();
  const int64_t B = cfg.train.batch_size, T = g.block_size;
  // Enough examples for several of the trainer's bucketing windows.
  std::vector<Sequence> seqs = random_sequences(B * StepOrder::kBucketWindow * 4, T, g.vocab_size,
                                                static_cast<uint64_t>(cfg.run.seed));
  std::vector<int64_t> lengths;
  for (auto& s : seqs) lengths.push_back(batch_length(s, T));
  // The SFT trainer's batches: sft.sort_by_length=true (length buckets across steps, StepOrder)
  // and, beside them, the plain shuffle (sort_by_length=false).
  StepOrder bucketed(lengths, static_cast<uint64_t>(cfg.run.seed), B, true);
  StepOrder plain(lengths, static_cast<uint64_t>(cfg.run.seed), B, false);
  SftTally tb, tp;
  int64_t step = 0, sft_step_no = 0;
  auto sft_step = [&](StepOrder& order, SftTally& t) {
    std::vector<const Sequence*> rows;
    for (int64_t i : order.step(sft_step_no + 1)) rows.push_back(&seqs[static_cast<size_t>(i)]);
    const auto a = std::chrono::steady_clock::now();
    SeqBatch b = make_batch(rows, T, true, 0);
    t.real += static_cast<double>(b.real_tokens);
    t.comp += static_cast<double>(b.completion_tokens);
    t.padded += static_cast<double>(b.padded_tokens);
    update(tr, *dist, 1, [&](int64_t) {
      const double n = static_cast<double>(b.completion_tokens);
      return MicroOut{lm_loss(model, b.input.to(device), b.targets.to(device), false, cfg.train.fused_loss,
                              b.mask.to(device)) * n, n, {}};
    }, cfg.train.grad_clip, ++step);
    t.secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  auto data = torch::randint(0, g.vocab_size, {B, T + 1}, torch::kLong).to(device);
  auto lm_step = [&] {
    update(tr, *dist, 1, [&](int64_t) {
      auto x = data.slice(1, 0, T), y = data.slice(1, 1, T + 1);
      const double n = static_cast<double>(y.numel());
      return MicroOut{lm_loss(model, x, y, false, cfg.train.fused_loss) * n, n, {}};
    }, cfg.train.grad_clip, ++step);
  };
  sft_step(bucketed, tb);
  sft_step(plain, tp);
  lm_step();
  tb = tp = SftTally{};
  double t_lm = 0;
  for (int64_t i = 0; i < steps; ++i) {  // interleaved, so all three see the same machine state
    ++sft_step_no;                       // the same step of each order
    sft_step(bucketed, tb);
    sft_step(plain, tp);
    auto t1 = std::chrono::steady_clock::now();
    lm_step();
    t_lm += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  const double lm_tps = static_cast<double>(steps * B * T) / t_lm;
  nlohmann::json out = sft_report(tb, tp, lm_tps);
  out.update({{"peak_rss_mb", peak_rss_mb()}, {"threads", threads}, {"batch_size", B}, {"block_size", T},
              {"steps", steps}});
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg_sft({"bench", "sft", "SFT step speed on the trainer's length-bucketed (and on plain) batches vs LM steps (one JSON line)",
                        {{"steps", true, "timed steps of each kind (default 10)"}}, false, run_bench_sft});

}  // namespace
}  // namespace codex

// `codex-train bench ppo --config F`: the three phases of a PPO iteration on the configured model
// with random weights (ONE JSON line): rollout tokens/s decoding ppo.rollout.prompts_per_step x
// samples_per_prompt responses together (KV cache, finished rows leave the batch) and the same
// responses one at a time, scoring tokens/s (policy + reference + value forward, no autograd),
// update tokens/s (one engine update of the policy on the rollout) and peak RSS.
#include "generate/generate.h"
namespace codex {
namespace {

// Seconds of the scoring pass (policy + reference log-probs, values; no autograd) and of one
// engine update of the policy on the rollout batch b.
std::pair<double, double> score_and_update_seconds(GPT& policy, GPT& ref, GPT& value, const SeqBatch& b,
                                                   const OptimConfig& oc, const torch::Device& device) {
  auto in = b.input.to(device), mk = b.mask.to(device);
  auto t3 = std::chrono::steady_clock::now();
  for (GPT* m : {&policy, &ref}) (void)torch::log_softmax((*m)->lm_logits((*m)->hidden(in, nullptr, mk)), -1);
  (void)value->scalar("value_head", value->hidden(in, nullptr, mk));
  auto t4 = std::chrono::steady_clock::now();
  torch::GradMode::set_enabled(true);
  policy->train();
  auto opt = make_adamw(*policy, oc);
  std::vector<Trainable> tr = {{"", policy->parameters(), opt.get()}};
  auto dist = single_process_context();
  auto t5 = std::chrono::steady_clock::now();
  update(tr, *dist, 1, [&](int64_t) {
    const double n = static_cast<double>(b.completion_tokens);
    return MicroOut{lm_loss(policy, in, b.targets.to(device), false, true, mk) * n, n, {}};
  }, 1.0, 1);
  const double upd_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t5).count();
  torch::GradMode::set_enabled(false);
  return {std::chrono::duration<double>(t4 - t3).count(), upd_s};
}

int run_bench_ppo(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const torch::Device device = pick_device(cfg.run);
  const int64_t vocab = cfg.model.vocab_size > 0 ? cfg.model.vocab_size : cfg.tokenizer.vocab_size;
  GPTConfig g = GPTConfig::from(cfg.model, vocab);
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT policy(g), ref(g), value(g);
  value->add_scalar_head("value_head");
  for (GPT* m : {&policy, &ref, &value}) (*m)->to(device);
  const int64_t P = cfg.ppo.rollout.prompts_per_step, K = cfg.ppo.rollout.samples_per_prompt;
  TokenTable table;
  table.bytes.resize(static_cast<size_t>(g.vocab_size));
  for (int64_t i = 0; i < g.vocab_size; ++i) table.bytes[i] = "t" + std::to_string(i) + " ";
  table.eot_id = -1;  // never stops early: every response has max_new_tokens tokens
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(P));
  std::mt19937_64 rng(1);
  for (auto& p : prompts) {
    p.resize(32);
    for (auto& t : p) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(g.vocab_size));
  }
  SamplingOptions so;
  so.temperature = 1.0;
  so.max_new_tokens = cfg.ppo.rollout.max_new_tokens;
  so.batch_size = P * K;
  policy->eval();
  torch::NoGradGuard ng_outer;
  // A warm-up rollout first (allocator, page faults, first-call dispatch), then batched and
  // one-at-a-time rollouts interleaved --repeats times; medians of each.
  const int64_t repeats = inv.get_int("repeats", 3);
  if (repeats < 1) throw UsageError("--repeats must be >= 1");
  auto rollout = [&](int64_t batch) {
    so.batch_size = batch;
    const auto a = std::chrono::steady_clock::now();
    auto out = generate_tokens(gpt_logits_fn(policy), table, prompts, K, so, g.block_size, device);
    return std::make_pair(std::move(out), std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  };
  auto batched = rollout(P * K).first;
  std::vector<double> t_batched, t_single;
  for (int64_t r = 0; r < repeats; ++r) {
    auto [b1, tb] = rollout(P * K);
    auto [s1, ts] = rollout(1);
    t_batched.push_back(tb);
    t_single.push_back(ts);
    TORCH_CHECK(b1.size() == s1.size(), "bench ppo: batched and one-at-a-time differ in size");
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  const double roll_b = median(t_batched), roll_1 = median(t_single);
  double gen = 0;
  for (auto& s : batched) gen += static_cast<double>(s.tokens.size());
  std::vector<Sequence> seqs;
  for (auto& s : batched) seqs.push_back({prompts[s.prompt_index], std::vector<int32_t>(s.tokens.begin(), s.tokens.end())});
  std::vector<const Sequence*> rows;
  for (auto& s : seqs) rows.push_back(&s);
  SeqBatch b = make_batch(rows, g.block_size, true, 0);
  const auto [score_s, upd_s] = score_and_update_seconds(policy, ref, value, b, cfg.optim, device);
  nlohmann::json out = {{"bench", "ppo"},
                        {"rollout_tokens_per_s", gen / roll_b},
                        {"rollout_one_at_a_time_tokens_per_s", gen / roll_1},
                        {"rollout_speedup", roll_1 / roll_b},
                        {"scoring_tokens_per_s", static_cast<double>(b.real_tokens) / score_s},
                        {"update_tokens_per_s", static_cast<double>(b.real_tokens) / upd_s},
                        {"responses", batched.size()},
                        {"repeats", repeats},
                        {"max_new_tokens", so.max_new_tokens},
                        {"peak_rss_mb", peak_rss_mb()},
                        {"threads", threads},
                        {"params", policy->num_params()}};
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg_ppo({"bench", "ppo", "PPO phases: batched vs one-at-a-time rollout, scoring, update (one JSON line)",
                        {{"repeats", true, "timed batched / one-at-a-time rollout pairs, medians (default 3)"}},
                        false, run_bench_ppo});

}  // namespace
}  // namespace codex
