// codex-train: the whole Codex pipeline as one program. Commands live beside their code and
// register themselves (src/cli/registry.h); this file only maps errors to exit codes.
#include <c10/util/Exception.h>
#include <yaml-cpp/exceptions.h>

#include <cstdio>
#include <exception>

#include "cli/registry.h"
#include "util/error.h"
#include "util/log.h"

int main(int argc, char** argv) {
  codex::init_logging(std::getenv("CODEX_VERBOSE") != nullptr);
  try {
    return codex::cli::dispatch(argc, argv);
  } catch (const codex::UsageError& e) {
    std::fprintf(stderr, "codex-train: error: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "codex-train: failed: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "codex-train: failed: %s\n", e.what());
    return 1;
  }
}
