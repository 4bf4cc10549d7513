// `codex-train ppo`: M1 -> M2. The recipe, top-down: inputs -> run -> models -> driver, where one
// iteration (a driver step) is
//   pick_prompts -> roll_out (KV-cache sampler, finished rows leave the batch) -> score without
//   autograd (old / reference log-probs at the sampling temperature, values, reward model,
//   execution, safety) -> advantages (per-token rewards -beta_kl * kl_t, the sequence reward at the
//   end token; GAE, or GRPO / RLOO over each prompt's samples) -> update (ppo.epochs x
//   ppo.minibatches engine updates of the policy and the value model) -> reduce the metrics over
//   ranks (IterationSums) -> adaptive KL coefficient.
#include "rl/ppo.h"

#include <chrono>
#include <iostream>
#include <random>
#include <set>

#include "checkpoint/checkpoint.h"
#include "cli/registry.h"
#include "data/jsonl.h"
#include "eval/humaneval.h"
#include "generate/generate.h"
#include "ops/logprob.h"
#include "rl/rewards.h"
#include "rl/rl_math.h"
#include "tokenizer/tokenizer.h"
#include "train/engine.h"
#include "train/reward.h"
#include "train/run.h"
#include "train/sequences.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

namespace codex {

using json = nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct PromptItem {
  std::string prompt, task_id, test, entry_point;
};

// prompts, demos or problems JSONL; tests come from the problems file itself or from ppo.problems.
std::vector<PromptItem> read_prompt_items(const std::string& path, const std::string& problems_path) {
  std::vector<PromptItem> items;
  std::map<std::string, Problem> by_id;
  if (!problems_path.empty())
    for (auto& p : read_problems(problems_path)) by_id[p.task_id] = p;
  for_each_jsonl(path, [&](int64_t line, const json& j) {
    PromptItem it;
    it.prompt = jsonl_string(j, "prompt", path, line);
    it.task_id = jsonl_string(j, "task_id", path, line, false);
    it.test = jsonl_string(j, "test", path, line, false);
    it.entry_point = jsonl_string(j, "entry_point", path, line, false);
    if (it.test.empty() && !it.task_id.empty() && by_id.count(it.task_id)) {
      it.test = by_id[it.task_id].test;
      it.entry_point = by_id[it.task_id].entry_point;
    }
    if (!it.test.empty() && it.entry_point.empty())
      jsonl_error(path, line, "a prompt with a test needs its entry_point");
    items.push_back(std::move(it));
  }, "prompts");
  return items;
}

// Per-token log-probs (B, W) of the targets under logits / temperature (the sampling
// temperature), 0 where targets are -100; optionally the entropy of that distribution per token.
// Only the scored positions go through the fused op (ops/logprob.h): no (B, W, V) tensor.
torch::Tensor token_logp(GPT& m, const torch::Tensor& input, const torch::Tensor& mask, const torch::Tensor& targets,
                         double temperature, torch::Tensor* entropy = nullptr) {
  auto hid = m->hidden(input, nullptr, mask);  // (B, W, C)
  auto idx = (targets != -100).reshape(-1).nonzero().squeeze(1);
  auto r = token_logprobs(hid.reshape({-1, hid.size(-1)}).index_select(0, idx), m->lm_head_weight(),
                          targets.reshape(-1).index_select(0, idx), temperature, entropy != nullptr);
  auto zeros = torch::zeros({targets.numel()}, r.logprobs.options());
  if (entropy) *entropy = zeros.index_put({idx}, r.entropy).view(targets.sizes());
  return zeros.index_put({idx}, r.logprobs).view(targets.sizes());
}

// ---------------------------------------------------------------------------------------------
// Setup: inputs checked before anything is written, then models, optimizers and resume.

// What the inputs decide: which rewards and models a run uses.
struct Plan {
  bool critic = false;  // gae: a value model
  bool use_rm = false, use_exec = false, use_safety = false;
  int64_t tested = 0;    // prompts with tests
  std::vector<Demo> ptx;  // PPO-ptx demonstrations (ppo.alpha > 0)
  GPTConfig gcfg;         // the policy's, dropout off
  double init_dropout = 0;
};

void check_options(const Config& config) {
  if (config.ppo.prompts.empty()) throw UsageError("ppo.prompts: expected a prompts, demos or problems JSONL file");
  if (config.dist.zero1) throw UsageError("dist.zero1: not supported by ppo (two optimizers); set dist.zero1=false");
}

Plan plan_run(const Config& config, const GPTConfig& init_gpt, const std::vector<PromptItem>& items,
              const rl::SafetyRules& safety, const CustomReward& custom) {
  const PPOConfig& pc = config.ppo;
  Plan plan;
  plan.critic = pc.advantage == "gae";
  for (auto& it : items) plan.tested += !it.test.empty();
  plan.use_rm = !pc.reward_model.empty() && pc.w_rm != 0;
  plan.use_exec = plan.tested > 0 && pc.w_exec != 0;
  // A rule-based reward alone is a reward too (U = alpha L_SFT + beta L_RLHF + gamma Omega).
  plan.use_safety = pc.gamma != 0 && !safety.empty();
  if (!plan.use_rm && !plan.use_exec && !plan.use_safety && !custom)
    throw UsageError("ppo: no reward: set ppo.reward_model (with ppo.w_rm != 0), give prompts with tests "
                     "(a problems file as ppo.prompts or ppo.problems) with ppo.w_exec != 0, or set "
                     "ppo.safety.patterns with ppo.gamma != 0");
  if (pc.alpha > 0) {
    if (pc.ptx_data.empty()) throw UsageError("ppo.alpha > 0 needs ppo.ptx_data (a demos JSONL file)");
    plan.ptx = read_demos(pc.ptx_data);
  }
  if (!plan.critic && pc.rollout.samples_per_prompt < 2)
    throw UsageError("ppo.advantage=" + pc.advantage + " needs ppo.rollout.samples_per_prompt >= 2");
  // Dropout off in PPO: the ratio pi / pi_old must compare one network with itself (old log-probs
  // and values are scored without autograd, new ones in train mode; with dropout the first ratio
  // would not be 1 and the clipping would act on noise).
  plan.gcfg = init_gpt;
  plan.init_dropout = plan.gcfg.dropout;
  plan.gcfg.dropout = 0.0;
  if (pc.rollout.max_new_tokens >= plan.gcfg.block_size)
    throw UsageError("ppo.rollout.max_new_tokens (" + std::to_string(pc.rollout.max_new_tokens) +
                     ") must be smaller than the model's block_size (" + std::to_string(plan.gcfg.block_size) + ")");
  return plan;
}

Fingerprint fingerprint(const PPOConfig& pc, const StartPoint& init, const std::string& ref_path, bool use_rm) {
  Fingerprint fp = {{"prompts", content_checksum(pc.prompts)},
                    {"tokenizer", content_checksum(init.tokenizer_path)},
                    {"init", init.weights_checksum()},
                    {"ref", content_checksum((fs::path(ref_path) / "model.pt").string())}};
  if (use_rm) fp["reward_model"] = content_checksum((fs::path(resolve_checkpoint(pc.reward_model)) / "model.pt").string());
  return fp;
}

// policy and value (trained, the value model for gae only), reference and reward model (frozen).
struct Models {
  GPT policy{nullptr}, value{nullptr};
  LoadedModel ref, rm;
};

// The order of construction is part of the run: every GPT built draws its initial weights from
// the seeded generator, and the value head keeps its drawn initialisation.
Models load_models(Run& run, const PPOConfig& pc, const Plan& plan, StartPoint& init, const std::string& ref_path) {
  const torch::Device dev = run.device();
  Models m;
  torch::manual_seed(static_cast<uint64_t>(run.cfg().run.seed));
  m.policy = GPT(plan.gcfg);
  load_weights(run.resume_from() ? *run.resume_from() : init.dir, m.policy,
               run.resume_from() ? LoadMode::strict : LoadMode::trunk);
  init.loaded = LoadedModel{};
  m.policy->to(dev);
  m.ref = load_model(ref_path, dev);
  freeze(m.ref.model);
  if (m.ref.gpt.vocab_size != plan.gcfg.vocab_size)
    throw UsageError("ppo.ref: vocabulary " + std::to_string(m.ref.gpt.vocab_size) + " differs from the policy's " +
                     std::to_string(plan.gcfg.vocab_size));
  if (plan.use_rm) {
    m.rm = load_model(pc.reward_model, dev);
    if (!m.rm.model->has_head("reward_head"))
      throw UsageError("ppo.reward_model: '" + pc.reward_model + "' has no reward head (train one with `reward train`)");
    freeze(m.rm.model);
  }
  if (plan.critic) {
    const std::string vpath =
        resolve_checkpoint(!pc.value_init.empty() ? pc.value_init : plan.use_rm ? pc.reward_model : pc.init);
    GPTConfig vcfg = load_model(vpath).gpt;
    vcfg.dropout = 0.0;  // as the policy's
    m.value = GPT(vcfg);
    m.value->add_scalar_head("value_head");
    if (run.resume_from()) load_weights(*run.resume_from(), m.value, LoadMode::strict, "value");
    else load_weights(vpath, m.value, LoadMode::trunk);
    m.value->to(dev);
  }
  return m;
}

struct Optimizers {
  std::unique_ptr<torch::optim::AdamW> policy, value;
  std::vector<Trainable> trainables;
};

Optimizers make_optimizers(Run& run, Models& m, bool critic, double value_lr_ratio) {
  std::vector<torch::Tensor> watched = m.policy->parameters();
  if (critic)
    for (auto& p : m.value->parameters()) watched.push_back(p);
  run.dist().watch(watched);
  Optimizers o;
  o.policy = make_adamw(*m.policy, run.cfg().optim);
  o.trainables = {{"", m.policy->parameters(), o.policy.get(), 1.0}};
  if (critic) {
    o.value = make_adamw(*m.value, run.cfg().optim);
    o.trainables.push_back({"value", m.value->parameters(), o.value.get(), value_lr_ratio});
  }
  return o;
}

// Optimizer moments, RNG and KL coefficient of the checkpoint resumed from; the step it ended at.
int64_t resume(Run& run, const json& state, Optimizers& o, rl::KLController& klc) {
  load_optimizer(*run.resume_from(), *o.policy, "model");
  if (o.value) load_optimizer(*run.resume_from(), *o.value, "value");
  load_rng(*run.resume_from());
  klc.coef = state.at("kl_coef");
  return state.at("step");
}

void log_plan(const Config& config, const Plan& plan, size_t n_items, bool custom) {
  const PPOConfig& pc = config.ppo;
  if (plan.init_dropout > 0)
    spdlog::info("ppo: dropout off (the init model has model.dropout={}): old and new log-probs come from the same "
                 "network, so the first ratio is 1", plan.init_dropout);
  spdlog::info("ppo ({}): {} prompts ({} with tests), {} x {} samples per iteration, {} iterations; rewards:{}{}{}{}; "
               "KL {} coef {}{}", pc.advantage, n_items, plan.tested, pc.rollout.prompts_per_step,
               pc.rollout.samples_per_prompt, config.train.max_steps, plan.use_rm ? " reward model" : "",
               plan.use_exec ? " execution" : "", custom ? " custom" : "",
               plan.use_safety ? " safety (gamma x Omega)" : "", pc.kl.estimator, pc.kl.coef,
               pc.kl.target > 0 ? fmt::format(" (adaptive, target {})", pc.kl.target) : "");
}

// ---------------------------------------------------------------------------------------------
// One iteration. Everything it reads, fixed at setup (the KL coefficient changes between iterations).
struct Ppo {
  const PPOConfig& pc;
  const TrainConfig& tc;
  const Config& cfg;  // the run's resolved config
  const Plan& plan;
  const Tokenizer& tok;
  const TokenTable& table;
  const std::vector<PromptItem>& items;
  const rl::SafetyRules& safety;
  const CustomReward& custom;
  const eval::Sandbox* sandbox;  // execution rewards only
  Models& m;
  std::vector<Trainable>& trainables;
  Run& run;
  rl::KLController& klc;
  std::vector<int64_t>& visits;  // per item: how often an iteration picked it so far (all ranks)
  int64_t P, K;  // prompts per iteration (all ranks), samples per prompt
  int W, rank;
  int64_t block, max_prompt;
  uint64_t seed;
  torch::Device dev;
};

// This rank's prompts of the iteration and the sampling options of its rollout.
struct Prompts {
  std::vector<int64_t> all;                    // the iteration's prompts over every rank (indices into Ppo::items)
  std::vector<int64_t> mine;                   // this rank's slice of them
  std::vector<std::vector<int32_t>> ids;       // their tokens, cut from the left to max_prompt
  SamplingOptions so;
};

// The iteration's prompts over all ranks: epochs of seeded permutations of the items, P a step.
std::vector<int64_t> iteration_picks(int64_t n_items, int64_t P, uint64_t seed, int64_t step) {
  std::vector<int64_t> pick, perm;
  int64_t pe = -1;
  for (int64_t i = (step - 1) * P; i < step * P; ++i) {
    if (i / n_items != pe) pe = i / n_items, perm = epoch_order(n_items, seed, pe, 0x51ED270B7A1ULL);
    pick.push_back(perm[static_cast<size_t>(i % n_items)]);
  }
  return pick;
}

// Every rank computes the same list of the iteration's prompts and keeps its slice.
Prompts pick_prompts(const Ppo& p, int64_t step) {
  const PPOConfig& pc = p.pc;
  const std::vector<int64_t> pick = iteration_picks(static_cast<int64_t>(p.items.size()), p.P, p.seed, step);
  const int64_t P_local = p.P / p.W;
  Prompts out;
  out.all = pick;
  out.mine.assign(pick.begin() + p.rank * P_local, pick.begin() + (p.rank + 1) * P_local);
  SamplingOptions& so = out.so;
  so = SamplingOptions::from(p.cfg.generate, p.seed);
  so.temperature = pc.rollout.temperature;  // the log-probs below use the same temperature
  so.top_p = 1.0;                           // no truncation: the ratio must use the sampled distribution
  so.top_k = 0;
  so.disallowed.clear();
  so.max_new_tokens = pc.rollout.max_new_tokens;
  so.batch_size = std::max<int64_t>(1, P_local * p.K);  // one KV-cache decode for the whole rollout
  for (size_t i = 0; i < out.mine.size(); ++i) {
    auto ids = p.tok.encode(p.items[static_cast<size_t>(out.mine[i])].prompt);
    if (static_cast<int64_t>(ids.size()) > p.max_prompt) ids.erase(ids.begin(), ids.end() - p.max_prompt);
    out.ids.push_back(std::move(ids));
    // One RNG per (iteration, prompt slot, sample): independent of the world size.
    so.prompt_seeds.push_back(p.seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL * static_cast<uint64_t>(p.P * p.K) +
                              static_cast<uint64_t>((p.rank * P_local + static_cast<int64_t>(i)) * p.K));
  }
  return out;
}

const PromptItem& item_of(const Ppo& p, const Prompts& pr, const Sample& s) {
  return p.items[static_cast<size_t>(pr.mine[static_cast<size_t>(s.prompt_index)])];
}

// The samples (R = P_local * K rows, prompt-major) as one left-padded batch on the device.
struct Rollout {
  std::vector<Sample> samples;
  int64_t R = 0;
  SeqBatch b;
  torch::Tensor input, mask, targets;  // (R, Wd)
  torch::Tensor resp;                  // (R, Wd) float: 1 on response tokens
  double gen_tokens = 0, seconds = 0;  // tokens sampled, time of the sampling
};

Rollout roll_out(const Ppo& p, const Prompts& pr) {
  Rollout ro;
  const auto t_roll = Clock::now();
  p.m.policy->eval();
  {
    torch::NoGradGuard ng;
    ro.samples = generate_tokens(gpt_logits_fn(p.m.policy), p.table, pr.ids, p.K, pr.so, p.block, p.dev);
  }
  ro.seconds = seconds_since(t_roll);
  ro.R = static_cast<int64_t>(ro.samples.size());
  std::vector<Sequence> seqs(static_cast<size_t>(ro.R));
  for (int64_t i = 0; i < ro.R; ++i) {
    seqs[i].prompt = pr.ids[static_cast<size_t>(ro.samples[i].prompt_index)];
    seqs[i].completion.assign(ro.samples[i].tokens.begin(), ro.samples[i].tokens.end());
    if (seqs[i].completion.empty()) seqs[i].completion.push_back(p.tok.eot_id());  // nothing sampled: score an end
    ro.gen_tokens += static_cast<double>(ro.samples[i].tokens.size());
  }
  std::vector<const Sequence*> rows;
  for (auto& s : seqs) rows.push_back(&s);
  ro.b = make_batch(rows, p.block, /*mask_prompt=*/true, p.tok.pad_id());
  ro.input = to_device(ro.b.input, p.dev), ro.mask = to_device(ro.b.mask, p.dev);
  ro.targets = to_device(ro.b.targets, p.dev);
  ro.resp = (ro.targets != -100).to(torch::kFloat);
  return ro;
}

// Per-row rewards (R each) and the scores PPO's ratios and advantages start from.
struct Scores {
  torch::Tensor old_logp, ref_logp, old_values;  // (R, Wd); values for gae only
  std::vector<double> r_rm, r_exec, r_custom, omega, violations, seq_reward;
  std::vector<int> outcome;  // rl::Outcome, -1 without a test
  double no_eos = 0, seconds = 0;
};

std::vector<double> reward_model_scores(const Ppo& p, const Prompts& pr, const Rollout& ro) {
  std::vector<Sequence> texts;
  for (int64_t i = 0; i < ro.R; ++i) texts.push_back(make_sequence(p.tok, item_of(p, pr, ro.samples[i]).prompt, ro.samples[i].text));
  std::vector<const Sequence*> tr;
  for (auto& s : texts) tr.push_back(&s);
  auto s = score_sequences(p.m.rm.model, tr, p.tok, p.dev).to(torch::kCPU);
  std::vector<double> r(static_cast<size_t>(ro.R), 0.0);
  for (int64_t i = 0; i < ro.R; ++i) r[i] = s[i].item<double>();
  return r;
}

// Rows whose prompt has a test run in the sandbox: outcome and execution reward.
void execution_rewards(const Ppo& p, const Prompts& pr, const Rollout& ro, Scores& sc) {
  std::vector<eval::Problem> of;
  std::vector<std::string> completions;
  std::vector<int64_t> which;
  for (int64_t i = 0; i < ro.R; ++i) {
    const PromptItem& it = item_of(p, pr, ro.samples[i]);
    if (it.test.empty()) continue;
    of.push_back(eval::Problem{it.task_id, it.prompt, "", it.test, it.entry_point});
    completions.push_back(ro.samples[i].text);
    which.push_back(i);
  }
  if (p.pc.exec_reward == "partial") {
    const std::vector<rl::Grade> graded = rl::grade_completions_partial(*p.sandbox, of, completions);
    for (size_t j = 0; j < which.size(); ++j) {
      sc.outcome[which[j]] = static_cast<int>(graded[j].outcome);
      sc.r_exec[which[j]] = rl::partial_execution_reward(graded[j]);
    }
    return;
  }
  const std::vector<rl::Outcome> graded = rl::grade_completions(*p.sandbox, of, completions);
  for (size_t j = 0; j < which.size(); ++j) {
    const rl::Outcome o = graded[j];
    sc.outcome[which[j]] = static_cast<int>(o);
    sc.r_exec[which[j]] = rl::execution_reward(o);
  }
}

// Without autograd: old and reference log-probs, values, and every reward of each row.
Scores score(const Ppo& p, const Prompts& pr, const Rollout& ro) {
  const PPOConfig& pc = p.pc;
  const int64_t R = ro.R;
  const auto t_score = Clock::now();
  Scores sc;
  sc.r_rm.assign(R, 0.0), sc.r_exec.assign(R, 0.0), sc.r_custom.assign(R, 0.0), sc.omega.assign(R, 0.0);
  sc.violations.assign(R, 0.0), sc.outcome.assign(R, -1);
  {
    torch::NoGradGuard ng;
    sc.old_logp = token_logp(p.m.policy, ro.input, ro.mask, ro.targets, pc.rollout.temperature);
    sc.ref_logp = token_logp(p.m.ref.model, ro.input, ro.mask, ro.targets, pc.rollout.temperature);
    if (p.plan.critic)
      sc.old_values = p.m.value->scalar("value_head", p.m.value->hidden(ro.input, nullptr, ro.mask)) * ro.resp;
    if (p.plan.use_rm) sc.r_rm = reward_model_scores(p, pr, ro);
  }
  if (p.plan.use_exec) execution_rewards(p, pr, ro, sc);
  for (int64_t i = 0; i < R; ++i) {
    const Sample& s = ro.samples[i];
    sc.violations[i] = static_cast<double>(p.safety.violations(s.text));
    const bool hit_limit = s.finish_reason == "length";
    sc.no_eos += hit_limit;
    sc.omega[i] = sc.violations[i] + (hit_limit ? pc.safety.no_eos_penalty : 0.0);
    if (p.custom) sc.r_custom[i] = p.custom(item_of(p, pr, s).prompt, s.text);
  }
  sc.seconds = seconds_since(t_score);
  sc.seq_reward.resize(R);
  for (int64_t i = 0; i < R; ++i)
    sc.seq_reward[i] = pc.w_rm * sc.r_rm[i] + pc.w_exec * sc.r_exec[i] + sc.r_custom[i] - pc.gamma * sc.omega[i];
  return sc;
}

// Per-token rewards (-kl_coef * kl_t, the sequence reward at the end token) and their advantages.
rl::Advantages advantages(Ppo& p, const Rollout& ro, const Scores& sc) {
  const PPOConfig& pc = p.pc;
  rl::AdvantageInputs ai;
  ai.logp = sc.old_logp;
  ai.ref_logp = sc.ref_logp;
  ai.resp = ro.resp;
  if (p.plan.critic) ai.values = sc.old_values;
  ai.seq_reward = torch::tensor(sc.seq_reward, torch::kFloat).to(p.dev);
  ai.mode = pc.advantage;
  ai.estimator = pc.kl.estimator;
  ai.kl_coef = p.klc.coef;
  ai.gamma = pc.gamma_discount;
  ai.lam = pc.lam;
  ai.group = p.K;
  ai.whiten = pc.whiten;
  // Whitening statistics over every rank's rollout (as the loss normalisation is).
  ai.over_ranks = [&p](const std::vector<double>& v) { return p.run.dist().all_reduce_sum(v); };
  return rl::ppo_advantages(ai);
}

// PPO-ptx: the next-token loss (mean over tokens) of one demonstration per row of the minibatch.
torch::Tensor ptx_loss(const Ppo& p, const std::vector<int64_t>& idx, int64_t step, int64_t epoch, int64_t R) {
  const std::vector<Demo>& ptx = p.plan.ptx;
  std::vector<Sequence> demo;
  for (size_t j = 0; j < idx.size(); ++j) {
    const Demo& d = ptx[rl::ptx_demo_index(step, epoch, p.rank, p.W, R, idx[j], ptx.size())];
    demo.push_back(make_sequence(p.tok, d.prompt, d.completion));
  }
  std::vector<const Sequence*> dr;
  for (auto& s : demo) dr.push_back(&s);
  SeqBatch db = make_batch(dr, p.block, true, p.tok.pad_id());
  auto dlogp = token_logp(p.m.policy, db.input.to(p.dev), db.mask.to(p.dev), db.targets.to(p.dev), 1.0);
  const double dn = std::max<int64_t>(1, (db.targets != -100).sum().item<int64_t>());
  return -dlogp.sum() / dn;
}

// One minibatch (rows idx): the clipped policy loss, entropy bonus, value loss and ptx term, summed
// over its response tokens; stats are sums too.
MicroOut minibatch_loss(const Ppo& p, const Rollout& ro, const Scores& sc, const rl::Advantages& av,
                        const std::vector<int64_t>& idx, const torch::Tensor& ix, int64_t step, int64_t epoch) {
  const PPOConfig& pc = p.pc;
  auto in = ro.input.index_select(0, ix), mk = ro.mask.index_select(0, ix), tg = ro.targets.index_select(0, ix);
  auto rm_ = ro.resp.index_select(0, ix);
  torch::Tensor ent;
  auto logp = token_logp(p.m.policy, in, mk, tg, pc.rollout.temperature, &ent);
  auto pl = rl::policy_loss(logp, sc.old_logp.index_select(0, ix), av.advantages.index_select(0, ix), pc.clip);
  auto loss = pc.beta * (pl.loss * rm_).sum() - pc.entropy_coef * (ent * rm_).sum();
  std::map<std::string, double> st = {{"policy_loss", (pl.loss * rm_).sum().item<double>()},
                                      {"clipped", (pl.clipped * rm_).sum().item<double>()},
                                      {"approx_kl", (pl.approx_kl * rm_).sum().item<double>()},
                                      {"entropy", (ent.detach() * rm_).sum().item<double>()}};
  if (p.plan.critic) {
    auto v = p.m.value->scalar("value_head", p.m.value->hidden(in, nullptr, mk));
    auto vl = rl::value_loss(v, sc.old_values.index_select(0, ix), av.returns.index_select(0, ix), pc.clip_value);
    loss = loss + pc.vf_coef * (vl * rm_).sum();
    st["value_loss"] = (vl * rm_).sum().item<double>();
  }
  const double count = rm_.sum().item<double>();
  if (!p.plan.ptx.empty()) {
    auto ptx_mean = ptx_loss(p, idx, step, epoch, ro.R);
    loss = loss + pc.alpha * ptx_mean * count;
    st["ptx_loss"] = ptx_mean.item<double>() * count;
  }
  return MicroOut{loss, count, st};
}

// What the updates of an iteration add up to (global over ranks, as update() reports them).
struct UpdateTotals {
  std::map<std::string, double> acc;  // stats summed; grad norms averaged over the updates
  double loss = 0, count = 0, tokens = 0, seconds = 0;
};

// ppo.epochs passes over the rollout, each a fresh shuffle cut into M strided minibatches.
UpdateTotals update_policy(const Ppo& p, const Rollout& ro, const Scores& sc, const rl::Advantages& av, int64_t step) {
  const PPOConfig& pc = p.pc;
  const int64_t R = ro.R;
  const auto t_upd = Clock::now();
  p.m.policy->train();
  if (p.plan.critic) p.m.value->train();
  UpdateTotals t;
  const int64_t M = std::min<int64_t>(pc.minibatches, R);
  std::mt19937_64 mb_rng(p.seed ^ (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ULL) ^ static_cast<uint64_t>(p.rank));
  for (int64_t epoch = 0; epoch < pc.epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(R));
    for (int64_t i = 0; i < R; ++i) order[i] = i;
    for (int64_t i = R - 1; i > 0; --i) std::swap(order[i], order[mb_rng() % static_cast<uint64_t>(i + 1)]);
    for (int64_t m = 0; m < M; ++m) {
      std::vector<int64_t> idx;
      for (int64_t i = m; i < R; i += M) idx.push_back(order[i]);
      auto ix = torch::tensor(idx, torch::kLong).to(p.dev);
      UpdateOut u = update(p.trainables, p.run.dist(), 1, [&](int64_t) {
        return minibatch_loss(p, ro, sc, av, idx, ix, step, epoch);
      }, p.tc.grad_clip, step);
      for (auto& [k, v] : u.stats) t.acc[k] += v;
      for (auto& [k, v] : u.grad_norms) t.acc[k.empty() ? "grad_norm" : "grad_norm_" + k] += v / (pc.epochs * M);
      t.loss += u.loss * u.count;
      t.count += u.count;
      t.tokens += u.count;
    }
  }
  t.seconds = seconds_since(t_upd);
  return t;
}

// The rollout's sums on this rank, all-reduced over ranks as one buffer (pack / unpack keep the
// order of the fields), then turned into means by iteration_stats.
struct IterationSums {
  double rows = 0, reward = 0, reward_rm = 0, reward_exec = 0, reward_custom = 0, omega = 0, violations = 0;
  double response_tokens = 0, passed = 0, tested = 0, syntax = 0, no_eos = 0, kl = 0, gen_tokens = 0;
  double explained_variance = 0, adv_abs = 0;
  // Per prompt: distinct completion texts / K; prompts with >= 1 passing sample, with all passing.
  double prompts = 0, distinct = 0, solved = 0, all_passed = 0;

  std::vector<double> pack() const {
    return {rows, reward, reward_rm, reward_exec, reward_custom, omega, violations, response_tokens,
            passed, tested, syntax, no_eos, kl, gen_tokens, explained_variance, adv_abs,
            prompts, distinct, solved, all_passed};
  }
  static IterationSums unpack(const std::vector<double>& g) {
    TORCH_CHECK(g.size() == 20, "IterationSums::unpack: expected 20 values, got ", g.size());
    return IterationSums{g[0],  g[1],  g[2],  g[3],  g[4],  g[5],  g[6],  g[7],  g[8],  g[9],
                         g[10], g[11], g[12], g[13], g[14], g[15], g[16], g[17], g[18], g[19]};
  }
  IterationSums all_reduced(DistContext& dist) const { return unpack(dist.all_reduce_sum(pack())); }
};

IterationSums local_sums(const Ppo& p, const Rollout& ro, const Scores& sc, const rl::Advantages& av) {
  IterationSums s;
  s.rows = static_cast<double>(ro.R);
  for (int64_t i = 0; i < ro.R; ++i) {
    if (sc.outcome[i] < 0) continue;
    ++s.tested;
    s.passed += sc.outcome[i] == 0;
    s.syntax += sc.outcome[i] == 3;
  }
  for (int64_t i = 0; i < ro.R; ++i) {
    s.reward += sc.seq_reward[i];
    s.reward_rm += sc.r_rm[i];
    s.reward_exec += sc.r_exec[i];
    s.reward_custom += sc.r_custom[i];
    s.omega += sc.omega[i];
    s.violations += sc.violations[i];
    s.response_tokens += static_cast<double>(ro.samples[i].tokens.size());
  }
  s.no_eos = sc.no_eos;
  s.kl = av.kl.sum(1).sum().item<double>();
  s.gen_tokens = ro.gen_tokens;
  s.explained_variance = p.plan.critic ? rl::explained_variance(sc.old_values, av.returns, ro.resp) : 0.0;
  s.adv_abs = (av.advantages.abs() * ro.resp).sum().item<double>();
  // Rows are prompt-major, K per prompt (generate_tokens keeps that order).
  for (int64_t i0 = 0; i0 < ro.R; i0 += p.K) {
    std::set<std::string> texts;
    int64_t pass = 0, tested = 0;
    for (int64_t i = i0; i < std::min(ro.R, i0 + p.K); ++i) {
      texts.insert(ro.samples[i].text);
      if (sc.outcome[i] >= 0) ++tested, pass += sc.outcome[i] == 0;
    }
    s.prompts += 1;
    s.distinct += static_cast<double>(texts.size()) / static_cast<double>(p.K);
    s.solved += tested > 0 && pass > 0;
    s.all_passed += tested > 0 && pass == tested;
  }
  return s;
}

// The logged metrics of an iteration: means over every rank's rollout, update stats per token.
std::map<std::string, double> iteration_stats(const Ppo& p, const IterationSums& g, const Rollout& ro,
                                              const Scores& sc, const UpdateTotals& up) {
  const int W = p.W;
  const double n = g.rows;
  std::map<std::string, double> stats = {
      {"reward", g.reward / n}, {"reward_rm", g.reward_rm / n}, {"reward_exec", g.reward_exec / n},
      {"reward_custom", g.reward_custom / n}, {"safety_penalty", p.pc.gamma * g.omega / n},
      {"safety_violations", g.violations / n}, {"no_eos_rate", g.no_eos / n},
      {"response_length", g.response_tokens / n}, {"kl", g.kl / n}, {"kl_coef", p.klc.coef},
      {"rollout_tokens_per_s", ro.seconds > 0 ? g.gen_tokens / (ro.seconds * W) * W : 0},
      {"scoring_tokens_per_s", sc.seconds > 0 ? static_cast<double>(ro.b.real_tokens) / sc.seconds * W : 0},
      {"update_tokens_per_s", up.seconds > 0 ? up.tokens / up.seconds * W : 0},
      {"explained_variance", g.explained_variance / W},
      {"distinct_completions", g.distinct / g.prompts}};
  int64_t seen = 0, visits = 0;
  for (int64_t v : p.visits) seen += v > 0, visits += v;
  stats["problems_seen"] = static_cast<double>(seen);  // distinct items picked so far
  stats["visits_per_problem"] = seen > 0 ? static_cast<double>(visits) / static_cast<double>(seen) : 0.0;
  if (g.tested > 0) {
    stats["pass_rate"] = g.passed / g.tested;
    stats["syntax_error_rate"] = g.syntax / g.tested;
    stats["prompts_solved"] = g.solved / g.prompts;      // >= 1 of the K samples passed
    stats["prompts_all_passed"] = g.all_passed / g.prompts;  // every sample passed: no signal left
  }
  auto acc = up.acc;
  const double ut = std::max(1.0, up.count);
  stats["policy_loss"] = acc["policy_loss"] / ut;
  stats["clipfrac"] = acc["clipped"] / ut;
  stats["approx_kl"] = acc["approx_kl"] / ut;
  stats["entropy"] = acc["entropy"] / ut;
  if (p.plan.critic) stats["value_loss"] = acc["value_loss"] / ut;
  if (!p.plan.ptx.empty()) stats["ptx_loss"] = acc["ptx_loss"] / ut;
  stats["grad_norm"] = acc["grad_norm"];
  if (p.plan.critic) stats["grad_norm_value"] = acc["grad_norm_value"];
  return stats;
}

// The recipe of one iteration; the KL coefficient adapts to the iteration's mean KL at the end.
StepOut iteration(Ppo& p, int64_t step) {
  const Prompts prompts = pick_prompts(p, step);
  for (int64_t i : prompts.all) ++p.visits[i];
  const Rollout ro = roll_out(p, prompts);
  const Scores sc = score(p, prompts, ro);
  const rl::Advantages av = advantages(p, ro, sc);
  const UpdateTotals up = update_policy(p, ro, sc, av, step);
  const IterationSums g = local_sums(p, ro, sc, av).all_reduced(p.run.dist());
  std::map<std::string, double> stats = iteration_stats(p, g, ro, sc, up);
  p.klc.update(g.kl / g.rows, g.rows);
  return StepOut{up.count > 0 ? up.loss / up.count : 0.0, g.gen_tokens, stats};
}

}  // namespace

json ppo(const Config& config, const CustomReward& custom) {
  const PPOConfig& pc = config.ppo;
  // -- inputs, all checked before the run folder is written --
  check_options(config);
  StartPoint init = load_start_point("ppo.init", pc.init, "the policy's starting checkpoint (M1)");
  const std::string ref_path = resolve_checkpoint(pc.ref.empty() ? pc.init : pc.ref);
  Tokenizer tok(init.tokenizer_path);
  const std::vector<PromptItem> items = read_prompt_items(pc.prompts, pc.problems);
  const rl::SafetyRules safety(pc.safety.patterns);
  const Plan plan = plan_run(config, init.loaded.gpt, items, safety, custom);
  std::unique_ptr<eval::Sandbox> sandbox;
  if (plan.use_exec) sandbox = std::make_unique<eval::Sandbox>(eval::sandbox_options(config));

  // -- run, models, optimizers, resume --
  Run run(config, "ppo");
  run.require_divisible("ppo.rollout.prompts_per_step", pc.rollout.prompts_per_step);
  const Fingerprint fp = fingerprint(pc, init, ref_path, plan.use_rm);
  json resume_state;
  if (run.resume_from()) resume_state = run.check_resume(fp);
  Models models = load_models(run, pc, plan, init, ref_path);
  Optimizers opt = make_optimizers(run, models, plan.critic, pc.value_lr_ratio);
  rl::KLController klc{pc.kl.coef, pc.kl.target, pc.kl.horizon};
  int64_t start_step = 0;
  if (run.resume_from()) {
    start_step = resume(run, resume_state, opt, klc);
    if (start_step >= config.train.max_steps) return run.already_complete(start_step, config.train.max_steps);
  }
  if (run.is_main()) log_plan(config, plan, items.size(), static_cast<bool>(custom));

  // -- the driver: iterations, checkpoints --
  const TokenTable table = TokenTable::from(tok);
  const int64_t block = plan.gcfg.block_size;
  std::vector<int64_t> visits(items.size(), 0);  // the iterations before a resume picked these too
  for (int64_t s = 1; s <= start_step; ++s)
    for (int64_t i : iteration_picks(static_cast<int64_t>(items.size()), pc.rollout.prompts_per_step,
                                     static_cast<uint64_t>(run.cfg().run.seed), s))
      ++visits[i];
  Ppo p{pc, config.train, run.cfg(), plan, tok, table, items, safety, custom, sandbox.get(), models, opt.trainables,
        run, klc, visits, pc.rollout.prompts_per_step, pc.rollout.samples_per_prompt, run.dist().world_size(),
        run.dist().rank(), block, block - pc.rollout.max_new_tokens, static_cast<uint64_t>(run.cfg().run.seed),
        run.device()};
  DriverSpec spec;
  run.start(start_step, fp, spec);
  spec.trainables = &opt.trainables;
  spec.max_steps = config.train.max_steps;
  spec.step = [&p](int64_t step, double) { return iteration(p, step); };
  spec.save = [&](int64_t step) {
    std::vector<ModuleRef> mods = {ModuleRef{"model", models.policy, opt.policy.get()}};
    if (plan.critic) mods.push_back(ModuleRef{"value", models.value, opt.value.get()});
    run.save(step, mods, init.tokenizer_path, json{{"kl_coef", klc.coef}});
  };
  DriverResult r = run_steps(spec);
  return run.finish(r, start_step, json{{"kl_coef", klc.coef}});
}

namespace {

int run_ppo(cli::Invocation& inv) {
  std::cout << ppo(inv.config()).dump() << std::endl;
  return 0;
}

cli::Registrar reg({"ppo", "", "RLHF: PPO (or GRPO / RLOO) from M1 against a reward model and/or unit tests -> M2", {},
                    false, run_ppo, {"run.", "train.", "optim.", "dist.", "ppo.", "generate.", "eval.", "resume"}});

}  // namespace
}  // namespace codex
