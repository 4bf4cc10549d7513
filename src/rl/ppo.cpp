// `codex-train ppo`: M1 -> M2. One iteration (a driver step):
//   prompts -> rollout (KV-cache sampler, finished rows leave the batch) -> scoring without
//   autograd (old / reference log-probs at the sampling temperature, values, reward model,
//   execution, safety) -> per-token rewards (-beta_kl * kl_t, sequence reward at the end token)
//   -> advantages (GAE, or GRPO / RLOO over each prompt's samples) -> ppo.epochs x ppo.minibatches
//   engine updates of the policy (and the value model) -> adaptive KL coefficient.
#include "rl/ppo.h"

#include <chrono>
#include <iostream>
#include <random>

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

}  // namespace

json ppo(const Config& config, const CustomReward& custom) {
  const PPOConfig& pc = config.ppo;
  const TrainConfig& tc = config.train;
  // -- inputs --
  if (pc.prompts.empty()) throw UsageError("ppo.prompts: expected a prompts, demos or problems JSONL file");
  if (config.dist.zero1) throw UsageError("dist.zero1: not supported by ppo (two optimizers); set dist.zero1=false");
  const bool critic = pc.advantage == "gae";
  StartPoint init = load_start_point("ppo.init", pc.init, "the policy's starting checkpoint (M1)");
  const std::string ref_path = resolve_checkpoint(pc.ref.empty() ? pc.init : pc.ref);
  LoadedModel& base = init.loaded;
  const std::string tokenizer_path = init.tokenizer_path;
  Tokenizer tok(tokenizer_path);
  auto items = read_prompt_items(pc.prompts, pc.problems);
  int64_t tested = 0;
  for (auto& it : items) tested += !it.test.empty();
  const bool use_rm = !pc.reward_model.empty() && pc.w_rm != 0;
  const bool use_exec = tested > 0 && pc.w_exec != 0;
  rl::SafetyRules safety(pc.safety.patterns);
  // A rule-based reward alone is a reward too (U = alpha L_SFT + beta L_RLHF + gamma Omega).
  const bool use_safety = pc.gamma != 0 && !safety.empty();
  if (!use_rm && !use_exec && !use_safety && !custom)
    throw UsageError("ppo: no reward: set ppo.reward_model (with ppo.w_rm != 0), give prompts with tests "
                     "(a problems file as ppo.prompts or ppo.problems) with ppo.w_exec != 0, or set "
                     "ppo.safety.patterns with ppo.gamma != 0");
  std::vector<Demo> ptx;
  if (pc.alpha > 0) {
    if (pc.ptx_data.empty()) throw UsageError("ppo.alpha > 0 needs ppo.ptx_data (a demos JSONL file)");
    ptx = read_demos(pc.ptx_data);
  }
  const int64_t P = pc.rollout.prompts_per_step, K = pc.rollout.samples_per_prompt;
  if (!critic && K < 2) throw UsageError("ppo.advantage=" + pc.advantage + " needs ppo.rollout.samples_per_prompt >= 2");
  // Dropout off in PPO: the ratio pi / pi_old must compare one network with itself (old log-probs
  // and values are scored without autograd, new ones in train mode; with dropout the first ratio
  // would not be 1 and the clipping would act on noise).
  GPTConfig gcfg = base.gpt;
  const double init_dropout = gcfg.dropout;
  gcfg.dropout = 0.0;
  if (pc.rollout.max_new_tokens >= gcfg.block_size)
    throw UsageError("ppo.rollout.max_new_tokens (" + std::to_string(pc.rollout.max_new_tokens) +
                     ") must be smaller than the model's block_size (" + std::to_string(gcfg.block_size) + ")");
  std::unique_ptr<eval::Sandbox> sandbox;
  if (use_exec) sandbox = std::make_unique<eval::Sandbox>(eval::sandbox_options(config));

  Run run(config, "ppo");
  const Config& cfg = run.cfg();
  const int W = run.dist().world_size(), rank = run.dist().rank();
  run.require_divisible("ppo.rollout.prompts_per_step", P);
  Fingerprint fp = {{"prompts", content_checksum(pc.prompts)},
                    {"tokenizer", content_checksum(tokenizer_path)},
                    {"init", init.weights_checksum()},
                    {"ref", content_checksum((fs::path(ref_path) / "model.pt").string())}};
  if (use_rm) fp["reward_model"] = content_checksum((fs::path(resolve_checkpoint(pc.reward_model)) / "model.pt").string());
  json resume_state;
  if (run.resume_from()) resume_state = run.check_resume(fp);
  const torch::Device dev = run.device();

  // -- models: policy (trained), value (trained, gae only), reference and reward model (frozen) --
  torch::manual_seed(static_cast<uint64_t>(cfg.run.seed));
  GPT policy(gcfg);
  load_weights(run.resume_from() ? *run.resume_from() : init.dir, policy,
               run.resume_from() ? LoadMode::strict : LoadMode::trunk);
  base = LoadedModel{};
  policy->to(dev);
  LoadedModel ref = load_model(ref_path, dev);
  freeze(ref.model);
  if (ref.gpt.vocab_size != gcfg.vocab_size)
    throw UsageError("ppo.ref: vocabulary " + std::to_string(ref.gpt.vocab_size) + " differs from the policy's " +
                     std::to_string(gcfg.vocab_size));
  LoadedModel rm;
  if (use_rm) {
    rm = load_model(pc.reward_model, dev);
    if (!rm.model->has_head("reward_head"))
      throw UsageError("ppo.reward_model: '" + pc.reward_model + "' has no reward head (train one with `reward train`)");
    freeze(rm.model);
  }
  GPT value{nullptr};
  if (critic) {
    const std::string vpath =
        resolve_checkpoint(!pc.value_init.empty() ? pc.value_init : use_rm ? pc.reward_model : pc.init);
    GPTConfig vcfg = load_model(vpath).gpt;
    vcfg.dropout = 0.0;  // as the policy's
    value = GPT(vcfg);
    value->add_scalar_head("value_head");
    if (run.resume_from()) load_weights(*run.resume_from(), value, LoadMode::strict, "value");
    else load_weights(vpath, value, LoadMode::trunk);
    value->to(dev);
  }
  std::vector<torch::Tensor> watched = policy->parameters();
  if (critic)
    for (auto& p : value->parameters()) watched.push_back(p);
  run.dist().watch(watched);
  auto popt = make_adamw(*policy, cfg.optim);
  std::unique_ptr<torch::optim::AdamW> vopt;
  std::vector<Trainable> trainables = {{"", policy->parameters(), popt.get(), 1.0}};
  if (critic) {
    vopt = make_adamw(*value, cfg.optim);
    trainables.push_back({"value", value->parameters(), vopt.get(), pc.value_lr_ratio});
  }
  rl::KLController klc{pc.kl.coef, pc.kl.target, pc.kl.horizon};
  int64_t start_step = 0;
  if (run.resume_from()) {
    load_optimizer(*run.resume_from(), *popt, "model");
    if (critic) load_optimizer(*run.resume_from(), *vopt, "value");
    load_rng(*run.resume_from());
    start_step = resume_state.at("step");
    klc.coef = resume_state.at("kl_coef");
    if (start_step >= tc.max_steps) return run.already_complete(start_step, tc.max_steps);
  }
  if (run.is_main() && init_dropout > 0)
    spdlog::info("ppo: dropout off (the init model has model.dropout={}): old and new log-probs come from the same "
                 "network, so the first ratio is 1", init_dropout);
  if (run.is_main())
    spdlog::info("ppo ({}): {} prompts ({} with tests), {} x {} samples per iteration, {} iterations; rewards:{}{}{}{}; "
                 "KL {} coef {}{}", pc.advantage, items.size(), tested, P, K, tc.max_steps,
                 use_rm ? " reward model" : "", use_exec ? " execution" : "", custom ? " custom" : "",
                 use_safety ? " safety (gamma x Omega)" : "", pc.kl.estimator, pc.kl.coef,
                 pc.kl.target > 0 ? fmt::format(" (adaptive, target {})", pc.kl.target) : "");

  const TokenTable table = TokenTable::from(tok);
  const int64_t block = gcfg.block_size, max_prompt = block - pc.rollout.max_new_tokens;
  const uint64_t seed = static_cast<uint64_t>(cfg.run.seed);
  const int64_t N = static_cast<int64_t>(items.size());
  using clock = std::chrono::steady_clock;

  DriverSpec spec;
  run.start(start_step, fp, spec);
  spec.trainables = &trainables;
  spec.max_steps = tc.max_steps;
  spec.step = [&](int64_t step, double) {
    // -- 1. prompts of this iteration (every rank computes the same list, keeps its slice) --
    std::vector<int64_t> pick;
    std::vector<int64_t> perm;
    int64_t pe = -1;
    for (int64_t p = (step - 1) * P; p < step * P; ++p) {
      if (p / N != pe) pe = p / N, perm = epoch_order(N, seed, pe, 0x51ED270B7A1ULL);
      pick.push_back(perm[static_cast<size_t>(p % N)]);
    }
    const int64_t P_local = P / W;
    std::vector<int64_t> mine(pick.begin() + rank * P_local, pick.begin() + (rank + 1) * P_local);
    std::vector<std::vector<int32_t>> prompt_ids;
    SamplingOptions so = SamplingOptions::from(cfg.generate, seed);
    so.temperature = pc.rollout.temperature;  // the log-probs below use the same temperature
    so.top_p = 1.0;                           // no truncation: the ratio must use the sampled distribution
    so.top_k = 0;
    so.disallowed.clear();
    so.max_new_tokens = pc.rollout.max_new_tokens;
    so.batch_size = std::max<int64_t>(1, P_local * K);  // one KV-cache decode for the whole rollout
    for (size_t i = 0; i < mine.size(); ++i) {
      auto ids = tok.encode(items[static_cast<size_t>(mine[i])].prompt);
      if (static_cast<int64_t>(ids.size()) > max_prompt) ids.erase(ids.begin(), ids.end() - max_prompt);
      prompt_ids.push_back(std::move(ids));
      // One RNG per (iteration, prompt slot, sample): independent of the world size.
      so.prompt_seeds.push_back(seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL * static_cast<uint64_t>(P * K) +
                                static_cast<uint64_t>((rank * P_local + static_cast<int64_t>(i)) * K));
    }
    // -- 2. rollout --
    const auto t_roll = clock::now();
    policy->eval();
    std::vector<Sample> samples;
    {
      torch::NoGradGuard ng;
      samples = generate_tokens(gpt_logits_fn(policy), table, prompt_ids, K, so, block, dev);
    }
    const double roll_s = std::chrono::duration<double>(clock::now() - t_roll).count();
    const int64_t R = static_cast<int64_t>(samples.size());  // P_local * K, prompt-major
    std::vector<Sequence> seqs(static_cast<size_t>(R));
    double gen_tokens = 0;
    for (int64_t i = 0; i < R; ++i) {
      seqs[i].prompt = prompt_ids[static_cast<size_t>(samples[i].prompt_index)];
      seqs[i].completion.assign(samples[i].tokens.begin(), samples[i].tokens.end());
      if (seqs[i].completion.empty()) seqs[i].completion.push_back(tok.eot_id());  // nothing sampled: score an end
      gen_tokens += static_cast<double>(samples[i].tokens.size());
    }
    std::vector<const Sequence*> rows;
    for (auto& s : seqs) rows.push_back(&s);
    SeqBatch b = make_batch(rows, block, /*mask_prompt=*/true, tok.pad_id());
    auto input = to_device(b.input, dev), mask = to_device(b.mask, dev), targets = to_device(b.targets, dev);
    auto resp = (targets != -100).to(torch::kFloat);  // (R, Wd) response tokens

    // -- 3. scoring (no autograd) --
    const auto t_score = clock::now();
    torch::Tensor old_logp, ref_logp, old_values;
    std::vector<double> r_rm(R, 0.0), r_exec(R, 0.0), r_custom(R, 0.0), omega(R, 0.0), violations(R, 0.0);
    std::vector<int> outcome(R, -1);
    {
      torch::NoGradGuard ng;
      old_logp = token_logp(policy, input, mask, targets, pc.rollout.temperature);
      ref_logp = token_logp(ref.model, input, mask, targets, pc.rollout.temperature);
      if (critic) old_values = value->scalar("value_head", value->hidden(input, nullptr, mask)) * resp;
      if (use_rm) {
        std::vector<Sequence> texts;
        for (int64_t i = 0; i < R; ++i)
          texts.push_back(make_sequence(tok, items[static_cast<size_t>(mine[samples[i].prompt_index])].prompt,
                                        samples[i].text));
        std::vector<const Sequence*> tr;
        for (auto& s : texts) tr.push_back(&s);
        auto s = score_sequences(rm.model, tr, tok, dev).to(torch::kCPU);
        for (int64_t i = 0; i < R; ++i) r_rm[i] = s[i].item<double>();
      }
    }
    if (use_exec) {
      std::vector<eval::Problem> of;
      std::vector<std::string> completions;
      std::vector<int64_t> which;
      for (int64_t i = 0; i < R; ++i) {
        const PromptItem& it = items[static_cast<size_t>(mine[samples[i].prompt_index])];
        if (it.test.empty()) continue;
        of.push_back(eval::Problem{it.task_id, it.prompt, "", it.test, it.entry_point});
        completions.push_back(samples[i].text);
        which.push_back(i);
      }
      const std::vector<rl::Outcome> graded = rl::grade_completions(*sandbox, of, completions);
      for (size_t j = 0; j < which.size(); ++j) {
        const rl::Outcome o = graded[j];
        outcome[which[j]] = static_cast<int>(o);
        r_exec[which[j]] = rl::execution_reward(o);
      }
    }
    double no_eos = 0;
    for (int64_t i = 0; i < R; ++i) {
      violations[i] = static_cast<double>(safety.violations(samples[i].text));
      const bool hit_limit = samples[i].finish_reason == "length";
      no_eos += hit_limit;
      omega[i] = violations[i] + (hit_limit ? pc.safety.no_eos_penalty : 0.0);
      if (custom)
        r_custom[i] = custom(items[static_cast<size_t>(mine[samples[i].prompt_index])].prompt, samples[i].text);
    }
    const double score_s = std::chrono::duration<double>(clock::now() - t_score).count();

    // -- 4. rewards and advantages --
    std::vector<double> seq_reward(R);
    for (int64_t i = 0; i < R; ++i)
      seq_reward[i] = pc.w_rm * r_rm[i] + pc.w_exec * r_exec[i] + r_custom[i] - pc.gamma * omega[i];
    rl::AdvantageInputs ai;
    ai.logp = old_logp;
    ai.ref_logp = ref_logp;
    ai.resp = resp;
    if (critic) ai.values = old_values;
    ai.seq_reward = torch::tensor(seq_reward, torch::kFloat).to(dev);
    ai.mode = pc.advantage;
    ai.estimator = pc.kl.estimator;
    ai.kl_coef = klc.coef;
    ai.gamma = pc.gamma_discount;
    ai.lam = pc.lam;
    ai.group = K;
    ai.whiten = pc.whiten;
    // Whitening statistics over every rank's rollout (as the loss normalisation is).
    ai.over_ranks = [&](const std::vector<double>& v) { return run.dist().all_reduce_sum(v); };
    rl::Advantages av = rl::ppo_advantages(ai);
    auto kl_seq = av.kl.sum(1);  // (R)
    torch::Tensor adv = av.advantages, returns = av.returns;

    // -- 5. K epochs x M minibatches of updates --
    const auto t_upd = clock::now();
    policy->train();
    if (critic) value->train();
    std::map<std::string, double> acc;
    double upd_tokens = 0, upd_loss = 0, upd_count = 0;
    const int64_t M = std::min<int64_t>(pc.minibatches, R);
    std::mt19937_64 mb_rng(seed ^ (static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ULL) ^ static_cast<uint64_t>(rank));
    std::vector<int64_t> ptx_order;
    for (int64_t epoch = 0; epoch < pc.epochs; ++epoch) {
      std::vector<int64_t> order(static_cast<size_t>(R));
      for (int64_t i = 0; i < R; ++i) order[i] = i;
      for (int64_t i = R - 1; i > 0; --i) std::swap(order[i], order[mb_rng() % static_cast<uint64_t>(i + 1)]);
      for (int64_t m = 0; m < M; ++m) {
        std::vector<int64_t> idx;
        for (int64_t i = m; i < R; i += M) idx.push_back(order[i]);
        auto ix = torch::tensor(idx, torch::kLong).to(dev);
        UpdateOut u = update(trainables, run.dist(), 1, [&](int64_t) {
          auto in = input.index_select(0, ix), mk = mask.index_select(0, ix), tg = targets.index_select(0, ix);
          auto rm_ = resp.index_select(0, ix);
          torch::Tensor ent;
          auto logp = token_logp(policy, in, mk, tg, pc.rollout.temperature, &ent);
          auto pl = rl::policy_loss(logp, old_logp.index_select(0, ix), adv.index_select(0, ix), pc.clip);
          auto loss = pc.beta * (pl.loss * rm_).sum() - pc.entropy_coef * (ent * rm_).sum();
          std::map<std::string, double> st = {{"policy_loss", (pl.loss * rm_).sum().item<double>()},
                                              {"clipped", (pl.clipped * rm_).sum().item<double>()},
                                              {"approx_kl", (pl.approx_kl * rm_).sum().item<double>()},
                                              {"entropy", (ent.detach() * rm_).sum().item<double>()}};
          if (critic) {
            auto v = value->scalar("value_head", value->hidden(in, nullptr, mk));
            auto vl = rl::value_loss(v, old_values.index_select(0, ix), returns.index_select(0, ix), pc.clip_value);
            loss = loss + pc.vf_coef * (vl * rm_).sum();
            st["value_loss"] = (vl * rm_).sum().item<double>();
          }
          const double count = rm_.sum().item<double>();
          if (!ptx.empty()) {  // PPO-ptx: next-token loss on demonstrations, weighted alpha
            std::vector<Sequence> demo;
            for (size_t j = 0; j < idx.size(); ++j) {
              const Demo& d = ptx[rl::ptx_demo_index(step, epoch, rank, W, R, idx[j], ptx.size())];
              demo.push_back(make_sequence(tok, d.prompt, d.completion));
            }
            std::vector<const Sequence*> dr;
            for (auto& s : demo) dr.push_back(&s);
            SeqBatch db = make_batch(dr, block, true, tok.pad_id());
            auto dlogp = token_logp(policy, db.input.to(dev), db.mask.to(dev), db.targets.to(dev), 1.0);
            const double dn = std::max<int64_t>(1, (db.targets != -100).sum().item<int64_t>());
            auto ptx_mean = -dlogp.sum() / dn;
            loss = loss + pc.alpha * ptx_mean * count;
            st["ptx_loss"] = ptx_mean.item<double>() * count;
          }
          return MicroOut{loss, count, st};
        }, tc.grad_clip, step);
        for (auto& [k, v] : u.stats) acc[k] += v;
        for (auto& [k, v] : u.grad_norms) acc[k.empty() ? "grad_norm" : "grad_norm_" + k] += v / (pc.epochs * M);
        upd_loss += u.loss * u.count;
        upd_count += u.count;
        upd_tokens += u.count;
      }
    }
    const double upd_s = std::chrono::duration<double>(clock::now() - t_upd).count();

    // -- 6. metrics (global) and the KL controller --
    double passed = 0, n_tested = 0, syntax = 0;
    for (int64_t i = 0; i < R; ++i) {
      if (outcome[i] < 0) continue;
      ++n_tested;
      passed += outcome[i] == 0;
      syntax += outcome[i] == 3;
    }
    double s_rew = 0, s_rm = 0, s_ex = 0, s_cu = 0, s_om = 0, s_vi = 0, s_len = 0;
    for (int64_t i = 0; i < R; ++i) {
      s_rew += seq_reward[i];
      s_rm += r_rm[i];
      s_ex += r_exec[i];
      s_cu += r_custom[i];
      s_om += omega[i];
      s_vi += violations[i];
      s_len += static_cast<double>(samples[i].tokens.size());
    }
    const double ev = critic ? rl::explained_variance(old_values, returns, resp) : 0.0;
    auto g = run.dist().all_reduce_sum({static_cast<double>(R), s_rew, s_rm, s_ex, s_cu, s_om, s_vi, s_len, passed,
                                        n_tested, syntax, no_eos, kl_seq.sum().item<double>(), gen_tokens, ev,
                                        (adv.abs() * resp).sum().item<double>()});
    const double n = g[0];
    const double kl_mean = g[12] / n;
    const double tok_total = std::max(1.0, g[7]);
    std::map<std::string, double> stats = {
        {"reward", g[1] / n}, {"reward_rm", g[2] / n}, {"reward_exec", g[3] / n}, {"reward_custom", g[4] / n},
        {"safety_penalty", pc.gamma * g[5] / n}, {"safety_violations", g[6] / n}, {"no_eos_rate", g[11] / n},
        {"response_length", g[7] / n}, {"kl", kl_mean}, {"kl_coef", klc.coef},
        {"rollout_tokens_per_s", roll_s > 0 ? g[13] / (roll_s * W) * W : 0},
        {"scoring_tokens_per_s", score_s > 0 ? static_cast<double>(b.real_tokens) / score_s * W : 0},
        {"update_tokens_per_s", upd_s > 0 ? upd_tokens / upd_s * W : 0},
        {"explained_variance", g[14] / W}};
    if (g[9] > 0) {
      stats["pass_rate"] = g[8] / g[9];
      stats["syntax_error_rate"] = g[10] / g[9];
    }
    const double ut = std::max(1.0, upd_count);
    stats["policy_loss"] = acc["policy_loss"] / ut;
    stats["clipfrac"] = acc["clipped"] / ut;
    stats["approx_kl"] = acc["approx_kl"] / ut;
    stats["entropy"] = acc["entropy"] / ut;
    if (critic) stats["value_loss"] = acc["value_loss"] / ut;
    if (!ptx.empty()) stats["ptx_loss"] = acc["ptx_loss"] / ut;
    stats["grad_norm"] = acc["grad_norm"];
    if (critic) stats["grad_norm_value"] = acc["grad_norm_value"];
    klc.update(kl_mean, n);
    (void)tok_total;
    return StepOut{upd_count > 0 ? upd_loss / upd_count : 0.0, g[13], stats};
  };
  spec.save = [&](int64_t step) {
    std::vector<ModuleRef> mods = {ModuleRef{"model", policy, popt.get()}};
    if (critic) mods.push_back(ModuleRef{"value", value, vopt.get()});
    run.save(step, mods, tokenizer_path, json{{"kl_coef", klc.coef}});
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
