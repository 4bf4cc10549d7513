#include <catch2/catch.hpp>
#include <torch/version.h>

#include <set>
#include <sstream>

#include "cli/registry.h"
#include "config/config.h"
#include "helpers.h"

using codex::test::run_cli;

TEST_CASE("cli: config show, overrides and exit codes", "[cli]") {
  auto r = run_cli("config show run.seed=5 model.preset=tiny");
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("seed: 5") != std::string::npos);
  r = run_cli("config show optim.lrr=1");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("optim.lr") != std::string::npos);
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
  r = run_cli("config show --no-such-flag");
  REQUIRE(r.code == 2);
  r = run_cli("config show --config /nonexistent.yaml");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("/nonexistent.yaml") != std::string::npos);
  const std::string tiny = std::string(CODEX_SOURCE_DIR) + "/configs/pretrain/tiny.yaml";
  r = run_cli("config show --config " + tiny + " --config " + tiny);
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("--config given twice") != std::string::npos);
  r = run_cli("config --help");
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("show") != std::string::npos);
  r = run_cli("config show --help");
  REQUIRE(r.code == 0);
  REQUIRE(r.out.find("--config") != std::string::npos);
}

namespace {

// Keys listed under "config keys it reads" in a command's --help (the first word of each line).
std::set<std::string> help_keys(const std::string& help) {
  std::set<std::string> out;
  const auto at = help.find("config keys it reads");
  if (at == std::string::npos) return out;
  std::istringstream in(help.substr(at));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    out.insert(key);
  }
  return out;
}

std::string line_of(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == key) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("cli: every command's --help lists the config keys it reads, from the registry", "[cli]") {
  const auto all = codex::config_keys();
  const auto& docs = codex::config_key_docs();
  // Every registered key has a description, and no description is left for a removed key.
  for (auto& k : all) {
    INFO(k);
    REQUIRE(docs.count(k) == 1);
    REQUIRE(!docs.at(k).empty());
  }
  for (auto& [k, d] : docs) {
    INFO(k);
    REQUIRE(std::find(all.begin(), all.end(), k) != all.end());
  }
  for (auto& c : codex::cli::commands()) {
    const std::string name = c.sub.empty() ? c.name : c.name + " " + c.sub;
    auto r = run_cli(name + " --help");
    INFO(name << "\n" << r.out << r.err);
    REQUIRE(r.code == 0);
    // Expected: registry keys under the command's declared prefixes, plus its flags' keys.
    std::set<std::string> want;
    for (auto& k : all) {
      for (auto& p : c.keys)
        if (p.empty() || k == p || k.rfind(p.back() == '.' ? p : p + ".", 0) == 0) want.insert(k);
      for (auto& f : c.flags)
        if (f.config_key == k) want.insert(k);
      // minus the keys the command sets itself (the pipeline's run.dir, sft.data, ...)
      for (auto& x : c.excluded_keys)
        if (k == x || k.rfind(x + ".", 0) == 0) want.erase(k);
    }
    REQUIRE(help_keys(r.out) == want);
    // A command that replaces outputs says how to allow it.
    for (auto& f : c.flags)
      if (f.name == "force" && f.config_key == "overwrite") REQUIRE(want.count("overwrite"));
    // `help <command>` is the same text.
    REQUIRE(run_cli("help " + name).out == r.out);
  }
  // Hand-checked lines: type, default, range and description.
  auto pre = run_cli("pretrain --help").out;
  const auto lr = line_of(pre, "optim.lr");
  INFO(pre);
  REQUIRE(lr.find("number = 0.001  [0, 10]  -- peak learning rate") != std::string::npos);
  REQUIRE(line_of(pre, "train.keep_checkpoints").find("integer = 2  [1, 1000000]") != std::string::npos);
  REQUIRE(line_of(pre, "dist.backend").find("string = auto  auto | gloo | nccl") != std::string::npos);
  REQUIRE(line_of(pre, "resume").find("bool = false") != std::string::npos);
  REQUIRE(line_of(pre, "data.val_fraction").empty());  // pretrain does not read data.*
  auto prep = run_cli("data prepare --help").out;
  REQUIRE(line_of(prep, "data.val_fraction").find("number = 0.01  [0, 0.5]") != std::string::npos);
  REQUIRE(line_of(prep, "overwrite").find("bool = false") != std::string::npos);
  REQUIRE(line_of(prep, "--force").find("replace a complete output") != std::string::npos);
  auto gen = run_cli("generate --help").out;
  REQUIRE(line_of(gen, "generate.stop").find("list of strings = [\"\\nclass\"") != std::string::npos);
  REQUIRE(help_keys(run_cli("tokenizer encode --help").out) == std::set<std::string>{"run.dir"});
}

TEST_CASE("cli: config keys [prefix], --version, did-you-mean for commands", "[cli]") {
  auto r = run_cli("config keys");
  REQUIRE(r.code == 0);
  REQUIRE(static_cast<size_t>(std::count(r.out.begin(), r.out.end(), '\n')) == codex::config_keys().size());
  r = run_cli("config keys optim");
  REQUIRE(r.code == 0);
  std::istringstream in(r.out);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) names.push_back(line.substr(0, line.find(' ')));
  REQUIRE(names == std::vector<std::string>{"optim.lr", "optim.min_lr_ratio", "optim.weight_decay", "optim.warmup_steps",
                                            "optim.beta1", "optim.beta2", "optim.eps"});
  REQUIRE(line_of(r.out, "optim.warmup_steps").find("integer = 10") != std::string::npos);
  r = run_cli("config keys optm");
  REQUIRE(r.code == 2);
  REQUIRE(r.err == "codex-train: error: config keys: no key starts with 'optm' (did you mean 'optim'?)\n");

  r = run_cli("--version");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  REQUIRE(r.out.rfind("codex-train ", 0) == 0);
  REQUIRE(r.out.find("\nLibTorch " + std::string(TORCH_VERSION) + "\n") != std::string::npos);
  REQUIRE(r.out.find("\nCUDA: ") != std::string::npos);
  REQUIRE(r.out.find("\nNCCL: ") != std::string::npos);
  // The build names its source: the commit git describes (without a -dirty mark, which edits
  // after the build may add or remove).
  auto git = codex::test::run_shell("git -C " + codex::test::shell_quote(CODEX_SOURCE_DIR) + " rev-parse --short=7 HEAD");
  if (git.code == 0 && !git.out.empty()) {
    auto first = r.out.substr(0, r.out.find('\n'));
    INFO(first << " vs " << git.out);
    CHECK(first.find(git.out.substr(0, 7)) != std::string::npos);
  }

  r = run_cli("pretrian");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("unknown command 'pretrian' (did you mean 'pretrain'?") != std::string::npos);
  r = run_cli("tokenizer trian");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("did you mean 'tokenizer train'?") != std::string::npos);
  r = run_cli("frobnicate");
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("did you mean") == std::string::npos);
  REQUIRE(run_cli("help").code == 0);
}

TEST_CASE("cli: data practice, data problems, data filter, prefs and tokenizer extend never replace an output silently",
          "[cli]") {
  codex::test::TempDir t;
  using codex::test::shell_quote;
  // data practice: the set is written whole; a second run needs --force and then replaces it.
  const std::string out = shell_quote((t / "practice").string());
  auto r = run_cli("data practice --out " + out);
  REQUIRE(r.code == 0);
  const std::string train = codex::test::read_text(t / "practice" / "train.jsonl");
  r = run_cli("data practice --out " + out + " --seed 5");
  CHECK(r.code == 2);
  CHECK(r.err.find("already exists; pass --force") != std::string::npos);
  CHECK(codex::test::read_text(t / "practice" / "train.jsonl") == train);
  r = run_cli("data practice --out " + out + " --seed 5 --force");
  REQUIRE(r.code == 0);
  CHECK(codex::test::read_text(t / "practice" / "train.jsonl") != train);
  for (auto& e : std::filesystem::directory_iterator(t.path)) CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);

  // The others refuse before any work (no model, sandbox or corpus is even read).
  codex::test::write_text(t / "kept.jsonl", "x\n");
  codex::test::write_text(t / "run" / "problems.jsonl", "x\n");
  codex::test::write_text(t / "run" / "traced.jsonl", "x\n");
  const std::vector<std::string> cmds = {
      "data filter --problems /nonexistent.jsonl --samples /nonexistent.jsonl --out " + shell_quote((t / "kept.jsonl").string()),
      "prefs from-execution --checkpoint /nonexistent --problems /nonexistent.jsonl --out " +
          shell_quote((t / "kept.jsonl").string()),
      "data problems --input /usr/lib/python3.11/this.py run.dir=" + shell_quote((t / "run").string()),
      "data trace run.dir=" + shell_quote((t / "run").string()),
      "tokenizer extend --tokenizer /nonexistent --whitespace-runs 2..25 --out " + shell_quote((t / "practice").string())};
  for (auto& c : cmds) {
    r = run_cli(c);
    INFO(c << "\n" << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("already exists; pass --force (or overwrite=true)") != std::string::npos);
  }
  CHECK(codex::test::read_text(t / "kept.jsonl") == "x\n");
  CHECK(codex::test::read_text(t / "run" / "problems.jsonl") == "x\n");
}
