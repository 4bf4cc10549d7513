// SFT: sequence layout, masked loss, left padding, Codex-D data, the trainer end to end.
#include "train/sft.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "data/jsonl.h"
#include "helpers.h"
#include "train/finetune_fixture.h"
#include "train/pretrain.h"
#include "train/sequences.h"

using namespace codex;
using codex::test::read_text;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {
std::vector<json> metrics(const fs::path& run) { return codex::test::metrics_of(run); }
std::string comparable(std::vector<json> m) {
  std::string s;
  for (auto& j : m) {
    for (auto k : {"tokens_per_s"}) j.erase(k);
    s += j.dump() + "\n";
  }
  return s;
}
}  // namespace

TEST_CASE("sequences: left padding, prompt-masked targets, truncation from the prompt's left (by hand)", "[sft]") {
  Sequence a{{1, 2, 3}, {4, 5, 9}}, b{{7}, {8, 9}};
  SeqBatch x = make_batch({&a, &b}, 16, true, 0);
  REQUIRE(torch::equal(x.input, torch::tensor({1, 2, 3, 4, 5, 0, 0, 0, 7, 8}, torch::kLong).view({2, 5})));
  REQUIRE(torch::equal(x.targets, torch::tensor({-100, -100, 4, 5, 9, -100, -100, -100, 8, 9}, torch::kLong).view({2, 5})));
  REQUIRE(torch::equal(x.mask, torch::tensor({1, 1, 1, 1, 1, 0, 0, 0, 1, 1}, torch::kBool).view({2, 5})));
  REQUIRE(x.completion_tokens == 5);
  REQUIRE(x.real_tokens == 7);
  REQUIRE(x.padded_tokens == 3);
  // Unmasked: every next token of the real sequence is a target.
  SeqBatch u = make_batch({&a}, 16, false, 0);
  REQUIRE(torch::equal(u.targets, torch::tensor({2, 3, 4, 5, 9}, torch::kLong).view({1, 5})));
  // block 3: 6 tokens -> keep 4, losing the prompt's first two.
  SeqBatch t = make_batch({&a}, 3, true, 0);
  REQUIRE(t.truncated == 1);
  REQUIRE(torch::equal(t.input, torch::tensor({3, 4, 5}, torch::kLong).view({1, 3})));
  REQUIRE(torch::equal(t.targets, torch::tensor({4, 5, 9}, torch::kLong).view({1, 3})));
  // Scoring layout: whole sequences, the eot in the last column.
  ScoreBatch s = make_score_batch({&a, &b}, 16, 0);
  REQUIRE(torch::equal(s.input, torch::tensor({1, 2, 3, 4, 5, 9, 0, 0, 0, 7, 8, 9}, torch::kLong).view({2, 6})));
}

TEST_CASE("sft: a left-padded batch gives each example its solo loss, prompt targets do not matter", "[sft]") {
  GPTConfig g;
  g.vocab_size = 30;
  g.n_layer = 2;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 16;
  torch::manual_seed(3);
  GPT m(g);
  m->to(torch::kDouble);
  Sequence a{{1, 2, 3, 4, 5, 6}, {7, 8, 29}}, b{{11}, {12, 13, 14, 29}}, c{{}, {20, 21, 29}};
  auto row_losses = [&](const std::vector<const Sequence*>& rows) {
    SeqBatch x = make_batch(rows, 16, true, 0);
    auto logits = m->lm_logits(m->hidden(x.input, nullptr, x.mask));  // (B, W, V)
    auto l = torch::nn::functional::cross_entropy(
        logits.reshape({-1, 30}), x.targets.reshape(-1),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone).ignore_index(-100));
    return l.view({static_cast<int64_t>(rows.size()), -1}).sum(1);
  };
  auto together = row_losses({&a, &b, &c});
  REQUIRE(std::abs(together[0].item<double>() - row_losses({&a})[0].item<double>()) < 1e-10);
  REQUIRE(std::abs(together[1].item<double>() - row_losses({&b})[0].item<double>()) < 1e-10);
  REQUIRE(std::abs(together[2].item<double>() - row_losses({&c})[0].item<double>()) < 1e-10);
  // The masked token-mean equals the hand-computed mean of -log p over the completion targets.
  SeqBatch x = make_batch({&a, &b, &c}, 16, true, 0);
  auto fused = lm_loss(m, x.input, x.targets, false, true, x.mask);
  const double targets = static_cast<double>((x.targets != -100).sum().item<int64_t>());
  REQUIRE(targets == 9);  // 3 + 4 + 2: an empty prompt's first token is context, not a target
  REQUIRE(std::abs(fused.item<double>() - together.sum().item<double>() / targets) < 1e-10);
  // mask_prompt=false takes the loss on prompt tokens too: a different (larger-count) mean.
  SeqBatch u = make_batch({&a}, 16, false, 0);
  SeqBatch k = make_batch({&a}, 16, true, 0);
  REQUIRE((u.targets != -100).sum().item<int64_t>() == 8);
  REQUIRE((k.targets != -100).sum().item<int64_t>() == 3);
  // The prompt-masked loss and its gradient do not depend on what the prompt positions would
  // predict: relabelling them (still masked) is a no-op, and the loss only sees completion tokens.
  auto l_mask = lm_loss(m, k.input, k.targets, false, true, k.mask);
  auto want = -torch::log_softmax(m->lm_logits(m->hidden(k.input, nullptr, k.mask)), -1)
                   .index({0, torch::indexing::Slice(5, 8)})
                   .gather(-1, torch::tensor({7, 8, 29}, torch::kLong).unsqueeze(-1))
                   .mean();
  REQUIRE(std::abs(l_mask.item<double>() - want.item<double>()) < 1e-12);
}

TEST_CASE("sft: the trainer's own batch loss is the sum of -log p over completion targets, by hand", "[sft]") {
  GPTConfig g;
  g.vocab_size = 30;
  g.n_layer = 2;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 16;
  torch::manual_seed(7);
  GPT m(g);
  m->to(torch::kDouble);
  m->eval();
  Sequence a{{1, 2, 3, 4}, {5, 6, 29}}, b{{9}, {10, 11, 12, 29}}, c{{}, {20, 21, 29}};
  // By hand, one unpadded sequence at a time: -log softmax(logits at j - 1)[token j] for every
  // token j that is a target (completion tokens, or every token after the first when unmasked).
  auto hand = [&](const std::vector<const Sequence*>& rows, bool mask_prompt) {
    double sum = 0;
    int64_t count = 0;
    torch::NoGradGuard ng;
    for (const Sequence* s : rows) {
      std::vector<int64_t> all(s->prompt.begin(), s->prompt.end());
      all.insert(all.end(), s->completion.begin(), s->completion.end());
      auto in = torch::tensor(std::vector<int64_t>(all.begin(), all.end() - 1), torch::kLong).unsqueeze(0);
      auto lsm = torch::log_softmax(m->forward(in), -1);
      const size_t first = mask_prompt ? std::max<size_t>(1, s->prompt.size()) : 1;
      for (size_t j = first; j < all.size(); ++j, ++count) sum -= lsm[0][static_cast<int64_t>(j - 1)][all[j]].item<double>();
    }
    return std::make_pair(sum, count);
  };
  for (bool mp : {true, false}) {
    INFO("mask_prompt " << mp);
    SeqBatch x = make_batch({&a, &b, &c}, 16, mp, 0);
    auto [loss, count] = sft_batch_loss(m, x, torch::kCPU);
    auto [want, n] = hand({&a, &b, &c}, mp);
    CHECK(count == static_cast<double>(n));
    CHECK(count == (mp ? 9.0 : 12.0));  // 3 + 4 + 2 completion targets; 6 + 4 + 2 without the mask
    CHECK(loss.item<double>() == Approx(want).epsilon(1e-9));
  }
  // the loss carries the gradient the trainer steps with
  m->train();
  SeqBatch x = make_batch({&a}, 16, true, 0);
  auto [loss, count] = sft_batch_loss(m, x, torch::kCPU);
  REQUIRE(loss.requires_grad());
}

TEST_CASE("sft: Codex-D data drops the docstring from the prompt and asks for it", "[sft]") {
  Problem p;
  p.task_id = "t/0";
  p.entry_point = "add";
  p.prompt = "import math\n\ndef add(a, b):\n    \"\"\"Add two numbers.\n\n    >>> add(1, 2)\n    3\n    \"\"\"\n";
  p.canonical_solution = "    return a + b\n";
  auto [prompt, completion] = docstring_task(p);
  REQUIRE(prompt.find("Add two numbers") == std::string::npos);
  REQUIRE(prompt.find("def add(a, b):\n    return a + b") != std::string::npos);
  REQUIRE(prompt.rfind("\"\"\"") == prompt.size() - 3);
  REQUIRE(completion == "Add two numbers.\n\n    >>> add(1, 2)\n    3\"\"\"");
  p.prompt = "def add(a, b):\n";
  REQUIRE(docstring_task(p).first.empty());
}

TEST_CASE("sft: trains on demos, loss falls, resume is bit-exact, bad data exits 2", "[sft][checkpoint]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  std::string demos;
  for (int i = 0; i < 12; ++i)
    demos += json{{"prompt", "def f" + std::to_string(i) + "(x):\n"}, {"response", "    return x + " + std::to_string(i) + "\n"}}.dump() + "\n";
  codex::test::write_text(t / "demos.jsonl", demos);
  auto base_of = [&](const std::string& run) {
    return "sft" + codex::test::tiny_ft_args((t / run).string()) + " sft.init=" + m0 + " sft.data=" +
           (t / "demos.jsonl").string() + " sft.val_fraction=0 sft.epochs=6 train.checkpoint_every=3 train.keep_checkpoints=10";
  };
  auto a = run_cli(base_of("a"));
  INFO(a.err);
  REQUIRE(a.code == 0);
  auto m = metrics(t / "a");
  REQUIRE(m.size() == 18);  // 12 examples / 4 per step = 3 steps per epoch, 6 epochs
  REQUIRE(m.back()["loss"].get<double>() < 0.6 * m.front()["loss"].get<double>());
  REQUIRE(m.front().contains("padding_share"));
  // lr defaults to the init run's / 10
  REQUIRE(read_text(t / "a" / "config.yaml").find("  lr: 0.01") != std::string::npos);
  // interrupted after step 9: resume gives the same metrics
  fs::copy(t / "a", t / "b", fs::copy_options::recursive);
  for (int s : {12, 15, 18}) fs::remove_all(t / "b" / "checkpoints" / checkpoint_name(s));
  codex::test::write_text(t / "b" / "checkpoints" / "latest", checkpoint_name(9) + "\n");
  auto b = run_cli(base_of("b") + " resume=true");
  INFO(b.err);
  REQUIRE(b.code == 0);
  REQUIRE(comparable(metrics(t / "b")) == comparable(metrics(t / "a")));
  // the result is a normal checkpoint: generate takes it
  auto g = run_cli("generate --checkpoint " + (t / "a").string() + " --prompt 'def f3(x):\n' --max-new-tokens 8");
  INFO(g.err);
  REQUIRE(g.code == 0);
  // bad inputs
  codex::test::write_text(t / "bad.jsonl", "{\"prompt\": \"x\"}\n");
  auto bad = run_cli("sft sft.init=" + m0 + " sft.data=" + (t / "bad.jsonl").string() + codex::test::tiny_ft_args((t / "c").string()));
  REQUIRE(bad.code == 2);
  REQUIRE(bad.err.find("bad.jsonl:1") != std::string::npos);
  REQUIRE(!fs::exists(t / "c"));
  auto noinit = run_cli("sft sft.data=" + (t / "demos.jsonl").string() + codex::test::tiny_ft_args((t / "c").string()));
  REQUIRE(noinit.code == 2);
  REQUIRE(noinit.err.find("sft.init") != std::string::npos);
}

TEST_CASE("sft: with_docstring swaps the docstring text and keeps the rest", "[sft]") {
  Problem p;
  p.entry_point = "add";
  p.prompt = "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n";
  REQUIRE(with_docstring(p, "Sum of a and b.") == "def add(a, b):\n    \"\"\"Sum of a and b.\"\"\"\n");
  p.prompt = "def add(a, b):\n    pass\n";
  REQUIRE(with_docstring(p, "x").empty());
}

TEST_CASE("sft: length-bucketed step order covers every example once per pass, is seeded, and pads less",
          "[sft][sequences]") {
  // Lengths 1..n in a scrambled layout; per_step 8; n both a multiple and not a multiple of per_step.
  for (int64_t n : {int64_t(256), int64_t(300)}) {
    std::vector<int64_t> lengths;
    for (int64_t i = 0; i < n; ++i) lengths.push_back(1 + (i * 37) % n);
    const int64_t per_step = 8, steps = (3 * n + per_step - 1) / per_step;  // three passes (and a bit)
    StepOrder bucketed(lengths, 5, per_step, true), again(lengths, 5, per_step, true), plain(lengths, 5, per_step, false);
    StepOrder other_seed(lengths, 6, per_step, true);
    std::vector<int64_t> stream, stream_plain;
    bool seed_matters = false;
    for (int64_t s = 1; s <= steps; ++s) {
      auto b = bucketed.step(s);
      REQUIRE(static_cast<int64_t>(b.size()) == per_step);
      CHECK(b == again.step(s));  // a function of (lengths, seed, step): resume draws the same
      seed_matters = seed_matters || b != other_seed.step(s);
      stream.insert(stream.end(), b.begin(), b.end());
      auto p = plain.step(s);
      stream_plain.insert(stream_plain.end(), p.begin(), p.end());
    }
    CHECK(seed_matters);
    // The plain order is epoch_order's, position by position.
    for (int64_t q = 0; q < 3 * n; ++q) REQUIRE(stream_plain[q] == epoch_order(n, 5, q / n)[q % n]);
    // Every pass of the bucketed stream is a permutation of the n examples.
    for (int64_t e = 0; e < 3; ++e) {
      std::vector<int64_t> pass(stream.begin() + e * n, stream.begin() + (e + 1) * n);
      std::sort(pass.begin(), pass.end());
      for (int64_t i = 0; i < n; ++i) REQUIRE(pass[i] == i);
    }
    // Padding of a step = its rows padded to its longest; bucketing cuts it several-fold.
    auto padding = [&](const std::vector<int64_t>& st) {
      int64_t pad = 0;
      for (size_t lo = 0; lo < st.size(); lo += per_step) {
        int64_t mx = 0;
        for (size_t j = lo; j < lo + per_step; ++j) mx = std::max(mx, lengths[st[j]]);
        for (size_t j = lo; j < lo + per_step; ++j) pad += mx - lengths[st[j]];
      }
      return pad;
    };
    stream.resize(static_cast<size_t>(3 * n / per_step * per_step));
    stream_plain.resize(stream.size());
    CHECK(padding(stream) * 4 < padding(stream_plain));
    // Different passes group differently (the shuffle under the buckets changes per pass).
    CHECK(std::vector<int64_t>(stream.begin(), stream.begin() + n) !=
          std::vector<int64_t>(stream.begin() + n, stream.begin() + 2 * n));
  }
}
