// `codex-train pretrain`: trains the GPT (M0) on a prepared token folder. A recipe over the run
// context and the engine: data -> model (fresh, init_from or resume) -> optimizer -> steps.
#include "train/pretrain.h"

#include <iostream>
#include <sstream>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "ops/cross_entropy.h"
#include "train/engine.h"
#include "train/run.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/memory.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

torch::Tensor lm_loss(GPT& model, const torch::Tensor& x, const torch::Tensor& y, bool bf16, bool fused,
                      const torch::Tensor& attn_mask) {
  if (fused && !bf16) {
    auto hid = model->hidden(x, nullptr, attn_mask);  // (B, T, C)
    return linear_cross_entropy(hid.reshape({-1, hid.size(-1)}), model->lm_head_weight(), y.reshape(-1));
  }
  AutocastScope ac(bf16);
  auto logits = model->lm_logits(model->hidden(x, nullptr, attn_mask));  // (B, T, V)
  return torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat32), y.reshape(-1));
}

// ---- data -----------------------------------------------------------------------------------

BatchSampler::BatchSampler(const TokenDataset& data, int64_t block, int64_t global_batch, uint64_t seed, int rank,
                           int world)
    : data_(data), block_(block), global_batch_(global_batch), rng_(seed) {
  if (global_batch % world != 0)
    throw UsageError("train.batch_size (" + std::to_string(global_batch) + ") must be divisible by the world size (" +
                     std::to_string(world) + ")");
  if (data.size() < block + 1)
    throw UsageError("training data has " + std::to_string(data.size()) + " tokens, fewer than block_size + 1 = " +
                     std::to_string(block + 1));
  lo_ = global_batch / world * rank;
  hi_ = lo_ + global_batch / world;
}

std::pair<torch::Tensor, torch::Tensor> BatchSampler::next() {
  const uint64_t range = static_cast<uint64_t>(data_.size() - block_);  // window starts in [0, N - block - 1]
  auto buf = torch::empty({hi_ - lo_, block_ + 1}, torch::kLong);       // (B_local, T + 1)
  for (int64_t i = 0; i < global_batch_; ++i) {
    const int64_t start = static_cast<int64_t>(rng_() % range);  // every rank draws every row
    if (i >= lo_ && i < hi_) data_.read(start, block_ + 1, buf[i - lo_].data_ptr<int64_t>());
  }
  return {buf.slice(1, 0, block_), buf.slice(1, 1, block_ + 1)};
}

std::string BatchSampler::state() const {
  std::ostringstream os;
  os << rng_;
  return os.str();
}

void BatchSampler::set_state(const std::string& s) {
  std::istringstream is(s);
  is >> rng_;
  if (!is) throw UsageError("checkpoint: unreadable data-loader state");
}

double eval_lm_loss(GPT& model, const TokenDataset& val, int64_t block, int64_t batch, int64_t batches,
                    DistContext& dist, const torch::Device& device, bool bf16, bool fused) {
  if (val.size() < block + 1)
    throw UsageError("validation data has " + std::to_string(val.size()) + " tokens, fewer than block_size + 1");
  const int64_t W = dist.world_size(), lo = batch / W * dist.rank(), n_local = batch / W;
  const int64_t windows = batch * batches, span = val.size() - block - 1;
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  double sum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto buf = torch::empty({n_local, block + 1}, torch::kLong);  // (B_local, T + 1)
    for (int64_t i = 0; i < n_local; ++i) {
      const int64_t w = b * batch + lo + i;
      const int64_t start = windows > 1 ? span * w / (windows - 1) : 0;
      val.read(start, block + 1, buf[i].data_ptr<int64_t>());
    }
    buf = to_device(buf, device);
    sum += lm_loss(model, buf.slice(1, 0, block), buf.slice(1, 1, block + 1), bf16, fused).item<double>();
  }
  if (was_training) model->train();
  return dist.all_reduce_mean(sum / static_cast<double>(batches));
}

// ---- the recipe -----------------------------------------------------------------------------

namespace {

// Refused now, in one line, rather than inside the allocator or at the first checkpoint after
// minutes: memory (CPU: the machine's or cgroup's, shared by this host's ranks) and disk room
// for two checkpoints (a new one is complete before the oldest goes).
void check_room(Run& run, const GPTConfig& gcfg) {
  const TrainConfig& tc = run.cfg().train;
  const GptShape shape{gcfg.n_layer, gcfg.n_head, gcfg.n_embd, gcfg.block_size, gcfg.vocab_size};
  if (run.device().is_cpu()) {
    const char* local = std::getenv("LOCAL_WORLD_SIZE");
    const int64_t world = run.dist().world_size(), ranks_here = local ? std::max(1, std::atoi(local)) : 1;
    check_training_memory(shape, (tc.batch_size + world - 1) / world, tc.fused_loss, ranks_here, host_memory_limit());
  }
  check_checkpoint_space(run.cfg().run.dir, 12 * gpt_param_count(shape));  // fp32 weights + AdamW moments (every rank: none waits alone)
}

}  // namespace

json pretrain(const Config& config) {
  const TrainConfig& tc = config.train;
  // -- data (checked before the run folder is touched) --
  if (tc.data.empty()) throw UsageError("train.data: expected a prepared data folder (from `data prepare`)");
  if (!fs::is_directory(tc.data)) throw UsageError("train.data: '" + tc.data + "' is not a folder");
  TokenDataset train_data(tc.data, "train"), val_data(tc.data, "val");
  const std::string tokenizer_path = tokenizer_file_in(tc.data);  // tokenizer.model or tokenizer.json
  GPTConfig gcfg = GPTConfig::from(config.model, train_data.vocab_size());
  if (gcfg.vocab_size < train_data.vocab_size())
    throw UsageError("model.vocab_size (" + std::to_string(gcfg.vocab_size) + ") is smaller than the data's (" +
                     std::to_string(train_data.vocab_size()) + ")");
  // Fail now, not at the first eval step after minutes of training.
  if (tc.eval_every > 0 && val_data.size() < gcfg.block_size + 1)
    throw UsageError("train.data: the val split has " + std::to_string(val_data.size()) +
                     " tokens, fewer than block_size + 1 = " + std::to_string(gcfg.block_size + 1) +
                     "; prepare the data with a larger data.val_fraction, or set train.eval_every=0");

  Run run(config, "pretrain");
  const Config& cfg = run.cfg();
  const Fingerprint fp = {{"data", train_data.checksum()}, {"tokenizer", content_checksum(tokenizer_path)}};
  json resume_state;
  if (run.resume_from()) resume_state = run.check_resume(fp);
  check_room(run, gcfg);

  // -- model: resume > init_from > fresh --
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(gcfg);
  if (run.resume_from()) {
    load_weights(*run.resume_from(), model);
  } else if (!tc.init_from.empty()) {
    if (fs::exists(fs::path(tc.init_from) / "model.safetensors") && !fs::exists(fs::path(tc.init_from) / "MANIFEST.json"))
      throw UsageError("train.init_from: '" + tc.init_from + "' is a Hugging Face folder; convert it first with "
                       "`codex-train import hf --in " + tc.init_from + " --out DIR` and pass DIR");
    const std::string init = resolve_checkpoint(tc.init_from);
    load_weights(init, model, LoadMode::trunk);
    spdlog::info("init_from: weights of {}, fresh optimizer", init);
  }
  TrainState ts = run.attach(model, resume_state);
  BatchSampler sampler(train_data, gcfg.block_size, tc.batch_size, static_cast<uint64_t>(cfg.run.seed),
                       run.dist().rank(), run.dist().world_size());
  const int64_t start_step = ts.start_step;
  if (run.resume_from()) {
    sampler.set_state(resume_state.at("sampler"));
    spdlog::info("resume: continuing from {} (step {})", *run.resume_from(), start_step);
    if (start_step >= tc.max_steps) return run.already_complete(start_step, tc.max_steps);
  }
  spdlog::info("pretrain: {} params ({} layers, {} heads, {} embd, block {}, vocab {}), {} train / {} val tokens, "
               "device {}{}, {} thread(s)",
               model->num_params(), gcfg.n_layer, gcfg.n_head, gcfg.n_embd, gcfg.block_size, gcfg.vocab_size,
               train_data.size(), val_data.size(), run.device().str(), run.bf16() ? " bf16" : "", run.threads());

  // -- steps --
  DriverSpec spec;
  run.start(start_step, fp, spec);
  spec.trainables = &ts.trainables;
  spec.max_steps = tc.max_steps;
  const double tokens_per_step = static_cast<double>(tc.batch_size * tc.grad_accum * gcfg.block_size);
  model->train();
  spec.step = [&](int64_t step, double) {
    UpdateOut u = update(
        ts.trainables, run.dist(), tc.grad_accum,
        [&](int64_t) {
          auto [x, y] = sampler.next();  // (B_local, T) each
          const double n = static_cast<double>(x.numel());
          return MicroOut{lm_loss(model, to_device(x, run.device()), to_device(y, run.device()), run.bf16(), tc.fused_loss) * n, n, {}};
        },
        tc.grad_clip, step);
    return StepOut{u.loss, tokens_per_step, {{"grad_norm", u.grad_norms.at("")}}};
  };
  spec.evaluate = [&]() -> std::map<std::string, double> {
    return {{"val_loss", eval_lm_loss(model, val_data, gcfg.block_size, tc.batch_size, tc.eval_batches, run.dist(),
                                      run.device(), run.bf16(), tc.fused_loss)}};
  };
  spec.save = [&](int64_t step) {
    run.save(step, {ModuleRef{"model", model, ts.opt.get()}}, tokenizer_path, json{{"sampler", sampler.state()}});
  };
  DriverResult r = run_steps(spec);
  return run.finish(r, start_step);
}

namespace {

int run_pretrain(cli::Invocation& inv) {
  json out = pretrain(inv.config());
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"pretrain", "", "train the GPT on a prepared token folder (train.data)", {}, false, run_pretrain,
                    {"run.", "model.", "train.", "optim.", "dist.", "resume"}});

}  // namespace
}  // namespace codex
