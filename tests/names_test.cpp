// ctest runs each TEST_CASE by name; catch_discover_tests splits a name at ';', so a name holding
// one becomes fragments that match no test and "pass" while nothing runs. Keep every name clean.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <string>

#include "helpers.h"

TEST_CASE("test names carry no ';' (ctest would run nothing for them)", "[meta]") {
  const std::regex name(R"re(TEST_CASE\(\s*"([^"]*)")re");
  int files = 0, names = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(CODEX_TEST_DIR)) {
    if (e.path().extension() != ".cpp") continue;
    ++files;
    const std::string text = codex::test::read_text(e.path());
    for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
      ++names;
      INFO(e.path().string() << ": " << (*it)[1].str());
      CHECK((*it)[1].str().find(';') == std::string::npos);
    }
  }
  CHECK(files > 20);
  CHECK(names > 150);
}
