#include <catch2/catch.hpp>

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
