// The public C++ API (include/codex/codex.h) called in-process, and the installed package:
// `cmake --install`, the quickstart example built against it with CMake, and run.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "tokenizer/tokenizer.h"
#include <codex/codex.h>  // after the internal headers (see src/api/codex.cpp)

using namespace codex::test;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kCorpus = {"def add(a, b): return a + b", "def sub(a, b): return a - b",
                                          "def mul(a, b): return a * b"};

std::map<std::string, std::string> tiny() {
  return {{"model.n_layer", "1"}, {"model.n_head", "2"}, {"model.n_embd", "32"},
          {"train.batch_size", "4"}, {"train.log_every", "1"}, {"run.threads", "1"}};
}

std::vector<nlohmann::json> metrics(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const codex::Error& e) {
    return e.what();
  }
  return "(no codex::Error)";
}

}  // namespace

TEST_CASE("api: pretrain on a three-line corpus, then tokenize, generate and save", "[api]") {
  TempDir tmp;
  codex::PretrainCfg cfg;
  cfg.steps = 30;
  cfg.lr = 3e-3;
  cfg.run_dir = (tmp / "m0").string();
  cfg.overrides = tiny();
  codex::ModelHandle m0 = codex::pretrain(kCorpus, cfg);
  REQUIRE(fs::exists(fs::path(m0.weights.dir) / "MANIFEST.json"));
  CHECK(fs::path(m0.weights.dir).parent_path() == fs::canonical(tmp / "m0" / "checkpoints"));

  // The tokenizer shrank to what three lines support: the byte pieces, the specials and the merges.
  codex::Tokenizer tok((fs::path(m0.weights.dir) / "tokenizer.model").string());
  CHECK(tok.vocab_size() < 8000);
  CHECK(tok.vocab_size() > 259);

  // Training ran: 30 logged steps; a fresh model's loss is about ln(vocab) (near-uniform
  // predictions from small initial weights), and it falls on a corpus this small.
  auto m = metrics(tmp / "m0");
  REQUIRE(m.size() == 30);
  CHECK(std::fabs(m.front()["loss"].get<double>() - std::log(static_cast<double>(tok.vocab_size()))) < 0.5);
  CHECK(m.back()["loss"].get<double>() < m.front()["loss"].get<double>() - 1.0);
  CHECK(m.front().count("val_loss") == 0);  // the val split is too small: no val loss (said in the log)

  // tokenize: ids the tokenizer would give, decoding back to the text
  auto ids = codex::tokenize("def add(a, b):", m0);
  REQUIRE(!ids.empty());
  CHECK(ids == m0.tokenize("def add(a, b):"));
  CHECK(tok.decode(std::vector<int32_t>(ids.begin(), ids.end())) == "def add(a, b):");

  // greedy generation is repeatable; a disallowed string never appears
  std::string a = m0.generate("def add(a, b):", 12), b = m0.generate("def add(a, b):", 12);
  CHECK(a == b);
  codex::ModelHandle guarded = m0;
  guarded.disallowed = {"return"};
  for (int i = 0; i < 3; ++i) CHECK(guarded.generate("def ", 24, 1.0).find("return") == std::string::npos);

  // save: a checkpoint the command line reads, carrying the disallowed set
  guarded.save((tmp / "saved").string());
  CHECK(read_text(tmp / "saved" / "config.yaml").find("return") != std::string::npos);
  auto r = run_cli("generate --checkpoint " + shell_quote((tmp / "saved").string()) +
                   " --prompt 'def ' --max-new-tokens 4 --temperature 0");
  CHECK(r.code == 0);
  codex::ModelHandle reloaded{codex::Weights{(tmp / "saved").string()}, {}};
  CHECK(reloaded.generate("def add(a, b):", 12) == guarded.generate("def add(a, b):", 12));  // the saved set applies
  CHECK(reloaded.generate("def add(a, b):", 12).find("return") == std::string::npos);
  // a folder that is neither empty nor a checkpoint is refused
  write_text(tmp / "busy" / "notes.txt", "x");
  CHECK(error_of([&] { m0.save((tmp / "busy").string()); }).find("not empty") != std::string::npos);
  // the run folder holds a run now: reusing it is refused, naming resume
  CHECK(error_of([&] { codex::pretrain(kCorpus, cfg); }).find("already holds a run") != std::string::npos);
}

TEST_CASE("api: bad input is a codex::Error with the command line's message", "[api]") {
  codex::PretrainCfg cfg;
  cfg.overrides = tiny();
  CHECK(error_of([&] { codex::pretrain({}, cfg); }).find("corpus is empty") != std::string::npos);
  CHECK(error_of([&] { codex::pretrain({"", ""}, cfg); }).find("corpus is empty") != std::string::npos);
  TempDir tmp;
  cfg.run_dir = tmp.str();
  cfg.overrides["optim.lrr"] = "1";
  std::string e = error_of([&] { codex::pretrain(kCorpus, cfg); });
  CHECK(e.find("optim.lrr") != std::string::npos);
  CHECK(e.find("optim.lr") != std::string::npos);
  codex::ModelHandle none;
  CHECK(error_of([&] { none.generate("x"); }).find("Weights::dir is empty") != std::string::npos);
  CHECK(error_of([&] { codex::sft(none, {}, {}); }).find("demos list is empty") != std::string::npos);
  CHECK(error_of([&] { codex::train_reward_model({}, {}); }).find("preferences list is empty") != std::string::npos);
}

// The seeds' chain on one demonstration and one preference: every stage returns a checkpoint.
TEST_CASE("api: pretrain -> sft -> reward model -> rlhf_ppo on tiny data", "[api]") {
  TempDir tmp;
  auto small = tiny();
  codex::ModelHandle m0 = codex::pretrain(kCorpus, {30, 3e-3, 0, (tmp / "m0").string(), small});
  m0.disallowed = {"import os"};
  codex::ModelHandle m1 = codex::sft(m0, {{"def add(a, b):", " return a + b"}}, {2, 1e-3, 0, (tmp / "m1").string(), small});
  REQUIRE(fs::exists(fs::path(m1.weights.dir) / "MANIFEST.json"));
  CHECK(m1.weights.dir != m0.weights.dir);
  CHECK(m1.disallowed == m0.disallowed);
  CHECK(!metrics(tmp / "m1").empty());

  const codex::Preference pref{"def add(a, b):", " return a + b", " return a - b"};
  // The seeds' call, no override: the reward trunk starts from the last model sft() returned (m1).
  codex::RewardModelCfg rcfg{3, 3e-3, 0, (tmp / "rm").string(), small};
  rcfg.overrides["train.max_steps"] = "30";
  codex::RewardModelHandle rm = codex::train_reward_model({pref}, rcfg);
  CHECK(read_text(tmp / "rm" / "config.yaml").find(m1.weights.dir) != std::string::npos);
  // the override still chooses the start (here M0)
  codex::RewardModelCfg ocfg{1, 3e-3, 0, (tmp / "rm0").string(), small};
  ocfg.overrides["reward.init"] = m0.weights.dir;
  ocfg.overrides["train.max_steps"] = "1";
  (void)codex::train_reward_model({pref}, ocfg);
  const std::string rm0_cfg = read_text(tmp / "rm0" / "config.yaml");
  CHECK(rm0_cfg.find(m0.weights.dir) != std::string::npos);
  CHECK(rm0_cfg.find(m1.weights.dir) == std::string::npos);
  // 30 steps on one pair: the chosen completion scores above the rejected one
  CHECK(rm.score(pref.prompt, pref.chosen) > rm.score(pref.prompt, pref.rejected));

  codex::RLHFCfg pcfg{2, 1e-4, 0.1, 0, (tmp / "m2").string(), small};
  pcfg.overrides["ppo.rollout.prompts_per_step"] = "1";
  pcfg.overrides["ppo.rollout.samples_per_prompt"] = "2";
  pcfg.overrides["ppo.rollout.max_new_tokens"] = "8";
  pcfg.overrides["ppo.minibatches"] = "1";
  codex::ModelHandle m2 = codex::rlhf_ppo(m1, rm, pcfg);
  REQUIRE(fs::exists(fs::path(m2.weights.dir) / "MANIFEST.json"));
  auto pm = metrics(tmp / "m2");
  REQUIRE(pm.size() == 2);
  CHECK(pm.back().contains("kl"));
  CHECK(pm.back().contains("reward"));
  CHECK(!m2.generate("def add(a, b):", 8).empty());
}

TEST_CASE("api: the installed package builds and runs the quickstart", "[api][install]") {
  if (run_shell("command -v cmake").code != 0) {
    WARN("SKIPPED: cmake is not installed");
    return;
  }
  TempDir tmp;
  const fs::path build = fs::path(CODEX_BINARY).parent_path();
  const std::string prefix = (tmp / "prefix").string();
  auto inst = run_shell("cmake --install " + shell_quote(build.string()) + " --prefix " + shell_quote(prefix));
  INFO(inst.out + inst.err);
  REQUIRE(inst.code == 0);
  for (const char* f : {"include/codex/codex.h", "lib/libcodex_train.so", "lib/libcodex_spm.so",
                        "lib/cmake/codex_train/codex_trainConfig.cmake", "bin/codex-train",
                        "share/codex-train/data/humaneval/HumanEval.jsonl.gz", "share/codex-train/data/humaneval/LICENSE"})
    CHECK(fs::exists(tmp / "prefix" / f));

  // a user's project: find_package(codex_train) + codex_train::codex_train, nothing else
  const std::string qb = (tmp / "qb").string();
  auto conf = run_shell("cmake -S " + shell_quote(std::string(CODEX_SOURCE_DIR) + "/examples") + " -B " +
                        shell_quote(qb) + " -DCMAKE_PREFIX_PATH=" + shell_quote(prefix) +
                        " -DCMAKE_BUILD_TYPE=Release 2>&1 && cmake --build " + shell_quote(qb) + " 2>&1");
  INFO(conf.out + conf.err);
  REQUIRE(conf.code == 0);

  // Run it; LD_DEBUG names every library loaded, so we see the installed shim is the one used.
  const std::string work = (tmp / "work").string();
  auto run = run_shell("LD_DEBUG=files " + shell_quote(qb + "/quickstart") + " " + shell_quote(work));
  // stderr: the program's own lines (its error, if any), then LD_DEBUG's.
  std::string own;
  {
    std::istringstream in(run.err);
    for (std::string l; std::getline(in, l);)
      if (l.find("file=") == std::string::npos && l.find(": ") != std::string::npos && l.find("\t") == std::string::npos &&
          l.rfind(" ", 0) != 0)
        own += l + "\n";
  }
  INFO(run.out + own.substr(0, 4000));
  REQUIRE(run.code == 0);
  CHECK(run.out.find("M0 weights: ") != std::string::npos);
  CHECK(run.out.find("M0 completion of 'def add(a, b):': ") != std::string::npos);
  // (the shim is dlmopen'ed into its own namespace: LD_DEBUG names it at load or at fini)
  CHECK(run.err.find(prefix + "/lib/libcodex_spm.so") != std::string::npos);
  CHECK(run.err.find(build.string() + "/libcodex_spm.so") == std::string::npos);
  CHECK(run.out.find("M1 completion: ") != std::string::npos);
  CHECK(run.out.find("RM score(chosen) - score(rejected): ") != std::string::npos);
  CHECK(run.out.find("M2 completion: ") != std::string::npos);

  // the installed command line finds its shim in ../lib too, and reads the saved model
  auto gen = run_shell(shell_quote(prefix + "/bin/codex-train") + " generate --checkpoint " +
                       shell_quote(work + "/m0-saved") + " --prompt 'def ' --max-new-tokens 4 --temperature 0");
  INFO(gen.err);
  CHECK(gen.code == 0);
}
