#pragma once
// Errors are values inside I/O code and exceptions at the edges; main() maps them to exit codes:
//   UsageError -> 2 (bad usage, bad config, bad or missing input: one line naming what and where)
//   anything else -> 1 (a failure while running)
#include <stdexcept>
#include <string>

namespace codex {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by a long-running job that stopped on purpose (e.g. non-finite loss): exit 1.
struct RunError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace codex
