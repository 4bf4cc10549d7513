# Runs a project's test command with the call recorder (src/data/trace_hook.py) installed, INSIDE
# the sandbox. Embedded into the binary (cmake/EmbedPython.cmake); the host appends
# `run(OPTIONS)` with OPTIONS = {"root": folder the command runs in (visible in the sandbox) or
# None, "files": {relative path: text} to write into a fresh folder when root is None,
# "command": shell command, "hook": trace_hook.py's text, "max_calls": N, "timeout": seconds}.
# Prints one JSON line per recorded call (see trace_hook.py), then one {"kind": "command", ...}.
import glob
import json
import os
import subprocess
import sys


def run(opts):
    work = os.getcwd()
    root = opts.get("root")
    if not root:
        root = os.path.join(work, "pkg")
        for rel, text in opts["files"].items():
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
        os.makedirs(root, exist_ok=True)
    hook = os.path.join(work, ".codex_hook")
    out = os.path.join(work, ".codex_trace")
    os.makedirs(hook)
    os.makedirs(out)
    with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
        f.write(opts["hook"])
    env = dict(os.environ)
    env.update(PYTHONPATH=hook + os.pathsep + root, PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0", CODEX_TRACE_ROOT=root, CODEX_TRACE_OUT=out, CODEX_TRACE_MAX=str(opts["max_calls"]))
    try:
        p = subprocess.run(opts["command"], shell=True, cwd=root, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=opts["timeout"])
        status, text = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        status, text = "timeout", e.stdout or b""
    w = sys.stdout.write
    processes = 0
    for name in sorted(glob.glob(os.path.join(out, "trace.*.json"))):
        processes += 1
        try:
            with open(name) as f:
                calls = json.load(f)
        except (OSError, ValueError):
            continue
        for c in calls:
            c["kind"] = "call"
            w(json.dumps(c) + "\n")
    tail = text[-2000:].decode("utf-8", "replace")
    w(json.dumps({"kind": "command", "status": status, "processes": processes, "output_tail": tail}) + "\n")
