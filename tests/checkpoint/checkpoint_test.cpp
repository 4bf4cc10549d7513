#include "checkpoint/checkpoint.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "helpers.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;
namespace fs = std::filesystem;

static GPT small_gpt() {
  GPTConfig g;
  g.vocab_size = 50;
  g.n_layer = 2;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 16;
  return GPT(g);
}

static void append_byte(const fs::path& p) { std::ofstream(p, std::ios::app | std::ios::binary) << 'x'; }

TEST_CASE("checkpoint: weights-only folder round-trips through load_model", "[checkpoint]") {
  TempDir t;
  torch::manual_seed(1);
  GPT m = small_gpt();
  Config cfg;
  codex::test::write_text(t / "tok.model", "tokenizer bytes");
  save_model_checkpoint((t / "ck").string(), m, cfg, (t / "tok.model").string());
  REQUIRE_NOTHROW(verify_checkpoint((t / "ck").string()));
  LoadedModel lm = load_model((t / "ck").string());
  REQUIRE(lm.step == 0);
  REQUIRE(lm.gpt.n_layer == 2);
  REQUIRE(lm.gpt.vocab_size == 50);
  REQUIRE(codex::test::read_text(lm.tokenizer_path) == "tokenizer bytes");
  auto want = m->named_parameters();
  for (auto& kv : lm.model->named_parameters()) REQUIRE(torch::equal(kv.value(), want[kv.key()]));
  // Not a checkpoint / a damaged one: UsageError naming the problem.
  REQUIRE_THROWS_AS(load_model(t.str()), UsageError);
  append_byte(t / "ck" / "model.pt");
  REQUIRE_THROWS_WITH(verify_checkpoint((t / "ck").string()), Catch::Contains("model.pt"));
  REQUIRE_THROWS_AS(load_model((t / "ck").string()), UsageError);
}

TEST_CASE("checkpoint: latest, fallback past corrupt ones, pruning, incomplete folders", "[checkpoint]") {
  TempDir t;
  GPT m = small_gpt();
  Config cfg;
  cfg.train.keep_checkpoints = 2;
  auto opt = torch::optim::AdamW(m->parameters());
  const std::string run = t.str();
  REQUIRE(!find_resume_checkpoint(run).has_value());
  for (int64_t s : {10, 20, 30})
    save_training_checkpoint(run, s, m, &opt, cfg, "", nlohmann::json{{"sampler", "x"}});
  const fs::path ck = t / "checkpoints";
  REQUIRE(!fs::exists(ck / "step_00000010"));  // pruned: keep 2
  REQUIRE(*find_resume_checkpoint(run) == (ck / "step_00000030").string());
  REQUIRE(read_checkpoint_state((ck / "step_00000030").string())["step"] == 30);
  // A half-written folder from a killed writer is never picked.
  fs::create_directories(ck / ".tmp-step_00000040.999999");
  // Newest corrupt: the previous one, with a warning.
  append_byte(ck / "step_00000030" / "rng.pt");
  REQUIRE(*find_resume_checkpoint(run) == (ck / "step_00000020").string());
  // latest naming a vanished folder: still the newest valid one.
  codex::test::write_text(ck / "latest", "step_00000099\n");
  REQUIRE(*find_resume_checkpoint(run) == (ck / "step_00000020").string());
  // load_model takes the run dir, a step folder, or the checkpoints/latest file itself.
  REQUIRE(load_model(run).step == 20);
  REQUIRE(load_model((ck / "latest").string()).step == 20);
  REQUIRE(load_model((ck / "step_00000020").string()).step == 20);
  REQUIRE_THROWS_WITH(load_model((t / "nope").string()), Catch::Contains("does not exist"));
  fs::remove(ck / "step_00000020" / "MANIFEST.json");
  REQUIRE_THROWS_AS(find_resume_checkpoint(run), UsageError);
}

TEST_CASE("checkpoint: shape mismatch names the differing keys", "[checkpoint]") {
  TempDir t;
  GPT m = small_gpt();
  Config cfg;
  save_model_checkpoint((t / "ck").string(), m, cfg, "");
  GPTConfig g = m->cfg;
  g.n_embd = 32;
  GPT other(g);
  REQUIRE_THROWS_WITH(load_weights((t / "ck").string(), other),
                      Catch::Contains("wte.weight (checkpoint [50, 16], model [50, 32])"));
}

TEST_CASE("checkpoint: optimizer and RNG state restore exactly", "[checkpoint]") {
  TempDir t;
  torch::manual_seed(5);
  GPT m = small_gpt();
  Config cfg;
  auto opt = torch::optim::AdamW(m->parameters(), torch::optim::AdamWOptions(1e-2));
  auto step = [&] {
    opt.zero_grad();
    m->forward(torch::randint(0, 50, {2, 16}, torch::kLong)).pow(2).mean().backward();
    opt.step();
  };
  step();
  save_training_checkpoint(t.str(), 1, m, &opt, cfg, "", nlohmann::json::object());
  step();
  auto want = m->wte->weight.clone();

  torch::manual_seed(123);  // different RNG and fresh weights: everything must come from the checkpoint
  GPT m2 = small_gpt();
  auto opt2 = torch::optim::AdamW(m2->parameters(), torch::optim::AdamWOptions(1e-2));
  const std::string ck = (t / "checkpoints" / "step_00000001").string();
  load_weights(ck, m2);
  load_optimizer_and_rng(ck, opt2);
  opt2.zero_grad();
  m2->forward(torch::randint(0, 50, {2, 16}, torch::kLong)).pow(2).mean().backward();
  opt2.step();
  REQUIRE(torch::equal(m2->wte->weight, want));
}

TEST_CASE("checkpoint: named modules with heads, trunk-only loads, frozen references, old format", "[checkpoint]") {
  TempDir t;
  torch::manual_seed(2);
  GPT lm = small_gpt();
  Config cfg;
  save_model_checkpoint((t / "lm").string(), lm, cfg, "");
  REQUIRE(checkpoint_heads((t / "lm").string()) == std::vector<std::string>{"lm"});
  // A reward model starts from the LM's trunk: explicit trunk mode, its head keeps its own init.
  GPT rm = small_gpt();
  rm->add_scalar_head("reward_head");
  auto head_before = rm->scalar_heads.at("reward_head")->weight.clone();
  REQUIRE_THROWS_WITH(load_weights((t / "lm").string(), rm), Catch::Contains("reward_head.weight (missing from checkpoint)"));
  load_weights((t / "lm").string(), rm, LoadMode::trunk);
  REQUIRE(torch::equal(rm->wte->weight, lm->wte->weight));
  REQUIRE(torch::equal(rm->scalar_heads.at("reward_head")->weight, head_before));
  // A training checkpoint of two modules (PPO's policy and value model), each with its optimizer.
  GPT value = small_gpt();
  value->add_scalar_head("value_head");
  OptimConfig o;
  auto po = torch::optim::AdamW(lm->parameters(), torch::optim::AdamWOptions(1e-3));
  auto vo = torch::optim::AdamW(value->parameters(), torch::optim::AdamWOptions(1e-3));
  const std::string ck = save_training_checkpoint(t.str() + "/run", 3, {ModuleRef{"model", lm, &po},
                                                                       ModuleRef{"value", value, &vo}},
                                                  cfg, "", nlohmann::json::object());
  REQUIRE(fs::exists(fs::path(ck) / "value.pt"));
  REQUIRE(fs::exists(fs::path(ck) / "value.optim.pt"));
  REQUIRE(checkpoint_heads(ck, "value") == std::vector<std::string>{"lm", "value_head"});
  LoadedModel policy = load_model(ck);  // the main module, as every command reads it
  REQUIRE(!policy.model->has_head("value_head"));
  GPT v2 = small_gpt();
  v2->add_scalar_head("value_head");
  load_weights(ck, v2, LoadMode::strict, "value");
  REQUIRE(torch::equal(v2->scalar_heads.at("value_head")->weight, value->scalar_heads.at("value_head")->weight));
  REQUIRE_THROWS_WITH(load_weights(ck, v2, LoadMode::strict, "critic"), Catch::Contains("no module 'critic'"));
  // A reference model: loaded read-only, no optimizer state needed (a weights-only folder has none).
  LoadedModel ref = load_model((t / "lm").string());
  freeze(ref.model);
  for (auto& p : ref.model->parameters()) REQUIRE(!p.requires_grad());
  REQUIRE(!ref.model->is_training());
  auto opt = torch::optim::AdamW(lm->parameters(), torch::optim::AdamWOptions(1e-3));
  REQUIRE_THROWS_WITH(load_optimizer((t / "lm").string(), opt), Catch::Contains("no optimizer state"));
  // A checkpoint written before heads existed (state.json without "heads") still loads as an LM.
  auto st = nlohmann::json::parse(codex::test::read_text(t / "lm" / "state.json"));
  st.erase("heads");
  const std::string bytes = st.dump(2) + "\n";
  codex::test::write_text(t / "lm" / "state.json", bytes);
  auto man = nlohmann::json::parse(codex::test::read_text(t / "lm" / "MANIFEST.json"));
  man["files"]["state.json"] = {{"bytes", bytes.size()}, {"fnv1a64", hex64(fnv1a64(bytes.data(), bytes.size()))}};
  codex::test::write_text(t / "lm" / "MANIFEST.json", man.dump(2) + "\n");
  REQUIRE(checkpoint_heads((t / "lm").string()) == std::vector<std::string>{"lm"});
  LoadedModel old = load_model((t / "lm").string());
  REQUIRE(torch::equal(old.model->wte->weight, lm->wte->weight));
}
