// Small utilities: atomic writes, input expansion, hashes, durations.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/log.h"

using namespace codex;
using codex::test::TempDir;

TEST_CASE("write_file_atomic replaces the file whole and leaves no temporary behind", "[util]") {
  TempDir t;
  write_file_atomic(t / "f.txt", "first");
  write_file_atomic(t / "f.txt", "second, longer");
  REQUIRE(read_file(t / "f.txt") == "second, longer");
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(t.path)) n += e.is_regular_file();
  REQUIRE(n == 1);
  REQUIRE_THROWS_AS(read_file(t / "missing"), UsageError);
}

TEST_CASE("expand_inputs: recursive, filtered by extension, sorted, a missing path is an error", "[util]") {
  TempDir t;
  std::filesystem::create_directories(t / "a" / "b");
  codex::test::write_text(t / "a" / "b" / "z.py", "");
  codex::test::write_text(t / "a" / "y.py", "");
  codex::test::write_text(t / "a" / "x.txt", "");
  auto files = expand_inputs({(t / "a").string()}, {".py"});
  REQUIRE(files.size() == 2);
  REQUIRE(files[0].filename() == "z.py");  // "a/b/z.py" sorts before "a/y.py"
  REQUIRE(files[1].filename() == "y.py");
  REQUIRE_THROWS_AS(expand_inputs({(t / "nope").string()}, {".py"}), UsageError);
}

TEST_CASE("fnv1a64 matches the published FNV-1a test vectors", "[util]") {
  REQUIRE(fnv1a64("", 0) == 0xcbf29ce484222325ULL);
  REQUIRE(fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
  REQUIRE(fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
  REQUIRE(hex64(0xabcULL) == "0000000000000abc");
}

TEST_CASE("human_duration", "[util]") {
  REQUIRE(human_duration(5.5) == "5.5s");
  REQUIRE(human_duration(75) == "1m15s");
  REQUIRE(human_duration(3725) == "1h02m");
  REQUIRE(human_duration(-1) == "?");
}
