// Reward model: Bradley-Terry loss by hand; a planted preference is learned; eval / score commands.
#include "train/reward.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "train/finetune_fixture.h"
#include "train/sequences.h"

using namespace codex;
using codex::test::read_text;
using codex::test::run_cli;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("reward: Bradley-Terry loss with margin and centring by hand", "[reward]") {
  auto T = [](std::vector<double> v) { return torch::tensor(v, torch::kFloat64); };
  auto l = bradley_terry_loss(T({2.0, 2.0, 0.0}), T({1.0, 1.0, 3.0}), T({0.0, 0.5, 0.0}), 0.0);
  REQUIRE(l[0].item<double>() == Approx(std::log1p(std::exp(-1.0))).epsilon(1e-12));
  REQUIRE(l[1].item<double>() == Approx(std::log1p(std::exp(-0.5))).epsilon(1e-12));
  REQUIRE(l[2].item<double>() == Approx(std::log1p(std::exp(3.0))).epsilon(1e-12));
  auto c = bradley_terry_loss(T({2.0}), T({1.0}), T({0.0}), 0.1);
  REQUIRE(c[0].item<double>() == Approx(std::log1p(std::exp(-1.0)) + 0.1 * 9.0).epsilon(1e-12));
}

TEST_CASE("reward: a reward model learns a planted preference, eval and score commands", "[reward][checkpoint]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  // chosen responses return a value; rejected ones raise. Held-out pairs use other names.
  auto prefs = [](int lo, int hi) {
    std::string s;
    for (int i = lo; i < hi; ++i) {
      const std::string name = "item" + std::to_string(i);
      json j = {{"prompt", "def get_" + name + "(data):\n"},
                {"chosen", "    return data[" + std::to_string(i % 7) + "]\n"},
                {"rejected", "    raise ValueError('no " + name + "')\n"}};
      if (i % 2) j = {{"prompt", j["prompt"]}, {"completion_a", j["rejected"]}, {"completion_b", j["chosen"]}, {"label", 1}};
      s += j.dump() + "\n";
    }
    return s;
  };
  codex::test::write_text(t / "train.jsonl", prefs(0, 48));
  codex::test::write_text(t / "val.jsonl", prefs(100, 120));
  auto r = run_cli("reward train" + codex::test::tiny_ft_args((t / "rm").string()) + " reward.init=" + m0 +
                   " reward.data=" + (t / "train.jsonl").string() + " reward.val_data=" + (t / "val.jsonl").string() +
                   " reward.epochs=4 train.eval_every=12 optim.lr=3e-3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto summary = json::parse(r.out);
  REQUIRE(summary["steps"] == 48);
  REQUIRE(summary["val_accuracy"].get<double>() >= 0.9);
  auto e = run_cli("reward eval --checkpoint " + (t / "rm").string() + " --prefs " + (t / "val.jsonl").string());
  INFO(e.err);
  REQUIRE(e.code == 0);
  auto ej = json::parse(e.out);
  REQUIRE(ej["pairs"] == 20);
  REQUIRE(ej["accuracy"].get<double>() == Approx(summary["val_accuracy"].get<double>()));
  REQUIRE(ej["mean_margin"].get<double>() > 0);
  // score: one line per input, batched equal to one by one
  codex::test::write_text(t / "in.jsonl", json{{"prompt", "def a(x):\n"}, {"completion", "    return x\n"}}.dump() + "\n" +
                                              json{{"prompt", "def a(x):\n"}, {"completion", "    raise X\n"}}.dump() + "\n");
  auto s = run_cli("reward score --checkpoint " + (t / "rm").string() + " --input " + (t / "in.jsonl").string());
  INFO(s.err);
  REQUIRE(s.code == 0);
  std::istringstream lines(s.out);
  std::string l1, l2;
  std::getline(lines, l1);
  std::getline(lines, l2);
  REQUIRE(json::parse(l1)["score"].get<double>() > json::parse(l2)["score"].get<double>());
  codex::test::write_text(t / "one.jsonl", json{{"prompt", "def a(x):\n"}, {"completion", "    raise X\n"}}.dump() + "\n");
  auto s1 = run_cli("reward score --checkpoint " + (t / "rm").string() + " --input " + (t / "one.jsonl").string());
  REQUIRE(json::parse(s1.out)["score"].get<double>() == Approx(json::parse(l2)["score"].get<double>()).epsilon(1e-5));
  // an LM is not a reward model; a malformed preference line names file:line
  auto notrm = run_cli("reward eval --checkpoint " + m0 + " --prefs " + (t / "val.jsonl").string());
  REQUIRE(notrm.code == 2);
  REQUIRE(notrm.err.find("not a reward model") != std::string::npos);
  codex::test::write_text(t / "bad.jsonl", prefs(0, 2) + "{\"prompt\": \"p\", \"chosen\": \"c\"}\n");
  auto bad = run_cli("reward train reward.init=" + m0 + " reward.data=" + (t / "bad.jsonl").string() +
                     codex::test::tiny_ft_args((t / "rm2").string()));
  REQUIRE(bad.code == 2);
  REQUIRE(bad.err.find("bad.jsonl:3") != std::string::npos);
}

TEST_CASE("reward: val_loss includes reward.margin (the loss training minimises), by hand from the final model",
          "[reward]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  std::string train, val;
  for (int i = 0; i < 8; ++i)
    train += json{{"prompt", "def f" + std::to_string(i) + "(x):\n"}, {"chosen", "    return x\n"},
                  {"rejected", "    raise X\n"}}.dump() + "\n";
  // held-out pairs; the second carries its own margin (added to reward.margin)
  const std::vector<json> vp = {{{"prompt", "def g(x):\n"}, {"chosen", "    return 1\n"}, {"rejected", "    pass\n"}},
                                {{"prompt", "def h(y):\n"}, {"chosen", "    return y\n"}, {"rejected", "    y()\n"},
                                 {"margin", 0.25}},
                                {{"prompt", "x = 1\n"}, {"chosen", "y = x\n"}, {"rejected", "y = z\n"}}};
  for (auto& j : vp) val += j.dump() + "\n";
  codex::test::write_text(t / "train.jsonl", train);
  codex::test::write_text(t / "val.jsonl", val);
  auto r = run_cli("reward train" + codex::test::tiny_ft_args((t / "rm").string()) + " reward.init=" + m0 +
                   " reward.data=" + (t / "train.jsonl").string() + " reward.val_data=" + (t / "val.jsonl").string() +
                   " reward.margin=1.5 reward.center_coef=0.01 train.max_steps=2 train.eval_every=2");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const double reported = json::parse(r.out)["val_loss"].get<double>();
  // The final model (val_loss is measured after the last step's update) scores the held-out pairs;
  // the documented loss: -log sigmoid(r_c - r_r - margin) + c (r_c + r_r)^2, margin = 1.5 + own.
  LoadedModel lm = load_model((t / "rm").string());
  Tokenizer tok(lm.tokenizer_path);
  lm.model->eval();
  torch::NoGradGuard ng;
  const double margins[] = {1.5, 1.75, 1.5};
  double want = 0;
  for (size_t i = 0; i < vp.size(); ++i) {
    Sequence c = make_sequence(tok, vp[i]["prompt"], vp[i]["chosen"]);
    Sequence j = make_sequence(tok, vp[i]["prompt"], vp[i]["rejected"]);
    const double rc = score_sequences(lm.model, {&c}, tok, torch::kCPU)[0].item<double>();
    const double rr = score_sequences(lm.model, {&j}, tok, torch::kCPU)[0].item<double>();
    want += std::log1p(std::exp(-(rc - rr - margins[i]))) + 0.01 * (rc + rr) * (rc + rr);
  }
  want /= 3.0;
  CHECK(reported == Approx(want).epsilon(1e-5));
}
