#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "util/log.h"

int main(int argc, char** argv) {
  codex::init_logging(false);
  spdlog::set_level(spdlog::level::warn);
  return Catch::Session().run(argc, argv);
}
