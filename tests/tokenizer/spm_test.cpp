#include "tokenizer/spm.h"

#include <catch2/catch.hpp>

#include "helpers.h"
#include "util/error.h"

using namespace codex;

TEST_CASE("spm shim: trains and encodes next to LibTorch", "[tokenizer]") {
  test::TempDir t;
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "def foo" + std::to_string(i % 37) + "(x): return x + " + std::to_string(i) + "\n";
  test::write_text(t / "c.txt", text);
  spm_train("--input=" + (t / "c.txt").string() + " --model_prefix=" + (t / "m").string() +
            " --vocab_size=300 --model_type=bpe --minloglevel=2");
  SpmModel m((t / "m.model").string());
  REQUIRE(m.vocab_size() == 300);
  std::vector<int32_t> ids;
  m.encode("def foo3(x):", ids);
  REQUIRE(!ids.empty());
  REQUIRE(torch::ones({2}).sum().item<float>() == 2.0f);  // LibTorch still works in the same process
  REQUIRE_THROWS_AS(SpmModel((t / "c.txt").string()), UsageError);
}
