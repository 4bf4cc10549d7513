// Small utilities: atomic writes, input expansion, hashes, durations.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

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

namespace {
int count_entries(const std::filesystem::path& dir) {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) n += e.path().filename() != "" ? 1 : 0;
  return n;
}
}  // namespace

TEST_CASE("StagedOutput: a folder appears whole on commit, and an abandoned one leaves the old output", "[util]") {
  TempDir t;
  const auto out = t / "out";
  {
    StagedOutput s(out, StagedOutput::Kind::kDir);
    REQUIRE(std::filesystem::is_directory(s.path()));
    REQUIRE(s.path().parent_path() == t.path);
    REQUIRE(s.path().filename().string().rfind(".out.tmp-", 0) == 0);
    write_file_atomic(s.path() / "a.txt", "old");
    REQUIRE(!std::filesystem::exists(out));  // nothing at the final path before commit
    s.commit();
  }
  REQUIRE(read_file(out / "a.txt") == "old");
  {
    StagedOutput s(out, StagedOutput::Kind::kDir);
    write_file_atomic(s.path() / "b.txt", "new, abandoned");
    // destroyed without commit: an error or exception on the way
  }
  REQUIRE(read_file(out / "a.txt") == "old");
  REQUIRE(!std::filesystem::exists(out / "b.txt"));
  REQUIRE(count_entries(t.path) == 1);  // no temporary left
  {
    StagedOutput s(out, StagedOutput::Kind::kDir);
    write_file_atomic(s.path() / "b.txt", "new");
    s.commit();  // replaces the old folder whole: a.txt is gone
  }
  REQUIRE(read_file(out / "b.txt") == "new");
  REQUIRE(!std::filesystem::exists(out / "a.txt"));
  REQUIRE(count_entries(t.path) == 1);
  // A killed process's leftover (pid 999999999 does not run) is removed by the next one; a live
  // process's (our parent's) is not.
  std::filesystem::create_directories(t / ".out.tmp-999999999" / "x");
  std::filesystem::create_directories(t / (".out.tmp-" + std::to_string(::getppid())));
  { StagedOutput s(out, StagedOutput::Kind::kDir); }
  REQUIRE(!std::filesystem::exists(t / ".out.tmp-999999999"));
  REQUIRE(std::filesystem::exists(t / (".out.tmp-" + std::to_string(::getppid()))));
  // A file output.
  {
    StagedOutput s(t / "f.json", StagedOutput::Kind::kFile);
    codex::test::write_text(s.path(), "{}");
    s.commit();
  }
  REQUIRE(read_file(t / "f.json") == "{}");
  // The wrong kind in the way is a usage error.
  REQUIRE_THROWS_AS(StagedOutput(t / "f.json", StagedOutput::Kind::kDir), UsageError);
}

TEST_CASE("check_overwrite: a file or non-empty folder needs force, and the message says how", "[util]") {
  TempDir t;
  REQUIRE_NOTHROW(check_overwrite(t / "missing", "x", false));
  std::filesystem::create_directories(t / "empty");
  REQUIRE_NOTHROW(check_overwrite(t / "empty", "x", false));
  codex::test::write_text(t / "full" / "f", "1");
  REQUIRE_THROWS_WITH(check_overwrite(t / "full", "data folder", false),
                      "data folder '" + (t / "full").string() + "' already exists; pass --force (or overwrite=true) to replace it");
  REQUIRE_NOTHROW(check_overwrite(t / "full", "data folder", true));
  REQUIRE_THROWS_AS(check_overwrite(t / "full" / "f", "file", false), UsageError);
}

TEST_CASE("write_file_atomic: a failed write names the OS reason and leaves no partial file", "[util]") {
  TempDir t;
  write_file_atomic(t / "f.bin", "previous");
  // An injected write failure: a 16 KiB file size limit (SIGXFSZ ignored, so write() fails with
  // EFBIG), as a full disk would fail it with ENOSPC. Each test case runs in its own process.
  struct rlimit old {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 16 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  std::string err;
  try {
    write_file_atomic(t / "f.bin", std::string(100000, 'x'));
  } catch (const std::runtime_error& e) {
    err = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  REQUIRE(err == "cannot write '" + (t / "f.bin").string() + "': " + std::strerror(EFBIG));
  REQUIRE(read_file(t / "f.bin") == "previous");
  REQUIRE(count_entries(t.path) == 1);
}

TEST_CASE("check_can_write and human_bytes", "[util]") {
  TempDir t;
  REQUIRE_NOTHROW(check_can_write(t / "new" / "r.jsonl", "results"));  // creates the folder
  REQUIRE(std::filesystem::is_directory(t / "new"));
  REQUIRE(count_entries(t / "new") == 0);  // the probe is gone
  codex::test::write_text(t / "file", "x");
  REQUIRE_THROWS_WITH(check_can_write(t / "file" / "r.jsonl", "results"), Catch::Contains("results '"));
  REQUIRE_THROWS_AS(check_can_write(t.path, "results"), UsageError);
  REQUIRE(human_bytes(999) == "999 B");
  REQUIRE(human_bytes(1500) == "1.5 KB");
  REQUIRE(human_bytes(2500000000LL) == "2.5 GB");
  REQUIRE(free_bytes(t / "not" / "yet") > 0);  // its nearest existing ancestor
  codex::test::write_text(t / "d" / "a", "12345");
  codex::test::write_text(t / "d" / "e" / "b", "123");
  REQUIRE(tree_bytes(t / "d") == 8);
}
