// `codex-train pretrain`: trains the GPT (M0) on a prepared token folder.
//   setup (threads, device, processes) -> data -> model (fresh, init_from or resume) -> optimizer
//   -> loop (shared with the other trainers, train/loop.h) -> final checkpoint + summary.
#include <cstring>
#include <iostream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "data/dataset.h"
#include "dist/dist.h"
#include "model/gpt.h"
#include "train/loop.h"
#include "train/tensorboard.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {
namespace {

using json = nlohmann::json;

int run_pretrain(cli::Invocation& inv) {
  Config cfg = inv.config();
  const TrainConfig& tc = cfg.train;

  // -- setup --------------------------------------------------------------------------------
  const int threads = configure_threads(cfg.run.threads);
  torch::Device device = pick_device(cfg.run);
  const bool bf16 = use_bf16_autocast(tc, device);
  // One process, or one rank of a torchrun/Slurm/MPI-launched job (c10d; cuda:<LOCAL_RANK>).
  std::shared_ptr<DistContext> dist = make_dist_context(cfg.dist, device);

  // -- data ---------------------------------------------------------------------------------
  if (tc.data.empty()) throw UsageError("train.data: expected a prepared data folder (from `data prepare`)");
  if (!fs::is_directory(tc.data)) throw UsageError("train.data: '" + tc.data + "' is not a folder");
  TokenDataset train_data(tc.data, "train"), val_data(tc.data, "val");
  const std::string tokenizer_path = (fs::path(tc.data) / "tokenizer.model").string();
  GPTConfig gcfg = GPTConfig::from(cfg.model, train_data.vocab_size());
  if (gcfg.vocab_size < train_data.vocab_size())
    throw UsageError("model.vocab_size (" + std::to_string(gcfg.vocab_size) + ") is smaller than the data's (" +
                     std::to_string(train_data.vocab_size()) + ")");
  // Fail now, not at the first eval step after minutes of training.
  if (tc.eval_every > 0 && val_data.size() < gcfg.block_size + 1)
    throw UsageError("train.data: the val split has " + std::to_string(val_data.size()) +
                     " tokens, fewer than block_size + 1 = " + std::to_string(gcfg.block_size + 1) +
                     "; prepare the data with a larger data.val_fraction, or set train.eval_every=0");

  // One run per run.dir at a time (rank 0 holds the lock until the process ends).
  std::unique_ptr<DirLock> run_lock;
  if (dist->is_main()) {
    make_output_dir(cfg.run.dir, "run.dir");
    run_lock = std::make_unique<DirLock>(cfg.run.dir);
    // Found now rather than at the first checkpoint, after minutes of training.
    make_output_dir(fs::path(cfg.run.dir) / "checkpoints", "checkpoint folder");
  }

  // -- model: resume > init_from > fresh ------------------------------------------------------
  std::optional<std::string> resume_from;
  if (!cfg.resume && fs::exists(fs::path(cfg.run.dir) / "checkpoints" / "latest"))
    throw UsageError("run.dir '" + cfg.run.dir + "' already holds a run with checkpoints; pass resume=true to continue "
                     "it, or choose another run.dir (nothing was changed)");
  if (cfg.resume) {
    resume_from = find_resume_checkpoint(cfg.run.dir);
    if (!resume_from) spdlog::info("resume: no checkpoint under {}/checkpoints yet; starting from step 0", cfg.run.dir);
  }
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(gcfg);
  if (resume_from) {
    load_weights(*resume_from, model);
  } else if (!tc.init_from.empty()) {
    if (fs::exists(fs::path(tc.init_from) / "model.safetensors") && !fs::exists(fs::path(tc.init_from) / "MANIFEST.json"))
      throw UsageError("train.init_from: '" + tc.init_from + "' is a Hugging Face folder; convert it first with "
                       "`codex-train import hf --in " + tc.init_from + " --out DIR` and pass DIR");
    LoadedModel init = load_model(tc.init_from);
    load_weights(init.dir, model);
    spdlog::info("init_from: weights of {} (step {}), fresh optimizer", init.dir, init.step);
  }
  model->to(device);
  dist->watch(model->parameters());
  auto opt = make_adamw(*model, cfg.optim);
  BatchSampler sampler(train_data, gcfg.block_size, tc.batch_size, static_cast<uint64_t>(cfg.run.seed), dist->rank(),
                       dist->world_size());
  int64_t start_step = 0;
  if (resume_from) {
    load_optimizer_and_rng(*resume_from, *opt);
    dist->shard_optimizer_state(*opt);
    const json st = read_checkpoint_state(*resume_from);
    start_step = st.at("step");
    sampler.set_state(st.at("sampler"));
    spdlog::info("resume: continuing from {} (step {})", *resume_from, start_step);
    if (start_step >= tc.max_steps) {
      spdlog::info("pretrain: the run is already complete (step {} of train.max_steps {}); nothing to do", start_step,
                   tc.max_steps);
      if (dist->is_main())
        std::cout << json{{"steps", start_step}, {"checkpoint", *resume_from}, {"complete", true}}.dump() << std::endl;
      return 0;
    }
  }
  spdlog::info("pretrain: {} params ({} layers, {} heads, {} embd, block {}, vocab {}), {} train / {} val tokens, "
               "device {}{}, {} thread(s)",
               model->num_params(), gcfg.n_layer, gcfg.n_head, gcfg.n_embd, gcfg.block_size, gcfg.vocab_size,
               train_data.size(), val_data.size(), device.str(), bf16 ? " bf16" : "", threads);

  // -- outputs --------------------------------------------------------------------------------
  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardWriter> tb;
  if (dist->is_main()) {  // run.dir was created with the lock above
    write_file_atomic(fs::path(cfg.run.dir) / "config.yaml", config_to_yaml(cfg));
    metrics = std::make_unique<MetricsLog>(cfg.run.dir, start_step);
    tb = std::make_unique<TensorBoardWriter>(cfg.run.dir);
  }

  // -- loop -----------------------------------------------------------------------------------
  LoopSpec spec;
  spec.name = "pretrain";
  spec.cfg = &cfg;
  spec.model = model;
  spec.opt = opt.get();
  spec.dist = dist.get();
  spec.start_step = start_step;
  spec.max_steps = tc.max_steps;
  spec.tokens_per_step = tc.batch_size * tc.grad_accum * gcfg.block_size;
  spec.micro_loss = [&](int64_t, int64_t) {
    auto [x, y] = sampler.next();  // (B_local, T) each
    return lm_loss(model, x.to(device), y.to(device), bf16, tc.fused_loss);
  };
  spec.evaluate = [&]() -> std::map<std::string, double> {
    return {{"val_loss", eval_lm_loss(model, val_data, gcfg.block_size, tc.batch_size, tc.eval_batches, *dist, device,
                                      bf16, tc.fused_loss)}};
  };
  std::string last_ckpt;
  spec.save = [&](int64_t step) {
    dist->gather_optimizer_state(*opt);
    if (dist->is_main())
      last_ckpt = save_training_checkpoint(cfg.run.dir, step, model, opt.get(), cfg, tokenizer_path,
                                           json{{"sampler", sampler.state()}});
    dist->shard_optimizer_state(*opt);
    if (tb) tb->flush();
    dist->barrier();
  };
  spec.metrics = metrics.get();
  if (tb) spec.scalar = [&](const std::string& tag, int64_t step, double v) { tb->add_scalar(tag, step, v); };
  LoopResult r = run_train_loop(spec);
  if (r.stopped_by_signal != 0) {
    const std::string by = r.stopped_by_signal > 0 ? strsignal(r.stopped_by_signal) : std::string("a peer rank's signal");
    throw RunError("interrupted (" + by + ") after step " + std::to_string(r.steps_done) + "; checkpoint " +
                   (last_ckpt.empty() ? std::string("(rank 0 wrote it)") : last_ckpt) +
                   " written; continue with resume=true");
  }

  // -- summary --------------------------------------------------------------------------------
  if (dist->is_main()) {
    if (tb) tb->flush();
    const int64_t done = std::max<int64_t>(0, r.steps_done - start_step);
    spdlog::info("pretrain: done, {} steps in {} ({:.0f} tok/s); loss {:.4f} -> {:.4f}{}; checkpoint {}", done,
                 human_duration(r.seconds), r.tokens_per_s, r.first_loss, r.last_loss,
                 r.last_val_loss >= 0 ? fmt::format(", val_loss {:.4f}", r.last_val_loss) : "",
                 last_ckpt.empty() ? "(none)" : last_ckpt);
    json out = {{"steps", std::max(r.steps_done, start_step)}, {"loss", r.last_loss}, {"tokens_per_s", r.tokens_per_s},
                {"seconds", r.seconds}, {"checkpoint", last_ckpt}};
    if (r.last_val_loss >= 0) out["val_loss"] = r.last_val_loss;
    std::cout << out.dump() << std::endl;
  }
  return 0;
}

cli::Registrar reg({"pretrain", "", "train the GPT on a prepared token folder (train.data)", {}, false, run_pretrain});

}  // namespace
}  // namespace codex
