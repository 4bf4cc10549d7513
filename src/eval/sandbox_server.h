#pragma once
// The fork server that runs inside each sandbox (see sandbox.h). Kept as Python because the
// programs it runs are Python: forking a warm interpreter costs ~1 ms, starting one ~20 ms.
// Arguments: MODE (ns = inside bwrap's pid namespace | rl = rlimits-only), TMP_BASE, LIMITS json.
// Protocol on its stdin/stdout: one JSON request per line {"code", "timeout"}, one JSON reply per
// line {"result", "passed", "stdout", "stderr", "seconds"}; first line out is {"ready": true}.
//
// Why the pass proof is sound against programs that end early: the 32 random bytes exist only in
// this server (the sample's memory is a fork taken BEFORE they were drawn) and in a pipe the child
// reads only after exec() of the program returned normally. A program cannot print, exit or
// crash its way to a pass; it would have to find and read that pipe deliberately (docs/eval.md).

namespace codex::eval {

inline const char* kSandboxServer = R"PY(
import ctypes, json, os, resource, select, shutil, signal, sys, time

MODE, TMP_BASE, LIMITS = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
# Modules HumanEval programs import, loaded once here so that each forked program starts warm.
import builtins, bisect, collections, copy, decimal, fractions, functools, hashlib, heapq  # noqa
import itertools, math, random, re, statistics, string, typing  # noqa

import gc
gc.collect()
gc.freeze()  # the server's objects are never collected, so a child's GC never copies their pages

_prctl = ctypes.CDLL(None, use_errno=True).prctl
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36


def drain(fd, cap, buf):
    """Reads what a non-blocking fd has, keeping at most cap bytes; False at end of file."""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            if len(buf) < cap:
                buf += chunk[: cap - len(buf)]
    except BlockingIOError:
        return True


def reap():
    """Reaps finished children (we are the subreaper, so orphans are ours); False if none left."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
        return True
    except ChildProcessError:
        return False


def kill_everything(child):
    """Kills every process the program started. In bwrap's pid namespace kill(-1) reaches every
    process but this one and pid 1; without one (rlimits-only) only the program's process group."""
    give_up = time.monotonic() + 5
    while True:
        try:
            if MODE == "ns":
                os.kill(-1, signal.SIGKILL)
            else:
                os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            reap()
            return
        if not reap() and MODE != "ns":
            return
        if time.monotonic() > give_up:
            os._exit(3)  # something unkillable: let the host tear the whole sandbox down
        time.sleep(0.0005)


def wipe(path):
    """Empties a folder the program could write to, whatever permissions it set."""
    for name in os.listdir(path):
        p = os.path.join(path, name)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                for root, dirs, _ in os.walk(p):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(root, d), 0o700)
                        except OSError:
                            pass
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


def child_main(code, timeout, work, rep_w, proof_r, out_w, err_w):
    """The forked child: limits, fresh fds and folder, then the program. Never returns: whatever
    happens (even the report failing because the program closed fd 3) ends in _exit."""
    _write, _read, _exit = os.write, os.read, os._exit  # bound before the program can patch os
    try:
        try:
            os.setsid()
            _prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
            cpu = int(timeout) + 1
            for res, v in ((resource.RLIMIT_CPU, (cpu, cpu + 1)),
                           (resource.RLIMIT_AS, (LIMITS["memory"],) * 2),
                           (resource.RLIMIT_NPROC, (LIMITS["nproc"],) * 2),
                           (resource.RLIMIT_FSIZE, (LIMITS["fsize"],) * 2),
                           (resource.RLIMIT_NOFILE, (64, 64)),
                           (resource.RLIMIT_CORE, (0, 0))):
                resource.setrlimit(res, v)
            os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            for src, dst in ((out_w, 1), (err_w, 2), (rep_w, 3), (proof_r, 4)):
                os.dup2(src, dst)
            os.closerange(5, 1 << 16)  # above all: the server's channel to the host
            os.chdir(work)
            os.environ.clear()
            os.environ.update(PATH="/usr/bin:/bin", HOME=work, TMPDIR=work, LANG="C.UTF-8")
            # sys.std* already wrap fds 0-2 and their buffers are empty (the server never
            # prints): reusing them saves ~90 copy-on-write page faults per program.
            out, err = sys.stdout, sys.stderr
            for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGTERM):
                signal.signal(s, signal.SIG_DFL)
        except BaseException as e:
            _write(3, b"F" + ("sandbox setup failed: %r" % (e,)).encode()[:1000])
            _exit(1)
        try:
            exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
        except BaseException as e:
            try:
                msg = str(e)
            except BaseException:
                msg = type(e).__name__
            _write(3, b"F" + msg.encode("utf-8", "replace")[:4000])
            _exit(1)
        for f in (out, err):
            try:
                f.flush()
            except BaseException:
                pass
        # Only here, after the program returned normally, is the proof read and handed back.
        _write(3, b"P" + _read(4, 64))
        _exit(0)
    finally:
        _exit(1)


def run_one(req):
    code, timeout = req["code"], float(req["timeout"])
    work = os.path.join(TMP_BASE, "work")
    os.mkdir(work, 0o700)
    (rep_r, rep_w), (proof_r, proof_w), (out_r, out_w), (err_r, err_w) = [os.pipe() for _ in range(4)]
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        child_main(code, timeout, work, rep_w, proof_r, out_w, err_w)
    for fd in (rep_w, proof_r, out_w, err_w):
        os.close(fd)
    proof = os.urandom(32)  # drawn after the fork: never in the child's memory
    os.write(proof_w, proof)
    os.close(proof_w)
    pidfd = os.pidfd_open(pid)
    bufs = {rep_r: bytearray(), out_r: bytearray(), err_r: bytearray()}
    caps = {rep_r: 8192, out_r: LIMITS["output"], err_r: LIMITS["output"]}
    for fd in bufs:
        os.set_blocking(fd, False)
    live = set(bufs)
    timed_out = False
    deadline = start + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready = select.select(list(live) + [pidfd], [], [], left)[0]
        for fd in ready:
            if fd != pidfd and not drain(fd, caps[fd], bufs[fd]):
                live.discard(fd)
        if pidfd in ready:
            break
    seconds = time.monotonic() - start
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    kill_everything(pid)
    for fd in live:
        drain(fd, caps[fd], bufs[fd])
    for fd in (rep_r, out_r, err_r, pidfd):
        os.close(fd)
    wipe(TMP_BASE)
    if MODE == "ns":
        wipe("/dev/shm")
    rep = bytes(bufs[rep_r])
    passed = False
    if timed_out:
        result = "timed out"
    elif rep == b"P" + proof and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        result, passed = "passed", True
    elif rep[:1] == b"F" and os.WIFEXITED(status):
        result = "failed: " + rep[1:].decode("utf-8", "replace")
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        result = "timed out" if sig == signal.SIGXCPU else \
            "failed: killed by signal %s" % signal.Signals(sig).name
    else:
        result = "failed: exited with status %d before the program ended" % os.WEXITSTATUS(status)
    text = lambda b: bytes(b).decode("utf-8", "replace")
    return {"result": result, "passed": passed, "stdout": text(bufs[out_r]),
            "stderr": text(bufs[err_r]), "seconds": round(seconds, 6)}


def main():
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    for fd in range(3, 1024):
        if fd not in (rfd, wfd):
            try:
                os.close(fd)
            except OSError:
                pass
    # Programs run as our uid: being non-dumpable keeps them out of our memory and our fds.
    _prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    os.makedirs(TMP_BASE, exist_ok=True)
    wipe(TMP_BASE)
    inp = os.fdopen(rfd, "r", encoding="utf-8")
    out = os.fdopen(wfd, "w", encoding="utf-8")
    out.write('{"ready": true}\n')
    out.flush()
    for line in inp:
        if line.strip():
            out.write(json.dumps(run_one(json.loads(line))) + "\n")
            out.flush()


main()
)PY";

}  // namespace codex::eval
