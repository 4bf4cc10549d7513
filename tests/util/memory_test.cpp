// Memory estimates before allocating, and one-line refusals / allocator failures.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "model/gpt.h"
#include "train/train_fixture.h"
#include "util/error.h"
#include "util/memory.h"

using namespace codex;

TEST_CASE("memory: parameter count matches GPT-2 124M and the model itself", "[util]") {
  // GPT-2 small as Hugging Face counts it (tied head): 124,439,808.
  REQUIRE(gpt_param_count({12, 12, 768, 1024, 50257}) == 124439808);
  GPTConfig g;
  g.vocab_size = 97;
  g.n_layer = 3;
  g.n_head = 4;
  g.n_embd = 40;
  g.block_size = 24;
  GPT m(g);
  int64_t n = 0;
  for (auto& p : m->parameters()) n += p.numel();
  REQUIRE(gpt_param_count({3, 4, 40, 24, 97}) == n);
}

TEST_CASE("memory: the estimate by hand for a small shape", "[util]") {
  // L=2, H=2, C=8, T=4, V=10, B=3: params = 80 + 32 + 2 * (768 + 104) + 16 = 1872.
  auto m = estimate_training_memory({2, 2, 8, 4, 10}, 3, true);
  REQUIRE(m.params == 1872);
  REQUIRE(m.weights == 4 * 1872);
  REQUIRE(m.gradients == 4 * 1872);
  REQUIRE(m.optimizer == 8 * 1872);
  // per layer B*T*(16C + H*T) = 12 * (128 + 8) = 1632 floats; x2 layers + 2*B*T*C = 192.
  REQUIRE(m.activations == 4 * (2 * 1632 + 192));
  // Unfused loss keeps (B, T, V) logits and their gradient: + 2 * 12 * 10 floats.
  REQUIRE(estimate_training_memory({2, 2, 8, 4, 10}, 3, false).activations == m.activations + 4 * 240);
  REQUIRE(m.total() == 16 * 1872 + m.activations);
  REQUIRE(host_memory_limit() > 0);  // /proc/meminfo at least
  REQUIRE_NOTHROW(check_training_memory({2, 2, 8, 4, 10}, 3, true, 1, 1 << 20));
  REQUIRE_NOTHROW(check_training_memory({2, 2, 8, 4, 10}, 3, true, 1, -1));  // unknown limit
  REQUIRE_THROWS_WITH(check_training_memory({2, 2, 8, 4, 10}, 3, true, 4, 100000),
                      Catch::Contains("x4 processes") && Catch::Contains("more than the 100.0 KB"));
}

TEST_CASE("memory: pretrain refuses an impossible model in one line before allocating", "[util]") {
  test::TempDir t;
  test::write_prepared_folder(t / "data");
  // ~200 billion parameters: terabytes, on any test machine.
  auto r = test::run_cli(test::tiny_run_args((t / "data").string(), (t / "run").string()) +
                         " model.n_layer=64 model.n_embd=16384 model.n_head=16");
  INFO(r.err);
  REQUIRE(r.code == 2);
  REQUIRE(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  REQUIRE(r.err.find("codex-train: error: the model and batch need about ") == 0);
  REQUIRE(r.err.find("TB of memory") != std::string::npos);
  REQUIRE(r.err.find("this machine allows; reduce model.n_layer, model.n_embd") != std::string::npos);
}

TEST_CASE("memory: an allocator failure is one line naming the keys that drive memory", "[util]") {
  const std::string msg = out_of_memory_message(
      "DefaultCPUAllocator: can't allocate memory: you tried to allocate 100000000000 bytes. Error code 12 (Cannot "
      "allocate memory)\nException raised from allocate_impl at ...");
  REQUIRE(msg.find('\n') == std::string::npos);
  REQUIRE(msg.rfind("out of memory (DefaultCPUAllocator: can't allocate memory: you tried to allocate 100000000000 "
                    "bytes. Error code 12 (Cannot allocate memory)); memory grows with model.n_layer",
                    0) == 0);
  REQUIRE(msg.find("generate.batch_size") != std::string::npos);
}
