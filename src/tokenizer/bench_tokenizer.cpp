// `bench tokenizer`: encoding throughput over a tree of files, one thread and all threads.
#include <nlohmann/json.hpp>

#include <time.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "cli/registry.h"
#include "data/corpus.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace codex::cli {
namespace {

int run_bench(Invocation& inv) {
  if (!inv.has("tokenizer")) throw UsageError("bench tokenizer: --tokenizer T is required");
  Tokenizer tok(inv.get("tokenizer"));
  std::vector<std::string> inputs = inv.all("input");
  inputs.insert(inputs.end(), inv.positional.begin(), inv.positional.end());
  if (inputs.empty()) throw UsageError("bench tokenizer: --input PATH is required");
  std::vector<std::string> texts;
  SkipCounts skipped;
  int64_t bytes = 0;
  for_each_document(inputs, [&](Document& d) {
    bytes += static_cast<int64_t>(d.text.size());
    texts.push_back(std::move(d.text));
  }, skipped);
  if (texts.empty()) throw UsageError("bench tokenizer: no readable text files in the input");
  const int64_t repeats = std::max<int64_t>(1, inv.get_int("repeats", 3));
  int threads = static_cast<int>(inv.get_int("threads", 0));
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  double best_cpu = 1e300;  // one thread: CPU seconds of this thread (meaningful on a busy machine)
  auto best_seconds = [&](int nthreads, int64_t& tokens) {
    double best = 1e300;
    for (int64_t r = 0; r < repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      double c0 = cpu_now();
      auto enc = encode_many(tok, texts, nthreads);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (nthreads == 1) best_cpu = std::min(best_cpu, cpu_now() - c0);
      best = std::min(best, s);
      tokens = 0;
      for (auto& e : enc) tokens += static_cast<int64_t>(e.size());
    }
    return best;
  };
  int64_t tokens = 0;
  double s1 = best_seconds(1, tokens);
  double sn = best_seconds(threads, tokens);
  auto mbps = [&](double s) { return static_cast<double>(bytes) / 1e6 / s; };
  nlohmann::json j = {{"bench", "tokenizer"},
                      {"tokenizer", tok.path()},
                      {"kind", tok.kind() == Tokenizer::Kind::kBpe ? "bpe" : "sentencepiece"},
                      {"files", texts.size()},
                      {"bytes", bytes},
                      {"tokens", tokens},
                      {"tokens_per_byte", static_cast<double>(tokens) / static_cast<double>(bytes)},
                      {"mb_per_s_1thread", mbps(s1)},
                      {"mb_per_s_1thread_cpu", mbps(best_cpu)},
                      {"threads", threads},
                      {"mb_per_s_all_threads", mbps(sn)},
                      {"repeats", repeats}};
  std::cout << j.dump() << std::endl;
  return 0;
}

Registrar bench_cmd({"bench", "tokenizer",
                     "encoding speed over files (MB/s, one thread and all threads; best of --repeats): one JSON line",
                     {{"tokenizer", true, "tokenizer.model, tokenizer.json or a folder with one"},
                      {"input", true, "file or directory (recursive *.py); more may follow", "", true},
                      {"threads", true, "threads for the all-threads figure (default: all cores)"},
                      {"repeats", true, "timed passes per figure, the best counts (default 3)"}},
                     true, run_bench});

}  // namespace
}  // namespace codex::cli
