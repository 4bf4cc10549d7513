#include "util/log.h"

#include <unistd.h>

#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace codex {

void init_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("codex");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] [%^%l%$] %v");
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

std::string human_duration(double s) {
  if (s < 0 || s != s) return "?";
  char buf[32];
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

Progress::Progress(std::string label, double total, std::string unit, double log_interval_s)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), interval_(log_interval_s),
      start_(std::chrono::steady_clock::now()), last_(start_), tty_(stderr_is_tty()) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(double done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (since >= (tty_ ? 0.2 : interval_)) {
    last_ = now;
    emit(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  emit(true);
}

void Progress::emit(bool final) {
  double el = elapsed_s();
  double rate = el > 0 ? done_ / el : 0;
  double eta = (rate > 0 && total_ > 0) ? (total_ - done_) / rate : -1;
  char line[256];
  if (total_ > 0)
    std::snprintf(line, sizeof line, "%s: %.0f/%.0f %s (%.1f%%) %.1f %s/s elapsed %s ETA %s", label_.c_str(),
                  done_, total_, unit_.c_str(), 100.0 * done_ / total_, rate, unit_.c_str(),
                  human_duration(el).c_str(), final ? "0s" : human_duration(eta).c_str());
  else
    std::snprintf(line, sizeof line, "%s: %.0f %s %.1f %s/s elapsed %s", label_.c_str(), done_,
                  unit_.c_str(), rate, unit_.c_str(), human_duration(el).c_str());
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
    std::fflush(stderr);
  } else {
    spdlog::info("{}", line);
  }
}

}  // namespace codex
