// data problems / data trace / data filter / data practice on fixture packages
// (tests/data/fixtures/), against hand-written expectations.
#include "eval/problems.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "data/jsonl.h"
#include "eval/filter.h"
#include "helpers.h"
#include "util/error.h"
#include "util/fs.h"

using namespace codex;
using test::run_cli;
using test::shell_quote;

namespace {

const std::string kFixtures = std::string(CODEX_TEST_DIR) + "/data/fixtures/";
const std::string kHumanEval = std::string(CODEX_SOURCE_DIR) + "/data/humaneval/HumanEval.jsonl.gz";

std::map<std::string, Problem> by_entry(const std::vector<Problem>& ps) {
  std::map<std::string, Problem> m;
  for (auto& p : ps) m[p.entry_point] = p;
  return m;
}

eval::Sandbox test_sandbox() {
  eval::SandboxOptions o;
  o.workers = 2;
  o.timeout_s = 10;
  return eval::Sandbox(o);
}

}  // namespace

TEST_CASE("word n-grams: tokens, overlaps and the planted-copy case", "[data]") {
  CHECK(word_tokens("def f(x_1):\n  return x_1+2  # ok") ==
        std::vector<std::string>{"def", "f", "x_1", "return", "x_1", "2", "ok"});
  NgramIndex idx(3);
  idx.add("alpha beta gamma delta");
  CHECK(idx.size() == 2);
  CHECK(idx.overlaps("x = beta(gamma, delta)"));   // punctuation is not a token
  CHECK_FALSE(idx.overlaps("alpha beta delta gamma"));
  CHECK_FALSE(idx.overlaps("beta gamma"));            // shorter than n
}

TEST_CASE("data problems: doctests become exactly the expected tests, and drops counted per reason", "[data]") {
  test::TempDir t;
  // The fixture package plus a planted HumanEval problem (HumanEval/0, verbatim).
  auto pkg = t / "pkg";
  fs::copy(kFixtures + "problems_pkg", pkg, fs::copy_options::recursive);
  auto he = read_problems(kHumanEval);
  test::write_text(pkg / "sub" / "planted.py", "# planted\n" + he[0].prompt + he[0].canonical_solution);
  auto r = run_cli("data problems --input " + shell_quote(pkg.string()) + " --eval-set " + shell_quote(kHumanEval) +
                   " run.dir=" + shell_quote((t / "run").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto ps = read_problems((t / "run" / "problems.jsonl").string());
  auto m = by_entry(ps);
  std::set<std::string> names;
  for (auto& p : ps) names.insert(p.entry_point);
  CHECK(names == std::set<std::string>{"add", "hypot", "total", "wrong", "checked", "shout", "clamp"});
  CHECK(ps.size() == 7);  // shout once (sub/copy.py is an exact duplicate)

  CHECK(m["add"].task_id == "mathutil.py:add");
  CHECK(m["add"].source == (pkg / "mathutil.py").string() + ":10");
  CHECK(m["add"].origin == "doctest");
  CHECK(m["add"].prompt.rfind("def add(a, b):\n    \"\"\"Return a + b.\n", 0) == 0);
  CHECK(m["add"].canonical_solution == "    return a + b\n");
  CHECK(m["add"].test ==
        "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate('a', 'b') == 'ab'\n");
  // Imports the function needs come first; the docstring is kept as written.
  CHECK(m["hypot"].prompt.rfind("import math\n\n\ndef hypot(x, y):\n", 0) == 0);
  CHECK(m["hypot"].test ==
        "def check(candidate):\n    assert candidate(3, 4) == 5.0\n    assert round(candidate(1, 1), 3) == 1.414\n");
  CHECK(m["total"].prompt.rfind("from typing import List\n\n\ndef total(xs: List[int]) -> int:\n", 0) == 0);
  CHECK(m["total"].test == "def check(candidate):\n    data = [1, 2, 3]\n    assert candidate(data) == 6\n");
  CHECK(m["wrong"].test == "def check(candidate):\n    assert candidate(2) == 4\n");  // the wrong example dropped
  CHECK(m["checked"].test ==
        "def check(candidate):\n    try:\n        candidate(-1)\n    except Exception as e:\n"
        "        assert type(e).__name__ == 'ValueError'\n    else:\n        assert False, 'expected ValueError'\n");
  CHECK(m["shout"].origin == "docstring");
  CHECK(m["shout"].test.empty());
  CHECK(m["clamp"].task_id == "mathutil.py:Tools.clamp");
  CHECK(m["clamp"].prompt.rfind("def clamp(x, lo, hi):\n    \"\"\"Clamp x into [lo, hi].\n", 0) == 0);
  CHECK(m["clamp"].canonical_solution == "    return max(lo, min(x, hi))\n");
  CHECK(m["clamp"].test == "def check(candidate):\n    assert candidate(5, 0, 3) == 3\n");

  auto stats = nlohmann::json::parse(test::read_text(t / "run" / "problems_stats.json"));
  CHECK(stats["kept"] == 7);
  CHECK(stats["origin"]["doctest"] == 6);
  CHECK(stats["origin"]["docstring"] == 1);
  CHECK(stats["files"]["in"] == 4);
  CHECK(stats["files"]["syntax_error"] == 1);
  auto& d = stats["dropped"];
  CHECK(d["uses_module_names"] == 1);
  CHECK(d["relative_import"] == 1);
  CHECK(d["no_docstring"] == 1);
  CHECK(d["stub"] == 1);
  CHECK(d["method_uses_self"] == 1);
  CHECK(d["duplicate"] == 1);
  CHECK(d["contaminated"] == 1);
  CHECK(stats["tests"]["steps_failed"] == 1);
  CHECK(stats["tests"]["asserts_kept"] == 8);

  // The printed line is the same summary; every kept test passes as eval runs it.
  auto line = nlohmann::json::parse(r.out);
  CHECK(line["kept"] == 7);
  // Without the eval set, the planted copy is kept (it is the decontamination that drops it).
  r = run_cli("data problems --input " + shell_quote(pkg.string()) + " --eval-set " +
              shell_quote(std::string(CODEX_SOURCE_DIR) + "/data/humaneval/example_problem.jsonl") +
              " run.dir=" + shell_quote((t / "run2").string()));
  REQUIRE(r.code == 0);
  CHECK(by_entry(read_problems((t / "run2" / "problems.jsonl").string())).count("has_close_elements") == 1);
}

TEST_CASE("data problems / trace: bad inputs are one-line errors", "[data]") {
  test::TempDir t;
  auto r = run_cli("data problems run.dir=" + shell_quote((t / "r").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("no corpus given") != std::string::npos);
  r = run_cli("data problems --input /nonexistent/x.py --eval-set " + shell_quote(kHumanEval) + " run.dir=" +
              shell_quote((t / "r").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent/x.py") != std::string::npos);
  r = run_cli("data problems --input " + shell_quote(kFixtures + "problems_pkg") +
              " --eval-set /nonexistent.jsonl run.dir=" + shell_quote((t / "r").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("problems.eval_sets: '/nonexistent.jsonl' not found") != std::string::npos);
  r = run_cli("data trace --package /nonexistent --command true run.dir=" + shell_quote((t / "r").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("is not a folder") != std::string::npos);
  r = run_cli("data trace --package " + shell_quote(kFixtures + "trace_pkg") + " --command true --eval-set " +
              shell_quote(kHumanEval) + " run.dir=" + shell_quote((t / "r").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("made no recordable calls") != std::string::npos);
  size_t errors = 0;
  for (size_t p = 0; (p = r.err.find("codex-train: error:", p)) != std::string::npos; ++p) ++errors;
  CHECK(errors == 1);
}

TEST_CASE("data trace: recorded calls become tests, and nondeterministic, mutating and raising calls are dropped", "[data]") {
  test::TempDir t;
  auto r = run_cli("data trace --package " + shell_quote(kFixtures + "trace_pkg") +
                   " --command 'python3 -m unittest -q test_calc' --eval-set " + shell_quote(kHumanEval) +
                   " run.dir=" + shell_quote((t / "run").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto ps = read_problems((t / "run" / "traced.jsonl").string());
  auto m = by_entry(ps);
  REQUIRE(ps.size() == 3);
  CHECK(m["area"].task_id == "calc.py:area");
  CHECK(m["area"].origin == "trace");
  CHECK(m["area"].test == "def check(candidate):\n    assert candidate(2, 3) == 6\n    assert candidate(4, 5) == 20\n");
  CHECK(m["positive"].test == "def check(candidate):\n    assert candidate(2) == 2\n");  // positive(-1) raised
  CHECK(m["label"].test == "def check(candidate):\n    assert candidate(3, suffix='?') == '3?'\n");
  CHECK(m.count("jitter") == 0);
  CHECK(m.count("append_one") == 0);
  auto stats = nlohmann::json::parse(test::read_text(t / "run" / "traced_stats.json"));
  CHECK(stats["calls"]["dropped"]["different_results"] == 1);  // jitter(1) twice
  CHECK(stats["calls"]["dropped"]["mutated_arguments"] == 1);  // append_one([5])
  CHECK(stats["tests"]["steps_failed"] == 1);                  // positive(-1) raises on replay
  CHECK(stats["kept"] == 3);
  CHECK(stats["command_status"] == 0);
}

TEST_CASE("data filter: keeps and drops as designed with scripted samples", "[data]") {
  auto sandbox = test_sandbox();
  auto mk = [](const std::string& id, const std::string& sol, const std::string& test) {
    Problem p;
    p.task_id = id;
    p.prompt = "def f(x):\n";
    p.canonical_solution = sol;
    p.test = test;
    p.entry_point = "f";
    return p;
  };
  const std::string t1 = "def check(candidate):\n    assert candidate(2) == 3\n";
  std::vector<Problem> ps = {
      mk("solved", "    return x + 1\n", t1),
      mk("unsolved", "    return x + 1\n", t1),
      mk("broken", "    return x\n", t1),  // its canonical solution fails
      mk("untested", "    return x + 1\n", ""),
      mk("flaky", "    return x + 1\n", t1),
  };
  const std::string good = "    return x + 1\n", bad = "    return x * 2 + 1\n";
  const std::string coin = "    import os\n    return x + 1 if os.urandom(1)[0] < 128 else x\n";
  std::map<std::string, std::vector<std::string>> script = {
      {"solved", {bad, good, bad}}, {"unsolved", {bad, bad, bad}}, {"broken", {good}}, {"untested", {good}},
      {"flaky", std::vector<std::string>(20, coin)}};
  std::vector<std::string> asked;
  ProblemSampler sampler = [&](const std::vector<Problem>& in, int64_t n) {
    std::vector<std::vector<std::string>> out;
    for (auto& p : in) {
      asked.push_back(p.task_id);
      auto v = script[p.task_id];
      if (static_cast<int64_t>(v.size()) > n) v.resize(static_cast<size_t>(n));
      out.push_back(v);
    }
    return out;
  };
  FilterOptions opt;
  opt.n = 20;
  opt.repeat = 20;
  nlohmann::ordered_json stats;
  auto kept = filter_problems(ps, sampler, sandbox, opt, stats);
  REQUIRE(kept.size() == 1);
  CHECK(kept[0].task_id == "solved");
  // Problems without a test or with a failing canonical solution are never sampled.
  CHECK(asked == std::vector<std::string>{"solved", "unsolved", "flaky"});
  CHECK(stats["dropped"]["no_test"] == 1);
  CHECK(stats["dropped"]["canonical_fails"] == 1);
  CHECK(stats["dropped"]["unsolved"] == 1);
  CHECK(stats["dropped"]["flaky"] == 1);
  CHECK(stats["in"] == 5);
  CHECK(stats["kept"] == 1);
  CHECK(stats["samples"] == 3 + 3 + 20);

  // The command, with the samples from a file (task_id, completion).
  test::TempDir t;
  write_problems((t / "p.jsonl").string(), ps);
  std::string samples;
  for (auto& [id, comps] : script)
    for (auto& c : comps) samples += nlohmann::json{{"task_id", id}, {"completion", c}}.dump() + "\n";
  test::write_text(t / "s.jsonl", samples);
  auto r = run_cli("data filter --problems " + shell_quote((t / "p.jsonl").string()) + " --samples " +
                   shell_quote((t / "s.jsonl").string()) + " --n 20 --repeat 20 --out " +
                   shell_quote((t / "out" / "kept.jsonl").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto k2 = read_problems((t / "out" / "kept.jsonl").string());
  REQUIRE(k2.size() == 1);
  CHECK(k2[0].task_id == "solved");
  auto s2 = nlohmann::json::parse(test::read_text(t / "out" / "kept_stats.json"));
  CHECK(s2["dropped"]["flaky"] == 1);
  r = run_cli("data filter --problems " + shell_quote((t / "p.jsonl").string()) + " --out x.jsonl");
  CHECK(r.code == 2);
  CHECK(r.err.find("--checkpoint") != std::string::npos);
}
