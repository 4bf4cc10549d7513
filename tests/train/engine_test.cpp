// The shared training-loop pieces: LR schedule, batch sampler, AdamW groups, metrics file, bench.
#include "train/engine.h"
#include "train/pretrain.h"

#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cmath>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "util/fs.h"
#include "train/train_fixture.h"
#include "util/error.h"

using namespace codex;
using codex::test::TempDir;

TEST_CASE("lr_at: linear warmup, cosine decay to lr * min_lr_ratio (hand-computed)", "[train]") {
  OptimConfig o;
  o.lr = 1.0;
  o.min_lr_ratio = 0.1;
  o.warmup_steps = 10;
  REQUIRE(lr_at(o, 1, 110) == Approx(0.1));
  REQUIRE(lr_at(o, 5, 110) == Approx(0.5));
  REQUIRE(lr_at(o, 10, 110) == Approx(1.0));
  REQUIRE(lr_at(o, 60, 110) == Approx(0.1 + 0.45 * (1 + std::cos(M_PI * 0.5))));  // halfway: 0.55
  REQUIRE(lr_at(o, 35, 110) == Approx(0.1 + 0.45 * (1 + std::cos(M_PI * 0.25))));
  REQUIRE(lr_at(o, 110, 110) == Approx(0.1));
  REQUIRE(lr_at(o, 500, 110) == Approx(0.1));  // past the end it stays at the floor
  o.warmup_steps = 0;
  REQUIRE(lr_at(o, 1, 101) == Approx(0.1 + 0.45 * (1 + std::cos(M_PI * 0.01))));
}

TEST_CASE("BatchSampler: shifted windows, rank slices of one global batch, state round trip", "[train]") {
  TempDir t;
  codex::test::write_prepared_folder(t / "d");
  TokenDataset data((t / "d").string(), "train");
  const auto stream = codex::test::patterned_tokens(20000, 64, 1);
  BatchSampler one(data, 16, 8, 42, 0, 1), r0(data, 16, 8, 42, 0, 2), r1(data, 16, 8, 42, 1, 2);
  for (int step = 0; step < 3; ++step) {
    auto [x, y] = one.next();
    REQUIRE(x.sizes() == torch::IntArrayRef({8, 16}));
    REQUIRE(torch::equal(x.slice(1, 1, 16), y.slice(1, 0, 15)));  // y is x shifted by one token
    // each row is a contiguous window of the token stream
    for (int64_t i = 0; i < 8; ++i) {
      bool found = false;
      for (size_t s = 0; s + 17 <= stream.size() && !found; ++s) {
        found = true;
        for (int64_t j = 0; j < 16 && found; ++j) found = stream[s + j] == x[i][j].item<int64_t>();
        found = found && stream[s + 16] == y[i][15].item<int64_t>();
      }
      REQUIRE(found);
    }
    auto [x0, y0] = r0.next();
    auto [x1, y1] = r1.next();
    REQUIRE(torch::equal(torch::cat({x0, x1}), x));
    REQUIRE(torch::equal(torch::cat({y0, y1}), y));
  }
  const std::string st = one.state();
  auto a = one.next().first;
  one.set_state(st);
  REQUIRE(torch::equal(one.next().first, a));
  REQUIRE_THROWS_AS(one.set_state("not a generator state"), UsageError);
  REQUIRE_THROWS_AS(BatchSampler(data, 16, 7, 42, 0, 2), UsageError);     // 7 rows over 2 ranks
  REQUIRE_THROWS_AS(BatchSampler(data, 30000, 8, 42, 0, 1), UsageError);  // window longer than the data
}

TEST_CASE("make_adamw: weight decay on matrices only, the paper's betas and eps", "[train]") {
  GPTConfig g;
  g.vocab_size = 32;
  g.n_layer = 1;
  g.n_head = 2;
  g.n_embd = 8;
  g.block_size = 8;
  GPT model(g);
  OptimConfig o;
  auto opt = make_adamw(*model, o);
  REQUIRE(opt->param_groups().size() == 2);
  auto& decay = opt->param_groups()[0];
  auto& none = opt->param_groups()[1];
  for (auto& p : decay.params()) REQUIRE(p.dim() == 2);
  for (auto& p : none.params()) REQUIRE(p.dim() == 1);
  REQUIRE(decay.params().size() + none.params().size() == model->parameters().size());
  auto& od = static_cast<torch::optim::AdamWOptions&>(decay.options());
  auto& on = static_cast<torch::optim::AdamWOptions&>(none.options());
  REQUIRE(od.weight_decay() == 0.1);
  REQUIRE(on.weight_decay() == 0.0);
  REQUIRE(std::get<0>(od.betas()) == 0.9);
  REQUIRE(std::get<1>(od.betas()) == 0.95);
  REQUIRE(od.eps() == 1e-8);
  set_lr(*opt, 0.25);
  REQUIRE(od.lr() == 0.25);
  REQUIRE(on.lr() == 0.25);
}

TEST_CASE("MetricsLog: a resumed run drops the interrupted run's later and torn lines", "[train]") {
  TempDir t;
  {
    MetricsLog m(t.path.string(), 0);
    for (int s = 1; s <= 5; ++s) m.write({{"step", s}, {"loss", 1.0 / s}});
  }
  codex::test::write_text(t / "metrics.jsonl", codex::test::read_text(t / "metrics.jsonl") + "{\"step\": 6, \"lo");
  MetricsLog m(t.path.string(), 3);
  m.write({{"step", 4}, {"loss", 9.0}});
  std::istringstream in(codex::test::read_text(t / "metrics.jsonl"));
  std::vector<int> steps;
  for (std::string line; std::getline(in, line);) steps.push_back(nlohmann::json::parse(line)["step"]);
  REQUIRE(steps == std::vector<int>{1, 2, 3, 4});
  MetricsLog fresh(t.path.string(), 0);  // a fresh run starts an empty file
  REQUIRE(codex::test::read_text(t / "metrics.jsonl").empty());
}

TEST_CASE("bench train and bench generate print one JSON line with the measured model", "[train][generate]") {
  auto r = codex::test::run_cli("bench train --config " + std::string(CODEX_SOURCE_DIR) +
                                "/configs/pretrain/tiny.yaml model.vocab_size=64 model.n_layer=1 run.threads=1"
                                " --steps 2 --warmup 0");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  // tiny preset, 1 layer, C=64, T=128, V=64, by hand: wte 64*64 + wpe 128*64 + ln_1/ln_2 4*64
  // + c_attn 64*192+192 + attn c_proj 64*64+64 + c_fc 64*256+256 + mlp c_proj 256*64+64 + ln_f 2*64
  REQUIRE(j["params"] == 4096 + 8192 + 256 + 12480 + 4160 + 16640 + 16448 + 128);
  REQUIRE(j["tokens_per_s"].get<double>() > 0);
  REQUIRE(j["steps"] == 2);
  REQUIRE(codex::test::run_cli("bench train --steps 0").code == 2);

  auto g = codex::test::run_cli("bench generate model.n_layer=1 model.n_embd=32 model.n_head=2 model.vocab_size=64"
                                " --prompt-tokens 8 --new-tokens 24 run.threads=1");
  INFO(g.err);
  REQUIRE(g.code == 0);
  auto k = nlohmann::json::parse(g.out);
  REQUIRE(k["greedy_identical"] == true);
  REQUIRE(k["new_tokens"] == 24);
  REQUIRE(k["cached_tokens_per_s"].get<double>() > 0);
}

// ---- the update step against an independent PyTorch implementation ---------------------------

namespace {

c10::Dict<c10::IValue, c10::IValue> load_pt(const std::string& path) {
  auto raw = codex::read_file(path);
  return torch::pickle_load(std::vector<char>(raw.begin(), raw.end())).toGenericDict();
}

GPT golden_model(const c10::Dict<c10::IValue, c10::IValue>& d) {
  GPTConfig g;
  g.vocab_size = 37;
  g.n_layer = 2;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 8;
  GPT m(g);
  m->to(torch::kDouble);
  torch::NoGradGuard ng;
  for (auto& kv : m->named_parameters()) kv.value().copy_(d.at("init." + kv.key()).toTensor());
  return m;
}

OptimConfig golden_optim() {
  OptimConfig o;
  o.lr = 1e-2;
  o.min_lr_ratio = 0.1;
  o.warmup_steps = 3;
  o.weight_decay = 0.1;
  o.beta1 = 0.9;
  o.beta2 = 0.95;
  o.eps = 1e-8;
  return o;
}

// Token-summed LM loss of one (B, T + 1) batch.
MicroOut lm_micro(GPT& m, const torch::Tensor& b) {
  auto x = b.slice(1, 0, b.size(1) - 1), y = b.slice(1, 1);
  const double n = static_cast<double>(y.numel());
  return MicroOut{lm_loss(m, x, y, false, true) * n, n, {}};
}

}  // namespace

TEST_CASE("engine: 10 AdamW steps (warmup, cosine, clipping, decay on matrices, accum 2) equal PyTorch float64",
          "[train][golden]") {
  // tests/train/golden/step_golden.pt is written by tests/train/step_golden.py (an independent
  // float64 GPT + hand-written AdamW); regenerate with /usr/bin/python3 tests/train/step_golden.py OUT.
  auto d = load_pt(std::string(CODEX_TEST_DIR) + "/train/golden/step_golden.pt");
  GPT m = golden_model(d);
  const OptimConfig o = golden_optim();
  auto opt = make_adamw(*m, o);
  std::vector<Trainable> tr = {{"", m->parameters(), opt.get()}};
  auto dist = single_process_context();
  auto losses = d.at("losses").toTensor(), lrs = d.at("lrs").toTensor(), norms = d.at("grad_norms").toTensor();
  for (int64_t step = 1; step <= 10; ++step) {
    const double lr = lr_at(o, step, 10);
    REQUIRE(lr == Approx(lrs[step - 1].item<double>()).epsilon(1e-14));
    set_lr(*opt, lr);
    auto u = update(tr, *dist, 2, [&](int64_t j) {
      return lm_micro(m, d.at("batch." + std::to_string(step) + "." + std::to_string(j)).toTensor());
    }, 0.5, step);
    INFO("step " << step);
    REQUIRE(std::abs(u.loss - losses[step - 1].item<double>()) < 1e-9);
    REQUIRE(std::abs(u.grad_norms.at("") - norms[step - 1].item<double>()) < 1e-9);
    REQUIRE(u.count == 32);
  }
  double worst = 0;
  for (auto& kv : m->named_parameters())
    worst = std::max(worst, (kv.value() - d.at("final." + kv.key()).toTensor()).abs().max().item<double>());
  REQUIRE(worst < 1e-9);
}

namespace {

// Two "ranks" as two threads in one process: collectives through shared memory. Enough to test
// what update() does with a world size (token counts and losses summed, gradients averaged).
struct ThreadGroup {
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0, generation = 0, world = 2;
  std::vector<std::vector<double>> scalars{2};
  std::vector<std::vector<torch::Tensor>> grads{2};
  void barrier() {
    std::unique_lock<std::mutex> lk(mu);
    const int gen = generation;
    if (++arrived == world) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lk, [&] { return generation != gen; });
    }
  }
};

struct ThreadDist : DistContext {
  ThreadGroup& g;
  int r;
  std::vector<torch::Tensor> params;
  ThreadDist(ThreadGroup& group, int rank) : g(group), r(rank) {}
  int rank() const override { return r; }
  int world_size() const override { return g.world; }
  void watch(const std::vector<torch::Tensor>& p) override { params = p; }
  void all_reduce_grads() override {
    g.grads[r].clear();
    for (auto& p : params) g.grads[r].push_back(p.grad().clone());
    g.barrier();
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) params[i].grad().copy_((g.grads[0][i] + g.grads[1][i]) / 2.0);
    g.barrier();
  }
  std::vector<double> all_reduce_sum(std::vector<double> v) override {
    g.scalars[r] = v;
    g.barrier();
    for (size_t i = 0; i < v.size(); ++i) v[i] = g.scalars[0][i] + g.scalars[1][i];
    g.barrier();
    return v;
  }
};

}  // namespace

TEST_CASE("engine: one global batch of 8 gives the same step as accum 1x8, 2x4 and 2 ranks x accum 2 x 2",
          "[train]") {
  auto d = load_pt(std::string(CODEX_TEST_DIR) + "/train/golden/step_golden.pt");
  // 8 sequences of the golden batches, with a masked tail in some so token counts differ per micro-batch.
  std::vector<torch::Tensor> rows;
  for (int s = 1; s <= 2; ++s)
    for (int j = 0; j < 2; ++j) {
      auto b = d.at("batch." + std::to_string(s) + "." + std::to_string(j)).toTensor();
      rows.push_back(b[0]);
      rows.push_back(b[1]);
    }
  auto all = torch::stack(rows);  // (8, 9)
  auto targets = all.slice(1, 1).clone();
  targets.index_put_({0, torch::indexing::Slice(2)}, -100);  // row 0 keeps 2 targets
  targets.index_put_({5, torch::indexing::Slice(5)}, -100);  // row 5 keeps 5
  auto inputs = all.slice(1, 0, 8);
  auto micro_of = [&](GPT& m, int64_t lo, int64_t n) {
    auto x = inputs.slice(0, lo, lo + n), y = targets.slice(0, lo, lo + n);
    const double cnt = (y != -100).sum().item<double>();
    return MicroOut{lm_loss(m, x, y, false, true) * cnt, cnt, {{"rows", static_cast<double>(n)}}};
  };
  const OptimConfig o = golden_optim();
  auto run_local = [&](int64_t accum) {
    GPT m = golden_model(d);
    auto opt = make_adamw(*m, o);
    set_lr(*opt, 1e-2);
    std::vector<Trainable> tr = {{"", m->parameters(), opt.get()}};
    auto dist = single_process_context();
    auto u = update(tr, *dist, accum, [&](int64_t j) { return micro_of(m, j * (8 / accum), 8 / accum); }, 0.5, 1);
    REQUIRE(u.stats.at("rows") == 8);
    return std::make_pair(u.loss, m->wte->weight.clone());
  };
  auto [l1, w1] = run_local(1);
  auto [l2, w2] = run_local(2);
  REQUIRE(std::abs(l1 - l2) < 1e-12);
  REQUIRE((w1 - w2).abs().max().item<double>() < 1e-12);
  // Hand check of the token weighting: the loss is the mean over the 2 + 8*6 + 5 = 55 unmasked targets.
  {
    GPT m = golden_model(d);
    torch::NoGradGuard ng;
    auto logits = m->forward(inputs);  // (8, 8, 37)
    auto want = torch::nn::functional::cross_entropy(logits.reshape({-1, 37}), targets.reshape(-1));
    REQUIRE(std::abs(l1 - want.item<double>()) < 1e-12);
    REQUIRE((targets != -100).sum().item<int64_t>() == 55);
  }
  // Two ranks, each accum 2 over its 4 rows (rank r owns rows [4r, 4r + 4)).
  ThreadGroup group;
  std::vector<double> loss(2);
  std::vector<torch::Tensor> w(2);
  auto rank_main = [&](int r) {
    torch::set_num_threads(1);
    GPT m = golden_model(d);
    auto opt = make_adamw(*m, o);
    set_lr(*opt, 1e-2);
    ThreadDist dist(group, r);
    dist.watch(m->parameters());
    std::vector<Trainable> tr = {{"", m->parameters(), opt.get()}};
    auto u = update(tr, dist, 2, [&](int64_t j) { return micro_of(m, 4 * r + 2 * j, 2); }, 0.5, 1);
    loss[r] = u.loss;
    w[r] = m->wte->weight.clone();
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join();
  t1.join();
  REQUIRE(std::abs(loss[0] - l1) < 1e-12);
  REQUIRE(std::abs(loss[1] - l1) < 1e-12);
  REQUIRE((w[0] - w1).abs().max().item<double>() < 1e-6);
  REQUIRE(torch::equal(w[0], w[1]));
}

TEST_CASE("engine: a step whose micro-batches hold no target changes nothing", "[train]") {
  auto d = load_pt(std::string(CODEX_TEST_DIR) + "/train/golden/step_golden.pt");
  GPT m = golden_model(d);
  auto opt = make_adamw(*m, golden_optim());
  std::vector<Trainable> tr = {{"", m->parameters(), opt.get()}};
  auto dist = single_process_context();
  auto before = m->wte->weight.clone();
  auto b = d.at("batch.1.0").toTensor();
  auto u = update(tr, *dist, 1, [&](int64_t) {
    auto x = b.slice(1, 0, 8);
    auto hid = m->hidden(x);
    return MicroOut{hid.sum() * 0.0, 0, {}};
  }, 0.5, 1);
  REQUIRE(u.count == 0);
  REQUIRE(u.loss == 0);
  REQUIRE(torch::equal(m->wte->weight, before));
}
