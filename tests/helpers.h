#pragma once
// Shared test helpers: temporary folders and running the real binary.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace codex::test {

// A fresh temporary directory, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
  std::string str() const { return path.string(); }
  std::filesystem::path operator/(const std::string& s) const { return path / s; }
};

struct RunResult {
  int code = -1;
  std::string out, err;
};

// Runs `codex-train <args>` (args is a shell-quoted string) with optional stdin, capturing output.
RunResult run_cli(const std::string& args, const std::string& stdin_data = "");
// Runs an arbitrary shell command line, capturing output.
RunResult run_shell(const std::string& cmd, const std::string& stdin_data = "");
std::string shell_quote(const std::string& s);
void write_text(const std::filesystem::path& p, const std::string& s);
std::string read_text(const std::filesystem::path& p);
bool gpu_available();
// True when some process's command line contains `needle` (pgrep -f, without matching the
// shell that runs pgrep itself).
bool process_running(const std::string& needle);
// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
int free_port();

}  // namespace codex::test
