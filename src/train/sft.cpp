// `codex-train sft`: supervised fine-tuning (M1). Data -> sequences -> model from sft.init (or
// resume) -> steps of left-padded, prompt-masked batches through the engine -> checkpoints.
#include "train/sft.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <random>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "data/jsonl.h"
#include "ops/cross_entropy.h"
#include "tokenizer/tokenizer.h"
#include "train/engine.h"
#include "train/run.h"
#include "train/sequences.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

namespace {
// Where the docstring of the problem's function is: [open, close) of its text between the quotes.
struct DocSpan {
  size_t open = std::string::npos, close = std::string::npos;
  std::string quote;
};
DocSpan find_docstring(const Problem& p) {
  DocSpan d;
  const std::string& s = p.prompt;
  size_t def = s.rfind("def " + p.entry_point + "(");
  if (def == std::string::npos) def = s.rfind("def ");
  if (def == std::string::npos) return d;
  for (const char* q : {"\"\"\"", "'''"}) {
    size_t at = s.find(q, def);
    if (at != std::string::npos && at < d.open) d.open = at, d.quote = q;
  }
  if (d.open == std::string::npos) return d;
  d.close = s.find(d.quote, d.open + 3);
  if (d.close == std::string::npos) d.open = std::string::npos;
  return d;
}
}  // namespace

std::string with_docstring(const Problem& p, const std::string& doc) {
  DocSpan d = find_docstring(p);
  if (d.open == std::string::npos) return "";
  return p.prompt.substr(0, d.open + 3) + doc + p.prompt.substr(d.close);
}

std::pair<std::string, std::string> docstring_task(const Problem& p) {
  const std::string& s = p.prompt;
  const DocSpan d = find_docstring(p);
  if (d.open == std::string::npos) return {};
  const size_t open = d.open, close = d.close;
  std::string doc = s.substr(open + 3, close - open - 3);
  // Drop the docstring's lines: from the start of the opening line to the end of the closing one.
  size_t line_start = s.rfind('\n', open);
  line_start = line_start == std::string::npos ? 0 : line_start + 1;
  size_t line_end = s.find('\n', close);
  line_end = line_end == std::string::npos ? s.size() : line_end + 1;
  std::string code = s.substr(0, line_start) + s.substr(line_end) + p.canonical_solution;
  while (!code.empty() && (code.back() == '\n' || code.back() == ' ')) code.pop_back();
  // Trim the docstring's surrounding blank space; its inner layout is kept.
  const size_t a = doc.find_first_not_of(" \n\t"), b = doc.find_last_not_of(" \n\t");
  if (a == std::string::npos) return {};
  doc = doc.substr(a, b - a + 1);
  return {code + "\n\n# docstring of " + p.entry_point + ":\n\"\"\"", doc + "\"\"\""};
}

std::vector<std::pair<std::string, std::string>> sft_pairs(const std::string& path, const std::string& task) {
  const auto first = read_jsonl(path, "examples");
  std::vector<std::pair<std::string, std::string>> out;
  const bool problems = first.front().contains("task_id") && first.front().contains("entry_point");
  if (problems) {
    for (auto& p : read_problems(path)) {
      if (task == "docstring") {
        auto d = docstring_task(p);
        if (!d.first.empty()) out.push_back(std::move(d));
      } else if (!p.canonical_solution.empty()) {
        out.emplace_back(p.prompt, p.canonical_solution);
      }
    }
  } else {
    if (task == "docstring")
      throw UsageError(path + ": sft.task=docstring needs a problems file (task_id, prompt, canonical_solution, "
                       "entry_point), not demonstrations");
    for (auto& d : read_demos(path)) out.emplace_back(d.prompt, d.completion);
  }
  if (out.empty())
    throw UsageError(path + ": no usable examples for sft.task=" + task +
                     (problems ? " (problems need a canonical_solution" +
                                     std::string(task == "docstring" ? " and a docstring in the prompt)" : ")")
                              : ""));
  return out;
}

std::pair<torch::Tensor, double> sft_batch_loss(GPT& model, const SeqBatch& b, const torch::Device& dev) {
  auto input = to_device(b.input, dev), targets = to_device(b.targets, dev), mask = to_device(b.mask, dev);
  auto hid = model->hidden(input, nullptr, mask);  // (B, W, C)
  const double count = static_cast<double>((b.targets != -100).sum().item<int64_t>());
  if (count == 0) return {hid.sum() * 0.0, 0.0};
  auto mean = linear_cross_entropy(hid.reshape({-1, hid.size(-1)}), model->lm_head_weight(), targets.reshape(-1));
  return {mean * count, count};
}

namespace {

struct Split {
  std::vector<Sequence> train, val;
};

// The train and validation sequences: sft.val_data, or a held-out share of sft.data.
Split sft_sequences(const Config& config, const Tokenizer& tok) {
  const SFTConfig& sc = config.sft;
  auto pairs = sft_pairs(sc.data, sc.task);
  auto val_pairs = !sc.val_data.empty() ? sft_pairs(sc.val_data, sc.task)
                                        : split_off_val(pairs, sc.val_fraction, static_cast<uint64_t>(config.run.seed));
  Split data;
  for (auto& [p, c] : pairs) data.train.push_back(make_sequence(tok, p, c));
  for (auto& [p, c] : val_pairs) data.val.push_back(make_sequence(tok, p, c));
  return data;
}

// The examples of step s (1-based): positions [(s-1)*per_step, s*per_step) of the pass stream,
// with sft.sort_by_length in length buckets across steps (StepOrder), then sorted by length
// inside the step so the micro-batches of grad_accum are alike too.
class SftSteps {
 public:
  SftSteps(const std::vector<Sequence>& train, int64_t block, uint64_t seed, int64_t per_step, bool by_length)
      : train_(train), block_(block), by_length_(by_length), order_(lengths(train, block), seed, per_step, by_length) {}
  std::vector<const Sequence*> examples(int64_t step) {
    std::vector<const Sequence*> out;
    for (int64_t i : order_.step(step)) out.push_back(&train_[static_cast<size_t>(i)]);
    if (by_length_)
      std::stable_sort(out.begin(), out.end(), [&](const Sequence* a, const Sequence* b) {
        return batch_length(*a, block_) < batch_length(*b, block_);
      });
    return out;
  }

 private:
  static std::vector<int64_t> lengths(const std::vector<Sequence>& train, int64_t block) {
    std::vector<int64_t> out;
    for (auto& s : train) out.push_back(batch_length(s, block));
    return out;
  }
  const std::vector<Sequence>& train_;
  int64_t block_;
  bool by_length_;
  StepOrder order_;
};

// One step: this rank's share of each of the grad_accum micro-batches of `rows`, through the engine.
StepOut sft_step(GPT& model, std::vector<Trainable>& trainables, Run& run, const std::vector<const Sequence*>& rows,
                 const TrainConfig& tc, bool mask_prompt, int64_t pad_id, int64_t step) {
  const int W = run.dist().world_size(), rank = run.dist().rank();
  const int64_t B_local = tc.batch_size / W, block = model->cfg.block_size;
  UpdateOut u = update(
      trainables, run.dist(), tc.grad_accum,
      [&](int64_t m) {
        std::vector<const Sequence*> mine(rows.begin() + m * tc.batch_size + rank * B_local,
                                          rows.begin() + m * tc.batch_size + (rank + 1) * B_local);
        SeqBatch b = make_batch(mine, block, mask_prompt, pad_id);
        auto [loss, count] = sft_batch_loss(model, b, run.device());
        return MicroOut{loss, count,
                        {{"real_tokens", static_cast<double>(b.real_tokens)},
                         {"padded_tokens", static_cast<double>(b.padded_tokens)},
                         {"completion_tokens", static_cast<double>(b.completion_tokens)}}};
      },
      tc.grad_clip, step);
  const double real = u.stats["real_tokens"], padded = u.stats["padded_tokens"];
  return StepOut{u.loss, real,
                 {{"grad_norm", u.grad_norms.at("")},
                  {"completion_tokens", u.stats["completion_tokens"]},
                  {"padding_share", padded / std::max(1.0, real + padded)}}};
}

// The validation loss: a token mean over the rows of every rank (row i of a batch on rank i mod W).
double sft_val_loss(GPT& model, const std::vector<Sequence>& val, int64_t batch, bool mask_prompt, int64_t pad_id,
                    Run& run) {
  const int W = run.dist().world_size(), rank = run.dist().rank();
  const int64_t block = model->cfg.block_size;
  const bool was = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  double sum = 0, count = 0;
  for (size_t lo = 0; lo < val.size(); lo += static_cast<size_t>(batch)) {
    std::vector<const Sequence*> rows;
    for (size_t i = lo + rank; i < std::min(val.size(), lo + batch); i += W) rows.push_back(&val[i]);
    if (rows.empty()) continue;
    auto [l, c] = sft_batch_loss(model, make_batch(rows, block, mask_prompt, pad_id), run.device());
    sum += l.item<double>();
    count += c;
  }
  if (was) model->train();
  auto tot = run.dist().all_reduce_sum({sum, count});
  return tot[1] > 0 ? tot[0] / tot[1] : 0.0;
}

}  // namespace

json sft(const Config& config) {
  const SFTConfig& sc = config.sft;
  const TrainConfig& tc = config.train;
  // -- inputs, all checked before the run folder is touched --
  if (sc.data.empty()) throw UsageError("sft.data: expected a problems or demos JSONL file");
  StartPoint init = load_start_point("sft.init", sc.init, "the checkpoint to fine-tune (an M0 run or a checkpoint folder)");
  LoadedModel& base = init.loaded;
  Tokenizer tok(init.tokenizer_path);
  const Split data = sft_sequences(config, tok);
  const GPTConfig gcfg = base.gpt;
  const int64_t block = gcfg.block_size;
  int64_t truncated = 0;
  for (auto& s : data.train) truncated += (s.prompt.size() + s.completion.size() > static_cast<size_t>(block) + 1);

  Config cfg = config;
  if (!config.explicitly_set.count("optim.lr")) cfg.optim.lr = base.config.optim.lr * sc.lr_ratio;
  const int64_t N = static_cast<int64_t>(data.train.size());
  const int64_t per_step = tc.batch_size * tc.grad_accum;
  const int64_t steps_per_epoch = (N + per_step - 1) / per_step;
  const int64_t max_steps = steps_for_epochs(config, N, sc.epochs);

  Run run(cfg, "sft");
  run.require_divisible("train.batch_size", tc.batch_size);
  Fingerprint fp = {{"data", content_checksum(sc.data)},
                    {"tokenizer", content_checksum(init.tokenizer_path)},
                    {"init", init.weights_checksum()}};
  if (!sc.val_data.empty()) fp["val_data"] = content_checksum(sc.val_data);
  json resume_state;
  if (run.resume_from()) resume_state = run.check_resume(fp);

  // -- model --
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(gcfg);
  load_weights(run.resume_from() ? *run.resume_from() : init.dir, model,
               run.resume_from() ? LoadMode::strict : LoadMode::trunk);
  base = LoadedModel{};  // the init copy is no longer needed
  TrainState ts = run.attach(model, resume_state);
  const int64_t start_step = ts.start_step;
  if (run.resume_from()) {
    spdlog::info("resume: continuing from {} (step {})", *run.resume_from(), start_step);
    if (start_step >= max_steps) return run.already_complete(start_step, max_steps);
  }
  if (run.is_main())
    spdlog::info("sft ({}): {} train / {} val examples, {} steps ({} per epoch), lr {:.3g}{}, {} truncated to block {}",
                 sc.task == "code" ? "Codex-S" : "Codex-D", N, data.val.size(), max_steps, steps_per_epoch, cfg.optim.lr,
                 config.explicitly_set.count("optim.lr") ? "" : fmt::format(" (init's x {})", sc.lr_ratio), truncated,
                 block);

  // -- steps --
  SftSteps steps(data.train, block, static_cast<uint64_t>(cfg.run.seed), per_step, cfg.sft.sort_by_length);
  DriverSpec spec;
  run.start(start_step, fp, spec);
  spec.trainables = &ts.trainables;
  spec.max_steps = max_steps;
  spec.patience = tc.patience;
  model->train();
  spec.step = [&](int64_t step, double) {
    StepOut out = sft_step(model, ts.trainables, run, steps.examples(step), tc, sc.mask_prompt, tok.pad_id(), step);
    out.stats["epoch"] = static_cast<double>((step * per_step - 1) / N);
    return out;
  };
  if (!data.val.empty())
    spec.evaluate = [&]() -> std::map<std::string, double> {
      return {{"val_loss", sft_val_loss(model, data.val, tc.batch_size, sc.mask_prompt, tok.pad_id(), run)}};
    };
  spec.save = [&](int64_t step) {
    run.save(step, {ModuleRef{"model", model, ts.opt.get()}}, tok.path(), json{{"sft_task", sc.task}});
  };
  DriverResult r = run_steps(spec);
  return run.finish(r, start_step, json{{"examples", N}, {"val_examples", data.val.size()}, {"truncated", truncated}});
}

namespace {

int run_sft(cli::Invocation& inv) {
  json out = sft(inv.config());
  std::cout << out.dump() << std::endl;
  return 0;
}

cli::Registrar reg({"sft", "", "supervised fine-tuning (M1): Codex-S (sft.task=code) or Codex-D (sft.task=docstring)",
                    {}, false, run_sft, {"run.", "train.", "optim.", "dist.", "sft.", "resume"}});

}  // namespace
}  // namespace codex
