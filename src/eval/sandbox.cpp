#include "eval/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "eval/sandbox_server.h"
#include "util/error.h"
#include "util/log.h"

namespace codex::eval {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uid_t kNobody = 65534;  // who sandboxes run as when we are root (see Worker::start())
const char* const kSandboxDied = "failed: the sandbox died while the program ran";

bool is_executable(const std::string& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0; }

std::string find_bwrap(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("CODEX_BWRAP")) return env;
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    size_t start = 0;
    while (start <= dirs.size()) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string cand = dirs.substr(start, end - start) + "/bwrap";
      if (end > start && is_executable(cand)) return cand;
      start = end + 1;
    }
  }
  return "/usr/bin/bwrap";
}

// /lib, /lib64, /bin, /sbin: a symlink into /usr on merged-/usr systems (copied as a link),
// a real folder elsewhere (bound read-only).
void add_root_links(std::vector<std::string>& a) {
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    auto st = std::filesystem::symlink_status(d, ec);
    if (ec || !std::filesystem::exists(st)) continue;
    if (std::filesystem::is_symlink(st)) {
      a.insert(a.end(), {"--symlink", std::filesystem::read_symlink(d, ec).string(), d});
    } else if (std::filesystem::is_directory(st)) {
      a.insert(a.end(), {"--ro-bind", d, d});
    }
  }
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    r = fds[0];
    w = fds[1];
  }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// One sandbox: a bwrap (or, rlimits-only, a bare python3) running the fork server.
class Worker {
 public:
  Worker(const SandboxOptions& o, const std::string& bwrap) : o_(o), bwrap_(bwrap) {}
  ~Worker() { stop(); }

  // Starts the sandbox and waits for the server's ready line. On failure returns false and
  // leaves what the sandbox printed in `error`.
  bool start(std::string& error) {
    stop();
    std::vector<std::string> argv = command();
    Pipe in, out, err;
    std::vector<char*> cargv;
    for (auto& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
    cargv.push_back(nullptr);
    // The environment is scrubbed for bwrap too (it clears it again inside).
    std::vector<std::string> env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
    std::vector<char*> cenv;
    for (auto& s : env) cenv.push_back(const_cast<char*>(s.c_str()));
    cenv.push_back(nullptr);
    bool drop = ::geteuid() == 0;
    std::string exec_error = "cannot execute " + argv[0] + " (as uid " +
                             std::to_string(drop ? kNobody : ::geteuid()) + ")\n";
    pid_t pid = ::fork();
    if (pid < 0) {
      error = std::string("fork: ") + std::strerror(errno);
      return false;
    }
    if (pid == 0) {
      // Async-signal-safe calls only (we may be multithreaded). As root we drop to nobody first:
      // RLIMIT_NPROC does not bind processes that are root outside the user namespace.
      ::dup2(in.r, 0);
      ::dup2(out.w, 1);
      ::dup2(err.w, 2);
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      if (::chdir("/") != 0) ::_exit(126);
      if (drop) {
        if (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
            ::syscall(SYS_setresgid, kNobody, kNobody, kNobody) != 0 ||
            ::syscall(SYS_setresuid, kNobody, kNobody, kNobody) != 0)
          ::_exit(126);
      }
      ::execve(cargv[0], cargv.data(), cenv.data());
      if (::write(2, exec_error.data(), exec_error.size()) < 0) ::_exit(127);
      ::_exit(127);
    }
    pid_ = pid;
    close_fd(in.r);
    close_fd(out.w);
    close_fd(err.w);
    to_ = in.w;
    from_ = out.r;
    err_ = err.r;
    ::fcntl(err_, F_SETFL, O_NONBLOCK);
    std::string line;
    if (!read_line(line, Clock::now() + std::chrono::seconds(60)) || line.find("\"ready\"") == std::string::npos) {
      error = stderr_text();
      if (error.empty()) error = "the sandbox did not start (no output)";
      stop();
      return false;
    }
    return true;
  }

  // Runs one program. Returns false when the sandbox itself died or stalled (it is then
  // stopped and must be restarted); `res` is filled either way.
  bool run(const std::string& code, ProgramResult& res) {
    nlohmann::json req = {{"code", code}, {"timeout", o_.timeout_s}};
    std::string msg = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    auto t0 = Clock::now();
    // The server enforces the deadline; ours only catches a server that is stopped or stuck.
    auto deadline = t0 + std::chrono::milliseconds(static_cast<int64_t>(1000 * (2 * o_.timeout_s + 10)));
    std::string line;
    if (!write_all(msg) || !read_line(line, deadline)) {
      bool stalled = Clock::now() >= deadline;
      res = {};
      res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      res.result = stalled ? "timed out" : kSandboxDied;
      stop();
      return false;
    }
    auto j = nlohmann::json::parse(line);
    res.result = j.at("result").get<std::string>();
    res.passed = j.at("passed").get<bool>();
    res.stdout_text = j.at("stdout").get<std::string>();
    res.stderr_text = j.at("stderr").get<std::string>();
    res.seconds = j.at("seconds").get<double>();
    return true;
  }

  void stop() {
    if (pid_ > 0) {
      // bwrap's pid-namespace init dies with it (--die-with-parent), and with init every
      // process in the namespace.
      ::kill(pid_, SIGKILL);
      int st;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
    close_fd(to_);
    close_fd(from_);
    close_fd(err_);
    buf_.clear();
    if (!tmp_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(tmp_, ec);
      tmp_.clear();
    }
  }

 private:
  std::vector<std::string> command() {
    nlohmann::json limits = {{"memory", o_.memory_bytes},
                             {"nproc", o_.max_processes},
                             {"fsize", o_.max_file_bytes},
                             {"output", o_.output_bytes}};
    if (o_.mode == "rlimits-only") {
      // No namespaces: a private folder under $TMPDIR and process groups are all we have.
      auto base = std::filesystem::temp_directory_path() / "codex-sandbox-XXXXXX";
      std::string templ = base.string();
      if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp " + templ + ": " + std::strerror(errno));
      tmp_ = templ;
      if (::geteuid() == 0 && ::chown(tmp_.c_str(), kNobody, kNobody) != 0)
        throw std::runtime_error("chown " + tmp_ + ": " + std::strerror(errno));
      return {o_.python, "-I", "-B", "-c", kSandboxServer, "rl", tmp_, limits.dump()};
    }
    std::string tmpfs = std::to_string(o_.tmpfs_bytes);
    std::vector<std::string> a = {bwrap_,
                                  "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
                                  "--unshare-uts", "--unshare-cgroup-try", "--disable-userns",
                                  "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
                                  "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                                  "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                                  "--setenv", "LANG", "C.UTF-8", "--setenv", "HOME", "/tmp",
                                  "--ro-bind", "/usr", "/usr"};
    add_root_links(a);
    a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--size", tmpfs, "--tmpfs", "/dev/shm",
                       "--size", tmpfs, "--tmpfs", "/tmp", "--chdir", "/tmp",
                       o_.python, "-I", "-B", "-c", kSandboxServer, "ns", "/tmp", limits.dump()});
    return a;
  }

  // A dead sandbox must show up as EPIPE here, not kill the process with SIGPIPE: the signal is
  // blocked in this thread for the write and a pending one consumed, so the rest of the process
  // keeps its own SIGPIPE disposition.
  bool write_all(const std::string& s) {
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    size_t off = 0;
    bool ok = true, broken = false;
    while (off < s.size()) {
      ssize_t n = ::write(to_, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken = n < 0 && errno == EPIPE;
        ok = false;
        break;
      }
      off += static_cast<size_t>(n);
    }
    if (broken) {
      const struct timespec zero = {0, 0};
      while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ok;
  }

  bool read_line(std::string& line, Clock::time_point deadline) {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{from_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) continue;
      char tmp[65536];
      ssize_t n = ::read(from_, tmp, sizeof tmp);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  std::string stderr_text() {
    ::usleep(50000);  // let bwrap finish its message
    std::string s;
    char tmp[4096];
    ssize_t n;
    while (s.size() < 4000 && (n = ::read(err_, tmp, sizeof tmp)) > 0) s.append(tmp, static_cast<size_t>(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (auto& c : s)
      if (c == '\n') c = ' ';
    return s;
  }

  const SandboxOptions& o_;
  const std::string& bwrap_;
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1, err_ = -1;
  std::string buf_, tmp_;
};

}  // namespace

Sandbox::Sandbox(SandboxOptions opts) : opts_(std::move(opts)) {
  if (opts_.mode != "bwrap" && opts_.mode != "rlimits-only")
    throw UsageError("eval.sandbox: expected bwrap or rlimits-only, got '" + opts_.mode + "'");
  if (!(opts_.timeout_s > 0)) throw UsageError("eval.timeout: expected a positive number of seconds");
  if (!is_executable(opts_.python))
    throw UsageError("sandbox: the Python interpreter '" + opts_.python + "' is not executable");
  if (opts_.mode == "rlimits-only") {
    spdlog::warn("eval.sandbox=rlimits-only: UNSAFE - untrusted programs run WITHOUT isolation "
                 "(only rlimits, a scrubbed environment and a private temp folder)");
    return;
  }
  bwrap_ = find_bwrap(opts_.bwrap);
  const std::string way_out =
      "; install bubblewrap with unprivileged user namespaces enabled, or set "
      "eval.sandbox=rlimits-only to run untrusted code WITHOUT isolation (unsafe)";
  if (!is_executable(bwrap_))
    throw UsageError("eval.sandbox=bwrap: bubblewrap not found at '" + bwrap_ + "'" + way_out);
  // The probe is a real sandbox: whatever would stop one (no user namespaces, a seccomp'd
  // container, a broken bwrap) stops us here, with bwrap's own words.
  Worker probe(opts_, bwrap_);
  std::string error;
  if (!probe.start(error))
    throw UsageError("eval.sandbox=bwrap: cannot start a sandbox with " + bwrap_ + " (" + error + ")" + way_out);
}

int64_t Sandbox::workers() const {
  int64_t n = opts_.workers > 0 ? opts_.workers : static_cast<int64_t>(std::thread::hardware_concurrency());
  return std::max<int64_t>(1, n);
}

std::vector<ProgramResult> Sandbox::run_programs(const std::vector<std::string>& programs,
                                                 const std::function<void(size_t)>& on_done) const {
  std::vector<ProgramResult> results(programs.size());
  if (programs.empty()) return results;
  std::atomic<size_t> next{0};
  size_t done = 0;
  std::mutex mu;
  std::exception_ptr failure;
  int64_t nthreads = std::min<int64_t>(workers(), static_cast<int64_t>(programs.size()));
  // Each thread owns its sandbox: bwrap's --die-with-parent is tied to the spawning thread.
  auto body = [&]() {
    try {
      Worker w(opts_, bwrap_);
      bool up = false;
      int failed_starts = 0;
      for (size_t i; (i = next.fetch_add(1)) < programs.size();) {
        // A sandbox that dies under a program gets one more try in a fresh sandbox: a program
        // that kills its server does so again (and fails), a one-off host hiccup does not.
        for (int attempt = 0; attempt < 2; ++attempt) {
          while (!up) {
            std::string error;
            up = w.start(error);
            if (!up && ++failed_starts >= 3) throw std::runtime_error("sandbox failed to restart: " + error);
          }
          failed_starts = 0;
          up = w.run(programs[i], results[i]);
          if (up || results[i].result != kSandboxDied) break;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        if (on_done) on_done(done);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = std::current_exception();
      next = programs.size();  // the other threads stop too
    }
  };
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < nthreads; ++t) threads.emplace_back(body);
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  return results;
}

ProgramResult Sandbox::run(const std::string& program) const { return run_programs({program})[0]; }

}  // namespace codex::eval
