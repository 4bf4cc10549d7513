#include "interop/safetensors.h"

#include <catch2/catch.hpp>
#include <cstring>

#include "helpers.h"
#include "util/error.h"

using namespace codex;

namespace {

// A file assembled by hand from the format description (not by our writer).
std::string hand_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string f32_bytes(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

}  // namespace

TEST_CASE("safetensors reads a hand-built file", "[interop]") {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
      R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"s":{"dtype":"I64","shape":[],"data_offsets":[28,36]}})";
  int64_t seven = -7;
  // F16 1.0 = 0x3C00, -2.0 = 0xC000 (little-endian)
  std::string data = f32_bytes({1, 2, 3, 4, 5, 6}) + std::string("\x00\x3C\x00\xC0", 4) +
                     std::string(reinterpret_cast<const char*>(&seven), 8);
  auto f = safetensors::parse(hand_file(header, data), "mem");
  REQUIRE(f.metadata.at("format") == "pt");
  REQUIRE(f.tensors.size() == 3);
  REQUIRE(f.tensors[0].first == "a");  // byte-buffer order
  auto a = *f.find("a");
  REQUIRE(a.sizes() == torch::IntArrayRef({2, 3}));
  REQUIRE(a[1][2].item<float>() == 6.0f);
  auto b = *f.find("b");
  REQUIRE(b.scalar_type() == torch::kFloat16);
  REQUIRE(b.to(torch::kFloat32)[0].item<float>() == 1.0f);
  REQUIRE(b.to(torch::kFloat32)[1].item<float>() == -2.0f);
  auto s = *f.find("s");
  REQUIRE(s.dim() == 0);
  REQUIRE(s.item<int64_t>() == -7);
}

TEST_CASE("safetensors write then read round-trips every dtype bit-exactly", "[interop]") {
  test::TempDir t;
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> ts = {
      {"w", torch::randn({3, 5})},
      {"h", torch::randn({4}).to(torch::kFloat16)},
      {"bf", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"d", torch::randn({3}, torch::kFloat64)},
      {"i", torch::arange(6, torch::kInt64).reshape({2, 3})},
      {"u", torch::ones({1, 1, 2, 2}, torch::kUInt8)},
      {"t", torch::randn({4, 3}).t()},  // non-contiguous input
      {"e", torch::zeros({0, 3})},
  };
  auto path = (t / "x.safetensors").string();
  safetensors::save(path, ts, {{"format", "pt"}});
  auto bytes = test::read_text(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  REQUIRE((8 + n) % 8 == 0);  // buffer aligned, as the reference writer does
  auto f = safetensors::load(path);
  REQUIRE(f.tensors.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO(ts[i].first);
    REQUIRE(f.tensors[i].first == ts[i].first);
    REQUIRE(f.tensors[i].second.scalar_type() == ts[i].second.scalar_type());
    REQUIRE(torch::equal(f.tensors[i].second, ts[i].second));
  }
}

TEST_CASE("safetensors rejects corrupt files with a UsageError naming the file", "[interop]") {
  test::TempDir t;
  auto path = (t / "bad.safetensors").string();
  std::string ok_data = f32_bytes({1, 2});
  auto check = [&](const std::string& bytes, const std::string& why) {
    test::write_text(path, bytes);
    INFO(why);
    try {
      safetensors::load(path);
      FAIL("accepted: " << why);
    } catch (const UsageError& e) {
      std::string msg = e.what();
      REQUIRE(msg.find(path) != std::string::npos);
      REQUIRE(msg.find(why) != std::string::npos);
    }
  };
  auto hdr = [](const std::string& dtype, const std::string& shape, const std::string& off) {
    return R"({"a":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + off + "}}";
  };
  check("abc", "shorter than");
  std::string huge(8, '\xFF');
  check(huge + "{}", "too large");
  check(std::string("\x40\0\0\0\0\0\0\0", 8) + "{}", "exceeds the file size");
  check(hand_file("{not json", ""), "not JSON");
  check(hand_file("[1,2]", ""), "not a JSON object");
  check(hand_file(hdr("F99", "[2]", "[0,8]"), ok_data), "unsupported dtype");
  check(hand_file(hdr("F32", "[3]", "[0,8]"), ok_data), "shape needs 12 bytes");
  check(hand_file(hdr("F32", "[-2]", "[0,8]"), ok_data), "negative");
  check(hand_file(hdr("F32", "[2]", "[0,16]"), ok_data), "outside");
  check(hand_file(hdr("F32", "[2]", "[8,0]"), ok_data), "outside");
  check(hand_file(hdr("F32", "[2]", "[0]"), ok_data), "data_offsets must be");
  check(hand_file(hdr("F32", "[1]", "[4,8]"), ok_data), "unused bytes before");
  check(hand_file(hdr("F32", "[1]", "[0,4]"), ok_data), "unused bytes after");
  check(hand_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                  ok_data),
        "overlaps");
  check(hand_file(R"({"a":{"dtype":"F32","shape":[2]}})", ok_data), "expected an object");
  check(hand_file(R"({"__metadata__":{"k":1}})", ""), "__metadata__.k");
  REQUIRE_THROWS_AS(safetensors::load((t / "missing").string()), UsageError);
}
