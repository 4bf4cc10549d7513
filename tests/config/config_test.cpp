#include "config/config.h"
#include "pipeline/pipeline.h"

#include <catch2/catch.hpp>

#include "helpers.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using codex::test::TempDir;
using codex::test::write_text;

TEST_CASE("config: YAML file, overrides and presets", "[config]") {
  TempDir t;
  write_text(t / "a.yaml", "run:\n  seed: 7\nmodel:\n  preset: small\n  n_layer: 3\noptim:\n  lr: 3.0e-4\n");
  Config c = load_config((t / "a.yaml").string(), {"optim.lr=1e-3", "tokenizer.input=[a, b]"});
  REQUIRE(c.run.seed == 7);
  REQUIRE(c.model.n_layer == 3);   // explicit key beats the preset
  REQUIRE(c.model.n_embd == 384);  // preset fills the rest
  REQUIRE(c.optim.lr == Approx(1e-3));
  REQUIRE(c.tokenizer.input == std::vector<std::string>{"a", "b"});
}

TEST_CASE("config: base chains to a parent file", "[config]") {
  TempDir t;
  write_text(t / "parent.yaml", "train:\n  max_steps: 11\n  batch_size: 3\n");
  write_text(t / "child.yaml", "base: parent.yaml\ntrain:\n  max_steps: 22\n");
  Config c = load_config((t / "child.yaml").string(), {});
  REQUIRE(c.train.max_steps == 22);
  REQUIRE(c.train.batch_size == 3);
}

static std::string error_of(const std::string& file, const std::vector<std::string>& ov) {
  try {
    load_config(file, ov);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("config: unknown keys suggest the nearest valid key", "[config]") {
  TempDir t;
  write_text(t / "a.yaml", "optim:\n  lr: 1e-3\n  weight_decya: 0.1\n");
  auto msg = error_of((t / "a.yaml").string(), {});
  REQUIRE(msg.find("a.yaml:3") != std::string::npos);
  REQUIRE(msg.find("optim.weight_decya") != std::string::npos);
  REQUIRE(msg.find("optim.weight_decay") != std::string::npos);
  msg = error_of("", {"trian.max_steps=3"});
  REQUIRE(msg.find("train.max_steps") != std::string::npos);
  msg = error_of("", {"lr=3"});
  REQUIRE(msg.find("optim.lr") != std::string::npos);
  // Nothing close: no far-fetched guess, the sections instead; a section is not a key.
  msg = error_of("", {"foo=1"});
  REQUIRE(msg.find("did you mean") == std::string::npos);
  REQUIRE(msg.find("sections") != std::string::npos);
  REQUIRE(msg.find("optim") != std::string::npos);
  REQUIRE(error_of("", {"optim=3"}).find("'optim' is a section") != std::string::npos);
  // The right name in the wrong section, a prefix, a misspelt section.
  REQUIRE(error_of("", {"train.lr=1"}).find("'optim.lr'") != std::string::npos);
  REQUIRE(error_of("", {"eval.temp=1"}).find("'eval.temperature'") != std::string::npos);
  write_text(t / "s.yaml", "optimizer:\n  lr: 1\n");
  REQUIRE(error_of((t / "s.yaml").string(), {}).find("the section 'optim'") != std::string::npos);
}

TEST_CASE("config: config_to_yaml writes the shortest round-tripping numbers", "[config]") {
  Config c = load_config("", {"optim.beta2=0.95", "optim.eps=1e-8", "optim.lr=1", "model.dropout=0.1234567890123"});
  const std::string y = config_to_yaml(c);
  REQUIRE(y.find("weight_decay: 0.1\n") != std::string::npos);
  REQUIRE(y.find("beta2: 0.95\n") != std::string::npos);
  TempDir t;
  write_text(t / "c.yaml", y);
  Config back = load_config((t / "c.yaml").string(), {});
  REQUIRE(back.optim.beta2 == c.optim.beta2);
  REQUIRE(back.optim.eps == c.optim.eps);
  REQUIRE(back.optim.weight_decay == c.optim.weight_decay);
  REQUIRE(back.optim.lr == 1.0);
  REQUIRE(back.model.dropout == c.model.dropout);
  REQUIRE(config_to_yaml(back) == y);
}

TEST_CASE("config: wrong types and ranges name file and line", "[config]") {
  TempDir t;
  write_text(t / "a.yaml", "model:\n  n_layer: two\n");
  auto msg = error_of((t / "a.yaml").string(), {});
  REQUIRE(msg.find("a.yaml:2") != std::string::npos);
  REQUIRE(msg.find("expected an integer") != std::string::npos);
  write_text(t / "b.yaml", "data:\n\n  val_fraction: 0.9\n");
  msg = error_of((t / "b.yaml").string(), {});
  REQUIRE(msg.find("b.yaml:3") != std::string::npos);
  REQUIRE(msg.find("out of range") != std::string::npos);
  REQUIRE(error_of("", {"model.n_layer=1.5"}).find("expected an integer") != std::string::npos);
  REQUIRE(error_of("", {"resume=maybe"}).find("true or false") != std::string::npos);
  // A folder as the config, a mapping for a scalar key, an empty run.dir; an empty section is fine.
  REQUIRE(error_of(t.str(), {}).find("is a folder") != std::string::npos);
  write_text(t / "m.yaml", "train:\n  batch_size:\n    x: 1\n");
  REQUIRE(error_of((t / "m.yaml").string(), {}).find("train.batch_size: expected a value, got a mapping") !=
          std::string::npos);
  REQUIRE(error_of("", {"run.dir="}).find("run.dir: expected a folder") != std::string::npos);
  write_text(t / "e.yaml", "run:\n  seed: 5\ntrain:\n  # max_steps: 5\n");
  REQUIRE(load_config((t / "e.yaml").string(), {}).run.seed == 5);
  REQUIRE(error_of("", {"eval.k=1,0"}).find("in [1, 1000000], got 0") != std::string::npos);
  REQUIRE(error_of("", {"eval.k=1e300"}).find("in [1, 1000000]") != std::string::npos);
  REQUIRE(error_of("", {"eval.k=.inf"}).find("list of integers") != std::string::npos);
  REQUIRE(error_of("", {"eval.k=1.5"}).find("list of integers") != std::string::npos);
  REQUIRE(error_of("", {"dist.backend=mpi"}).find("not one of") != std::string::npos);
  REQUIRE(error_of("", {"model.n_embd=65", "model.n_head=2"}).find("divisible") != std::string::npos);
  write_text(t / "c.yaml", "model: [1, 2\n");
  REQUIRE(error_of((t / "c.yaml").string(), {}).find("invalid YAML") != std::string::npos);
  REQUIRE(error_of((t / "missing.yaml").string(), {}).find("cannot read config") != std::string::npos);
}

TEST_CASE("config: show output reloads to the same config", "[config]") {
  TempDir t;
  Config a = load_config("", {"run.seed=99", "generate.stop=[\"\\nclass\", \"x y\"]", "eval.k=1,5"});
  write_text(t / "shown.yaml", config_to_yaml(a));
  Config b = load_config((t / "shown.yaml").string(), {});
  REQUIRE(config_to_yaml(a) == config_to_yaml(b));
  REQUIRE(b.generate.stop == std::vector<std::string>{"\nclass", "x y"});
  REQUIRE(b.eval.k == std::vector<int64_t>{1, 5});
}

TEST_CASE("config: every shipped YAML under configs/ loads", "[config]") {
  auto files = expand_inputs({std::string(CODEX_SOURCE_DIR) + "/configs"}, {".yaml"});
  REQUIRE(!files.empty());
  for (auto& f : files) {
    INFO(f.string());
    // Pipeline configs hold every stage's section (sft.train.*, ...): read as the pipeline does.
    if (f.parent_path().filename() == "pipeline") {
      REQUIRE_NOTHROW(pipeline_stage_configs(f.string(), {}));
      REQUIRE_THROWS_WITH(pipeline_stage_configs(f.string(), {"sft.optim.lrr=1"}), Catch::Contains("optim.lrr"));
      auto stages = pipeline_stage_configs(f.string(), {"sft.optim.lr=0.25"});
      REQUIRE(stages.at("sft").optim.lr == 0.25);
      REQUIRE(stages.at("pretrain").optim.lr != 0.25);
    } else {
      REQUIRE_NOTHROW(load_config(f.string(), {}));
    }
  }
}
