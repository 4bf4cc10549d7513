// `codex-train bench train --config F [overrides] [--steps N] [--warmup N]`: training speed of
// the configured model on synthetic tokens (no data folder needed). Prints ONE JSON line:
// {"tokens_per_s", "ms_per_step", "peak_rss_mb", "params", "threads", ...}.
#include <chrono>
#include <iostream>

#include "cli/registry.h"
#include "model/gpt.h"
#include "train/loop.h"
#include "util/error.h"

namespace codex {
namespace {

int run_bench_train(cli::Invocation& inv) {
  Config cfg = inv.config();
  const int threads = configure_threads(cfg.run.threads);
  const torch::Device device = pick_device(cfg.run);
  const bool bf16 = use_bf16_autocast(cfg.train, device);
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
  auto params = model->parameters();

  // The same work per step as the trainer: forward, backward, clip, AdamW.
  auto one_step = [&] {
    opt->zero_grad();
    for (int64_t m = 0; m < cfg.train.grad_accum; ++m)
      (lm_loss(model, x, y, bf16, cfg.train.fused_loss) / static_cast<double>(cfg.train.grad_accum)).backward();
    torch::nn::utils::clip_grad_norm_(params, cfg.train.grad_clip > 0 ? cfg.train.grad_clip : 1e30);
    opt->step();
  };
  for (int64_t i = 0; i < warmup; ++i) one_step();
  if (device.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) one_step();
  if (device.is_cuda()) torch::cuda::synchronize();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens = static_cast<double>(steps * cfg.train.grad_accum * B * T);
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
                        {"steps", steps}};
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"bench", "train", "training speed on synthetic tokens (one JSON line)",
                    {{"steps", true, "timed steps (default 20)"}, {"warmup", true, "untimed steps first (default 3)"}},
                    false, run_bench_train});

}  // namespace
}  // namespace codex
