#include "data/dataset.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "helpers.h"
#include "util/error.h"

using namespace codex;

namespace {
std::vector<int64_t> read_all(const TokenDataset& d) {
  std::vector<int64_t> v(static_cast<size_t>(d.size()));
  d.read(0, d.size(), v.data());
  return v;
}
}  // namespace

TEST_CASE("token shards: written tokens read back across shards", "[data]") {
  test::TempDir t;
  write_token_shard((t / "train_00000.bin").string(), {1, 2, 3}, 100);
  write_token_shard((t / "train_00001.bin").string(), {}, 100);  // empty shards are allowed
  write_token_shard((t / "train_00002.bin").string(), {4, 99, 0, 7}, 100);
  write_token_shard((t / "val_00000.bin").string(), {42}, 100);
  TokenDataset d(t.str(), "train");
  REQUIRE(d.size() == 7);
  REQUIRE(d.vocab_size() == 100);
  REQUIRE(d.num_shards() == 3);
  REQUIRE(read_all(d) == std::vector<int64_t>{1, 2, 3, 4, 99, 0, 7});
  // A window straddling the shard boundary.
  std::vector<int64_t> w(3);
  d.read(2, 3, w.data());
  REQUIRE(w == std::vector<int64_t>{3, 4, 99});
  REQUIRE_THROWS(d.read(5, 3, w.data()));
  TokenDataset v(t.str(), "val");
  REQUIRE(read_all(v) == std::vector<int64_t>{42});
  // The header is 64 bytes, then uint16 tokens for a vocab that fits.
  REQUIRE(std::filesystem::file_size(t / "train_00000.bin") == 64 + 3 * 2);
}

TEST_CASE("token shards: large vocab uses int32", "[data]") {
  test::TempDir t;
  write_token_shard((t / "train_00000.bin").string(), {70000, 5, 65535}, 100000);
  REQUIRE(std::filesystem::file_size(t / "train_00000.bin") == 64 + 3 * 4);
  TokenDataset d(t.str(), "train");
  REQUIRE(read_all(d) == std::vector<int64_t>{70000, 5, 65535});
  REQUIRE_THROWS(write_token_shard((t / "x.bin").string(), {100000}, 100000));
  REQUIRE_THROWS(write_token_shard((t / "x.bin").string(), {-1}, 100000));
}

TEST_CASE("token shards: corrupt, truncated or missing shards are errors naming the file", "[data]") {
  test::TempDir t;
  std::string p = (t / "train_00000.bin").string();
  write_token_shard(p, {1, 2, 3, 4}, 50);
  std::string good = test::read_text(p);

  auto expect_error = [&](const std::string& bytes, const std::string& why) {
    test::write_text(p, bytes);
    try {
      TokenDataset d(t.str(), "train");
      FAIL("no error for " << why);
    } catch (const UsageError& e) {
      std::string msg = e.what();
      INFO(msg);
      REQUIRE(msg.find(p) != std::string::npos);
      REQUIRE(msg.find(why) != std::string::npos);
    }
  };
  expect_error(good.substr(0, good.size() - 1), "truncated");
  expect_error(good.substr(0, 10), "truncated");
  expect_error(good + "xx", "corrupt");
  std::string flipped = good;
  flipped[64] ^= 1;
  expect_error(flipped, "checksum");
  std::string magic = good;
  magic[0] = 'X';
  expect_error(magic, "magic");
  std::string version = good;
  version[8] = 9;
  expect_error(version, "version");

  test::write_text(p, good);
  REQUIRE_NOTHROW(TokenDataset(t.str(), "train"));
  REQUIRE_THROWS_AS(TokenDataset(t.str(), "val"), UsageError);                    // no val shards
  REQUIRE_THROWS_AS(TokenDataset((t / "nope").string(), "train"), UsageError);   // no folder
  write_token_shard((t / "train_00001.bin").string(), {1}, 51);
  REQUIRE_THROWS_AS(TokenDataset(t.str(), "train"), UsageError);  // mixed vocab sizes
}
