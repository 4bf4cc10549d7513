// Direct tests of the run context's helpers (src/train/run.cpp) and the pieces every fine-tuning
// trainer shares with it: config_changes, steps_for_epochs, load_start_point, split_off_val,
// epoch_order, and prefs_from_execution (src/rl/prefs.cpp), each against hand-derived expectations.
#include "train/run.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

#include "eval/humaneval.h"
#include "eval/sandbox.h"
#include "helpers.h"
#include "rl/prefs.h"
#include "tokenizer/tokenizer.h"
#include "train/finetune_fixture.h"
#include "train/sequences.h"
#include "util/error.h"

using namespace codex;
using codex::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

template <typename F>
std::string usage_error_of(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no UsageError)";
}

// FNV-1a 64 written out here (offset basis 14695981039346656037, prime 1099511628211), as 16
// lower-case hex digits: the checksum format of a run's fingerprint.
std::string fnv_hex(const std::string& bytes) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  std::ostringstream o;
  o << std::hex;
  o.width(16);
  o.fill('0');
  o << h;
  return o.str();
}

}  // namespace

TEST_CASE("run: config_changes lists changed keys as 'key: old -> new', resumable ones apart", "[train]") {
  Config saved = load_config("", {"train.max_steps=10", "model.n_layer=2", "run.dir=/tmp/a"});
  Config now = load_config("", {"train.max_steps=50", "model.n_layer=3", "run.dir=/tmp/b", "run.threads=2",
                                "resume=true"});
  std::vector<std::string> allowed;
  auto changes = config_changes(saved, now, &allowed);
  // the model shape changed: refused; the step count and threads may change (said); run.dir and
  // resume change silently
  CHECK(changes == std::vector<std::string>{"model.n_layer: 2 -> 3"});
  std::sort(allowed.begin(), allowed.end());
  REQUIRE(allowed.size() == 2);
  CHECK(allowed[0].rfind("run.threads: ", 0) == 0);
  CHECK(allowed[0].size() > std::string("run.threads: ").size());
  CHECK(allowed[0].substr(allowed[0].size() - 5) == " -> 2");
  CHECK(allowed[1] == "train.max_steps: 10 -> 50");
  // the same config: nothing; a null `allowed` is fine
  CHECK(config_changes(saved, saved, &allowed).size() == 0);
  CHECK(config_changes(saved, now, nullptr).size() == 1);
}

TEST_CASE("run: steps_for_epochs is epochs x ceil(n / (batch x accum)) unless train.max_steps is given", "[train]") {
  Config c = load_config("", {"train.batch_size=4", "train.grad_accum=2"});
  CHECK(steps_for_epochs(c, 16, 3) == 6);   // 16 / 8 = 2 per epoch
  CHECK(steps_for_epochs(c, 17, 3) == 9);   // ceil(17 / 8) = 3 per epoch
  CHECK(steps_for_epochs(c, 1, 2) == 2);    // a partial batch is a step
  Config d = load_config("", {"train.batch_size=4", "train.grad_accum=2", "train.max_steps=5"});
  CHECK(steps_for_epochs(d, 17, 3) == 5);   // explicit max_steps wins
}

TEST_CASE("run: load_start_point loads a checkpoint, names the key, refuses a checkpoint without tokenizer",
          "[train][checkpoint]") {
  TempDir t;
  const std::string m0 = codex::test::make_lm_checkpoint(t.path);
  StartPoint s = load_start_point("sft.init", m0, "the checkpoint to fine-tune");
  CHECK(fs::equivalent(s.dir, m0));
  CHECK(!s.tokenizer_path.empty());
  CHECK(fs::exists(s.tokenizer_path));
  CHECK(s.loaded.gpt.n_embd == 32);
  CHECK(s.weights_checksum() == fnv_hex(codex::test::read_text(fs::path(m0) / "model.pt")));
  // unset: the key and what it expects
  const std::string unset = usage_error_of([] { load_start_point("reward.init", "", "the reward trunk's start"); });
  CHECK(unset.find("reward.init") != std::string::npos);
  CHECK(unset.find("the reward trunk's start") != std::string::npos);
  // missing
  CHECK(usage_error_of([&] { load_start_point("sft.init", (t / "nope").string(), "x"); }).find("does not exist") !=
        std::string::npos);
  // a checkpoint without a tokenizer
  LoadedModel lm = load_model(m0);
  save_model_checkpoint((t / "bare").string(), lm.model, lm.config, "");
  const std::string bare = usage_error_of([&] { load_start_point("ppo.init", (t / "bare").string(), "x"); });
  CHECK(bare.find("ppo.init") != std::string::npos);
  CHECK(bare.find("no tokenizer") != std::string::npos);
}

TEST_CASE("run: split_off_val holds out round(fraction x n) items, keeps the rest in order", "[train]") {
  std::vector<int> items(20);
  std::iota(items.begin(), items.end(), 0);
  auto kept = items;
  auto val = split_off_val(kept, 0.25, 7);
  CHECK(val.size() == 5);
  CHECK(kept.size() == 15);
  CHECK(std::is_sorted(kept.begin(), kept.end()));  // the rest in their order
  CHECK(std::is_sorted(val.begin(), val.end()));
  std::set<int> all(kept.begin(), kept.end());
  all.insert(val.begin(), val.end());
  CHECK(all.size() == 20);  // a partition
  auto again = items;
  CHECK(split_off_val(again, 0.25, 7) == val);  // deterministic
  auto other = items;
  CHECK(split_off_val(other, 0.25, 8) != val);  // the seed chooses
  auto few = std::vector<int>(9, 1);
  CHECK(split_off_val(few, 0.5, 7).empty());  // fewer than 10: nothing held out
  CHECK(few.size() == 9);
  auto none = items;
  CHECK(split_off_val(none, 0.0, 7).empty());
  auto tiny = std::vector<int>(10, 1);
  CHECK(split_off_val(tiny, 0.01, 7).size() == 1);  // at least one
}

TEST_CASE("run: epoch_order is a seeded permutation per (seed, epoch, salt)", "[train]") {
  auto a = epoch_order(50, 3, 0);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> ids(50);
  std::iota(ids.begin(), ids.end(), 0);
  CHECK(sorted == ids);                      // each example once
  CHECK(a != ids);                           // shuffled
  CHECK(epoch_order(50, 3, 0) == a);         // deterministic
  CHECK(epoch_order(50, 3, 1) != a);         // each epoch its own order
  CHECK(epoch_order(50, 4, 0) != a);         // the seed
  CHECK(epoch_order(50, 3, 0, 99) != a);     // the salt (PPO's prompts vs SFT's examples)
  CHECK(epoch_order(1, 3, 5) == std::vector<int64_t>{0});
  // every position is reachable: over 200 epochs example 0 visits many positions
  std::set<int64_t> where;
  for (int64_t e = 0; e < 200; ++e) {
    auto o = epoch_order(10, 3, e);
    where.insert(std::find(o.begin(), o.end(), 0) - o.begin());
  }
  CHECK(where.size() == 10);
}

TEST_CASE("run: prefs_from_execution grades, counts and pairs better over worse completions", "[train][eval][reward]") {
  TempDir t;
  LoadedModel lm = load_model(codex::test::make_lm_checkpoint(t.path));
  Tokenizer tok(lm.tokenizer_path);
  // Completions run at module level after a finished function: a blank or a number passes, a
  // name raises, a stray operator does not parse; q never passes its test.
  eval::Problem p{"t/p", "def f(x):\n    return 1\n", "", "def check(candidate):\n    assert candidate(0) == 1\n", "f"};
  eval::Problem q{"t/q", "def g(x):\n    return 2\n", "", "def check(candidate):\n    assert candidate(0) == 3\n", "g"};
  eval::Problem untested{"t/u", "def h(x):\n", "", "", "h"};
  eval::SandboxOptions so;
  so.timeout_s = 5.0;
  so.workers = 2;
  eval::Sandbox sb(so);
  Config cfg = load_config("", {"generate.stop=[]"});
  const std::string out = (t / "prefs.jsonl").string();
  json c = prefs_from_execution(lm.model, tok, {p, untested, q}, sb, 8, 3, 1.0, 2, 11, cfg, out);
  INFO(c.dump());
  CHECK(c["problems"] == 2);  // the one without a test is not sampled
  CHECK(c["samples"] == 16);
  CHECK(c["passed"].get<int>() + c["wrong"].get<int>() + c["error"].get<int>() + c["syntax"].get<int>() == 16);
  // lines written = pairs counted, at most 3 per problem
  std::vector<json> lines;
  std::istringstream in(codex::test::read_text(out));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(json::parse(l));
  CHECK(static_cast<int>(lines.size()) == c["pairs"].get<int>());
  CHECK(lines.size() <= 6);
  REQUIRE(!lines.empty());
  const std::map<std::string, int> rank = {{"passed", 0}, {"wrong", 1}, {"error", 2}, {"syntax", 3}};
  std::set<std::string> with_pairs;
  for (auto& l : lines) {
    const eval::Problem& pr = l["task_id"] == "t/p" ? p : q;
    CHECK((l["task_id"] == "t/p" || l["task_id"] == "t/q"));
    CHECK(l["prompt"] == pr.prompt);
    CHECK(l["chosen"] != l["rejected"]);
    CHECK(rank.at(l["chosen_outcome"]) < rank.at(l["rejected_outcome"]));
    with_pairs.insert(l["task_id"].get<std::string>());
    // graded again here without the grading wrapper: the program as `eval` runs it
    auto raw = sb.run_programs({eval::check_program(pr, l["chosen"].get<std::string>()),
                                eval::check_program(pr, l["rejected"].get<std::string>())});
    CHECK(raw[0].passed == (l["chosen_outcome"] == "passed"));
    CHECK(!raw[1].passed);
  }
  CHECK(static_cast<int>(with_pairs.size()) == c["problems_with_pairs"].get<int>());
  // the same seed writes the same file
  const std::string first = codex::test::read_text(out);
  (void)prefs_from_execution(lm.model, tok, {p, untested, q}, sb, 8, 3, 1.0, 2, 11, cfg, out);
  CHECK(codex::test::read_text(out) == first);
  // nothing to grade: refused
  CHECK(usage_error_of([&] { prefs_from_execution(lm.model, tok, {untested}, sb, 2, 1, 1.0, 2, 11, cfg, out); })
            .find("no problem has a test") != std::string::npos);
}
