// `codex-train reward train|eval|score`: the Bradley-Terry reward model.
#include "train/reward.h"

#include <iostream>
#include <random>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "config/device.h"
#include "data/jsonl.h"
#include "tokenizer/tokenizer.h"
#include "train/engine.h"
#include "train/run.h"
#include "train/sequences.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

torch::Tensor bradley_terry_loss(const torch::Tensor& r_chosen, const torch::Tensor& r_rejected,
                                 const torch::Tensor& margin, double center_coef) {
  auto loss = -torch::nn::functional::logsigmoid(r_chosen - r_rejected - margin);
  if (center_coef > 0) loss = loss + center_coef * (r_chosen + r_rejected).pow(2);
  return loss;
}

torch::Tensor score_sequences(GPT& model, const std::vector<const Sequence*>& rows, const Tokenizer& tok,
                              const torch::Device& device, const std::string& head) {
  ScoreBatch b = make_score_batch(rows, model->cfg.block_size, tok.pad_id());
  auto hid = model->hidden(to_device(b.input, device), nullptr, to_device(b.mask, device));  // (B, W, C)
  auto last = hid.select(1, hid.size(1) - 1);                               // (B, C): the eot of every row
  return model->scalar(head, last.unsqueeze(1)).squeeze(1);                 // (B)
}

namespace {

struct PairSeqs {
  std::vector<Sequence> chosen, rejected;
  std::vector<double> margin;
};

PairSeqs to_sequences(const Tokenizer& tok, const std::vector<Preference>& prefs) {
  PairSeqs s;
  for (auto& p : prefs) {
    s.chosen.push_back(make_sequence(tok, p.prompt, p.chosen));
    s.rejected.push_back(make_sequence(tok, p.prompt, p.rejected));
    s.margin.push_back(p.margin);
  }
  return s;
}

// Scores of pairs [lo, hi) of `s` restricted to `idx`: one forward over chosen and rejected rows.
std::pair<torch::Tensor, torch::Tensor> score_pairs(GPT& model, const Tokenizer& tok, const PairSeqs& s,
                                                    const std::vector<size_t>& idx, const torch::Device& dev) {
  std::vector<const Sequence*> rows;
  for (size_t i : idx) rows.push_back(&s.chosen[i]);
  for (size_t i : idx) rows.push_back(&s.rejected[i]);
  auto r = score_sequences(model, rows, tok, dev);
  const int64_t n = static_cast<int64_t>(idx.size());
  return {r.slice(0, 0, n), r.slice(0, n, 2 * n)};
}

}  // namespace

PairMetrics evaluate_pairs(GPT& model, const Tokenizer& tok, const std::vector<Preference>& prefs,
                           const torch::Device& device, int64_t batch, double center_coef) {
  const bool was = model->is_training();
  model->eval();
  torch::NoGradGuard ng;
  PairSeqs s = to_sequences(tok, prefs);
  PairMetrics m;
  double correct = 0, margin = 0, loss = 0;
  for (size_t lo = 0; lo < prefs.size(); lo += static_cast<size_t>(batch)) {
    std::vector<size_t> idx;
    for (size_t i = lo; i < std::min(prefs.size(), lo + batch); ++i) idx.push_back(i);
    auto [rc, rr] = score_pairs(model, tok, s, idx, device);
    auto mg = torch::tensor(std::vector<double>(s.margin.begin() + lo, s.margin.begin() + lo + idx.size()),
                            rc.options());
    correct += (rc > rr).sum().item<double>();
    margin += (rc - rr).sum().item<double>();
    loss += bradley_terry_loss(rc, rr, mg, center_coef).sum().item<double>();
  }
  if (was) model->train();
  m.pairs = static_cast<int64_t>(prefs.size());
  if (m.pairs > 0) {
    m.accuracy = correct / m.pairs;
    m.mean_margin = margin / m.pairs;
    m.loss = loss / m.pairs;
  }
  return m;
}

namespace {

// One step: this rank's share of each of the grad_accum micro-batches of the pairs `rows`.
StepOut reward_step(GPT& model, const Tokenizer& tok, std::vector<Trainable>& trainables, Run& run,
                    const PairSeqs& data, const std::vector<size_t>& rows, const TrainConfig& tc, double center_coef,
                    int64_t step) {
  const int W = run.dist().world_size(), rank = run.dist().rank();
  const int64_t B_local = tc.batch_size / W;
  double tokens = 0;
  UpdateOut u = update(
      trainables, run.dist(), tc.grad_accum,
      [&](int64_t m) {
        std::vector<size_t> mine(rows.begin() + m * tc.batch_size + rank * B_local,
                                 rows.begin() + m * tc.batch_size + (rank + 1) * B_local);
        auto [r_c, r_r] = score_pairs(model, tok, data, mine, run.device());
        std::vector<double> mg;
        for (size_t i : mine) {
          mg.push_back(data.margin[i]);
          tokens += static_cast<double>(data.chosen[i].prompt.size() + data.chosen[i].completion.size() +
                                        data.rejected[i].prompt.size() + data.rejected[i].completion.size());
        }
        auto loss = bradley_terry_loss(r_c, r_r, torch::tensor(mg, r_c.options()), center_coef);
        return MicroOut{loss.sum(), static_cast<double>(mine.size()),
                        {{"correct", (r_c > r_r).sum().item<double>()},
                         {"margin_sum", (r_c - r_r).sum().item<double>()},
                         {"score_sum", (r_c + r_r).sum().item<double>()}}};
      },
      tc.grad_clip, step);
  const double n = std::max(1.0, u.count);
  return StepOut{u.loss, tokens * W,
                 {{"grad_norm", u.grad_norms.at("")},
                  {"accuracy", u.stats["correct"] / n},
                  {"mean_margin", u.stats["margin_sum"] / n},
                  {"mean_score", u.stats["score_sum"] / (2 * n)}}};
}

// Validation: every rank scores its share of the pairs (pair i on rank i mod W); sums are combined.
std::map<std::string, double> reward_val_metrics(GPT& model, const Tokenizer& tok, const std::vector<Preference>& val,
                                                 int64_t batch, double center_coef, Run& run) {
  const int W = run.dist().world_size(), rank = run.dist().rank();
  std::vector<Preference> mine;
  for (size_t i = static_cast<size_t>(rank); i < val.size(); i += static_cast<size_t>(W)) mine.push_back(val[i]);
  PairMetrics m = evaluate_pairs(model, tok, mine, run.device(), batch, center_coef);
  auto t = run.dist().all_reduce_sum({m.accuracy * m.pairs, m.mean_margin * m.pairs, m.loss * m.pairs,
                                      static_cast<double>(m.pairs)});
  const double n = std::max(1.0, t[3]);
  return {{"val_accuracy", t[0] / n}, {"val_mean_margin", t[1] / n}, {"val_loss", t[2] / n}};
}

}  // namespace

json train_reward(const Config& config) {
  const RewardConfig& rc = config.reward;
  const TrainConfig& tc = config.train;
  if (rc.data.empty()) throw UsageError("reward.data: expected a preferences JSONL file");
  StartPoint init = load_start_point("reward.init", rc.init, "the checkpoint whose trunk starts the reward model");
  LoadedModel& base = init.loaded;
  Tokenizer tok(init.tokenizer_path);
  auto prefs = read_preferences(rc.data);
  auto val = !rc.val_data.empty() ? read_preferences(rc.val_data)
                                  : split_off_val(prefs, rc.val_fraction, static_cast<uint64_t>(config.run.seed));
  // reward.margin is part of the loss: validation pairs get it too, so val_loss (and
  // train.patience, which watches it) is the loss training minimises.
  for (auto& p : prefs) p.margin += rc.margin;
  for (auto& p : val) p.margin += rc.margin;
  PairSeqs data = to_sequences(tok, prefs);
  const int64_t N = static_cast<int64_t>(prefs.size());
  const int64_t per_step = tc.batch_size * tc.grad_accum;
  const int64_t max_steps = steps_for_epochs(config, N, rc.epochs);
  Config cfg = config;
  if (!config.explicitly_set.count("optim.lr")) cfg.optim.lr = base.config.optim.lr * 0.1;

  Run run(cfg, "reward");
  run.require_divisible("train.batch_size", tc.batch_size);
  Fingerprint fp = {{"data", content_checksum(rc.data)},
                    {"tokenizer", content_checksum(init.tokenizer_path)},
                    {"init", init.weights_checksum()}};
  json resume_state;
  if (run.resume_from()) resume_state = run.check_resume(fp);

  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT model(base.gpt);
  model->add_scalar_head("reward_head");
  if (run.resume_from()) load_weights(*run.resume_from(), model);
  else load_weights(init.dir, model, LoadMode::trunk);  // the trunk of the LM; the head starts fresh
  const std::string tokenizer_path = init.tokenizer_path;
  base = LoadedModel{};
  TrainState ts = run.attach(model, resume_state);
  const int64_t start_step = ts.start_step;
  if (run.resume_from() && start_step >= max_steps) return run.already_complete(start_step, max_steps);
  if (run.is_main())
    spdlog::info("reward: {} train / {} val pairs, {} steps, lr {:.3g}", N, val.size(), max_steps, cfg.optim.lr);

  // Step s takes positions [(s-1)*per_step, s*per_step) of the stream of shuffled passes (plain
  // StepOrder: only the number of pairs matters; with none, no step runs).
  StepOrder order(std::vector<int64_t>(static_cast<size_t>(std::max<int64_t>(N, 1)), 0),
                  static_cast<uint64_t>(cfg.run.seed), per_step, false);
  DriverSpec spec;
  run.start(start_step, fp, spec);
  spec.trainables = &ts.trainables;
  spec.max_steps = max_steps;
  spec.patience = tc.patience;
  model->train();
  spec.step = [&](int64_t step, double) {
    std::vector<size_t> rows;
    for (int64_t i : order.step(step)) rows.push_back(static_cast<size_t>(i));
    return reward_step(model, tok, ts.trainables, run, data, rows, tc, rc.center_coef, step);
  };
  if (!val.empty())
    spec.evaluate = [&]() -> std::map<std::string, double> {
      return reward_val_metrics(model, tok, val, tc.batch_size, rc.center_coef, run);
    };
  spec.save = [&](int64_t step) {
    run.save(step, {ModuleRef{"model", model, ts.opt.get()}}, tokenizer_path, json::object());
  };
  DriverResult r = run_steps(spec);
  return run.finish(r, start_step, json{{"pairs", N}, {"val_pairs", val.size()}});
}

namespace {

int run_reward_train(cli::Invocation& inv) {
  std::cout << train_reward(inv.config()).dump() << std::endl;
  return 0;
}

// A reward model from a user's path (checkpoint, run dir): it must have a reward head.
LoadedModel load_reward_model(const std::string& path, const torch::Device& device) {
  LoadedModel lm = load_model(path, device);
  if (!lm.model->has_head("reward_head"))
    throw UsageError("'" + path + "' is not a reward model (its checkpoint has no reward head; train one with "
                     "`codex-train reward train`)");
  if (lm.tokenizer_path.empty()) throw UsageError("'" + path + "': checkpoint carries no tokenizer");
  freeze(lm.model);
  return lm;
}

int run_reward_eval(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const std::string prefs_path = inv.require("prefs");
  auto prefs = read_preferences(prefs_path);
  LoadedModel lm = load_reward_model(inv.require("checkpoint"), pick_device(cfg.run));
  Tokenizer tok(lm.tokenizer_path);
  PairMetrics m = evaluate_pairs(lm.model, tok, prefs, pick_device(cfg.run));
  std::cout << json{{"accuracy", m.accuracy}, {"pairs", m.pairs}, {"mean_margin", m.mean_margin}, {"loss", m.loss}}.dump()
            << std::endl;
  return 0;
}

int run_reward_score(cli::Invocation& inv) {
  Config cfg = inv.config();
  configure_threads(cfg.run.threads);
  const std::string input = inv.require("input");
  auto items = read_prompt_completions(input);
  const torch::Device dev = pick_device(cfg.run);
  LoadedModel lm = load_reward_model(inv.require("checkpoint"), dev);
  Tokenizer tok(lm.tokenizer_path);
  torch::NoGradGuard ng;
  std::vector<Sequence> seqs;
  for (auto& [p, c] : items) seqs.push_back(make_sequence(tok, p, c));
  for (size_t lo = 0; lo < seqs.size(); lo += 16) {
    std::vector<const Sequence*> rows;
    for (size_t i = lo; i < std::min(seqs.size(), lo + 16); ++i) rows.push_back(&seqs[i]);
    auto s = score_sequences(lm.model, rows, tok, dev).to(torch::kCPU);
    for (int64_t i = 0; i < s.size(0); ++i) std::cout << json{{"score", s[i].item<double>()}}.dump() << "\n";
  }
  std::cout.flush();
  return 0;
}

cli::Registrar reg_train({"reward", "train", "train the reward model on preference pairs (reward.data)", {}, false,
                          run_reward_train, {"run.", "train.", "optim.", "dist.", "reward.", "resume"}});
cli::Registrar reg_eval({"reward", "eval", "pairwise accuracy of a reward model: ONE JSON line",
                         {{"checkpoint", true, "the reward model"}, {"prefs", true, "preferences JSONL"}}, false,
                         run_reward_eval});
cli::Registrar reg_score({"reward", "score", "one JSON line {\"score\"} per {prompt, completion} line",
                          {{"checkpoint", true, "the reward model"}, {"input", true, "JSONL with prompt, completion"}},
                          false, run_reward_score});

}  // namespace
}  // namespace codex
