// The shared training-loop pieces: LR schedule, batch sampler, AdamW groups, metrics file, bench.
#include "train/loop.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "helpers.h"
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
