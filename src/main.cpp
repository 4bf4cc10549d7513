// codex-train: the whole Codex pipeline as one program. Commands live beside their code and
// register themselves (src/cli/registry.h); this file only maps errors to exit codes.
#include <c10/util/Exception.h>
#include <yaml-cpp/exceptions.h>

#include <malloc.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "cli/registry.h"
#include "util/error.h"
#include "util/log.h"
#include "util/memory.h"

int main(int argc, char** argv) {
  // Training frees and re-allocates the same large activation buffers every step. With glibc's
  // defaults each buffer over the mmap threshold is a fresh mmap (zeroed pages, page faults on
  // every step) and freed heap is trimmed back to the OS. Serving every block from the heap and
  // keeping it made CPU training 2-3x faster here (docs/pretrain.md), for a higher but flat peak
  // RSS. CODEX_MALLOC_DEFAULTS=1 keeps glibc's defaults (for comparisons).
  if (!std::getenv("CODEX_MALLOC_DEFAULTS")) {
    mallopt(M_MMAP_MAX, 0);              // no mmap-backed blocks: everything from the heap
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // return freed heap to the OS only above 1 GiB of slack
  }
  codex::init_logging(std::getenv("CODEX_VERBOSE") != nullptr);
  try {
    return codex::cli::dispatch(argc, argv);
  } catch (const codex::UsageError& e) {
    std::fprintf(stderr, "codex-train: error: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    // c10's allocators say "DefaultCPUAllocator: can't allocate memory" or "CUDA out of memory".
    const std::string what = e.what_without_backtrace();
    if (what.find("alloc") != std::string::npos || what.find("out of memory") != std::string::npos)
      std::fprintf(stderr, "codex-train: failed: %s\n", codex::out_of_memory_message(what).c_str());
    else
      std::fprintf(stderr, "codex-train: failed: %s\n", what.c_str());
    return 1;
  } catch (const std::bad_alloc& e) {
    std::fprintf(stderr, "codex-train: failed: %s\n", codex::out_of_memory_message(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "codex-train: failed: %s\n", e.what());
    return 1;
  }
}
