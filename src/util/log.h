#pragma once
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace codex {

// Logging goes to stderr (stdout is reserved for command results such as JSON lines).
void init_logging(bool verbose = false);
bool stderr_is_tty();

// Progress for long work: a live line with rate and ETA on a terminal, plain log lines
// (at most one every `log_interval_s`) when stderr is not a terminal.
class Progress {
 public:
  Progress(std::string label, double total, std::string unit, double log_interval_s = 10.0);
  void update(double done);  // absolute amount done so far
  void finish();
  double elapsed_s() const;

 private:
  void emit(bool final);
  std::string label_, unit_;
  double total_, done_ = 0, interval_;
  std::chrono::steady_clock::time_point start_, last_;
  bool tty_, finished_ = false;
};

std::string human_duration(double seconds);

}  // namespace codex
