#include "train/tensorboard.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "helpers.h"

using namespace codex;

TEST_CASE("crc32c matches the published check values", "[tensorboard]") {
  // CRC-32C check value for "123456789" (RFC 3720 B.4 / the CRC catalogue).
  REQUIRE(crc32c("123456789", 9) == 0xE3069283u);
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA; 32 bytes of 0xFF -> 0x62A8AB43.
  std::string zeros(32, '\0'), ones(32, '\xFF');
  REQUIRE(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  REQUIRE(crc32c(ones.data(), 32) == 0x62A8AB43u);
  uint32_t c = 0xE3069283u;
  REQUIRE(masked_crc32c("123456789", 9) == ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

TEST_CASE("scalar Event encodes to hand-computed protobuf bytes", "[tensorboard]") {
  std::string ev = tb_event_scalar(1.5, 3, "loss", 0.25f);
  const unsigned char want[] = {
      0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F,  // wall_time (1, fixed64) = 1.5
      0x10, 0x03,                          // step (2, varint) = 3
      0x2A, 13,                            // summary (5, bytes), 13 bytes
      0x0A, 11,                            //   value (1, bytes), 11 bytes
      0x0A, 4, 'l', 'o', 's', 's',         //     tag (1, bytes) = "loss"
      0x15, 0, 0, 0x80, 0x3E,              //     simple_value (2, fixed32) = 0.25f
  };
  REQUIRE(ev == std::string(reinterpret_cast<const char*>(want), sizeof(want)));
  std::string fv = tb_event_file_version(0.0);
  REQUIRE(fv.substr(9) == std::string("\x1a\x0d") + "brain.Event:2");

  std::string rec = tfrecord(ev);
  REQUIRE(rec.size() == 8 + 4 + ev.size() + 4);
  REQUIRE(static_cast<unsigned char>(rec[0]) == ev.size());
  REQUIRE(rec.substr(12, ev.size()) == ev);
}

TEST_CASE("TensorBoardWriter output parses with an independent reader", "[tensorboard]") {
  if (!std::filesystem::exists("/usr/bin/python3")) {
    WARN("skipped: no /usr/bin/python3 to run the independent reader");
    return;
  }
  test::TempDir t;
  std::string path;
  {
    TensorBoardWriter w((t / "tb").string());
    path = w.path();
    REQUIRE(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
    w.add_scalar("train/loss", 1, 2.5);
    w.add_scalar("train/lr", 1, 3e-4);
    w.add_scalar("train/loss", 1000000000000LL, -0.125);
    w.flush();
  }
  auto r = test::run_shell("/usr/bin/python3 " + test::shell_quote(std::string(CODEX_TEST_DIR) + "/train/read_tfevents.py") +
                           " " + test::shell_quote(path));
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> evs;
  for (std::string l; std::getline(lines, l);) evs.push_back(nlohmann::json::parse(l));
  REQUIRE(evs.size() == 4);
  REQUIRE(evs[0]["file_version"] == "brain.Event:2");
  REQUIRE(evs[0]["wall_time"].get<double>() > 1.6e9);
  REQUIRE(evs[1]["step"] == 1);
  REQUIRE(evs[1]["summary"][0]["tag"] == "train/loss");
  REQUIRE(evs[1]["summary"][0]["simple_value"].get<double>() == 2.5);
  REQUIRE(evs[2]["summary"][0]["simple_value"].get<double>() == static_cast<double>(3e-4f));
  REQUIRE(evs[3]["step"] == 1000000000000LL);
  REQUIRE(evs[3]["summary"][0]["simple_value"].get<double>() == -0.125);

  // The reader really checks CRCs: flip one payload byte and it must refuse the file.
  std::string bytes = test::read_text(path);
  bytes[bytes.size() - 6] ^= 0x01;
  test::write_text(t / "bad", bytes);
  auto bad = test::run_shell("/usr/bin/python3 " + test::shell_quote(std::string(CODEX_TEST_DIR) + "/train/read_tfevents.py") +
                             " " + test::shell_quote((t / "bad").string()));
  REQUIRE(bad.code == 1);
  REQUIRE(bad.err.find("CRC") != std::string::npos);
}

TEST_CASE("a second writer in the same folder never overwrites the first file", "[tensorboard]") {
  test::TempDir t;
  TensorBoardWriter a(t.str());
  TensorBoardWriter b(t.str());
  REQUIRE(a.path() != b.path());
}
