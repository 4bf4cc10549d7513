# The call recorder of `data trace`, installed as `sitecustomize` (through PYTHONPATH) into every
# Python process the traced command starts, inside the sandbox. Embedded into the binary
# (cmake/EmbedPython.cmake); src/data/trace_run.py writes it out and sets the environment:
#   CODEX_TRACE_ROOT  record only functions whose code lives under this folder
#   CODEX_TRACE_OUT   folder for the per-process results (trace.<pid>.json)
#   CODEX_TRACE_MAX   distinct argument tuples kept per function
#
# A sys.setprofile hook sees every Python call and return. A call is kept when each argument, and
# then the return value, survives repr -> ast.literal_eval with the same type and an equal value.
# Arguments are compared again (by repr) on return: a call that changed them is marked mutated.
# The same arguments seen again with a different result mark the function's entry inconsistent.
# A profile hook cannot tell a return from an exception passing through (both are "return" with
# None), so a call that raised is recorded as returning None: the replay of every test in the
# sandbox (src/data/problems.cpp) drops it, because it raises again there.
import ast
import atexit
import json
import os
import sys
import threading

_ROOT = os.path.realpath(os.environ.get("CODEX_TRACE_ROOT", "/nonexistent")).rstrip(os.sep) + os.sep
_OUT = os.environ.get("CODEX_TRACE_OUT", "")
_MAX = int(os.environ.get("CODEX_TRACE_MAX", "40"))
_MAXLEN = 1000
_SKIP_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generators and coroutines: a "return" is a yield
_SELF = os.path.realpath(__file__)

_where = {}    # code object -> relative file name or None (not ours)
_calls = {}    # (file, firstlineno, qualname) -> {call key: [args, kwargs, result | None, mutated]}
_pending = {}  # id(frame) -> (function key, call key, args, kwargs, argument objects, their reprs)


def _rel(code):
    r = _where.get(code, 0)
    if r != 0:
        return r
    r = None
    name = code.co_name
    f = code.co_filename
    # CO_OPTIMIZED (0x01): a function's code (not a module's or a class body's).
    if (code.co_flags & 0x01 and not code.co_flags & _SKIP_FLAGS and not name.startswith("<")
            and f and not f.startswith("<")):
        p = os.path.realpath(f)
        if p.startswith(_ROOT) and p != _SELF:
            r = p[len(_ROOT):]
    _where[code] = r
    return r


def _literal(v):
    """repr(v) when it reads back (ast.literal_eval) as an equal value of the same type."""
    try:
        r = repr(v)
        if len(r) > _MAXLEN:
            return None
        back = ast.literal_eval(r)
        if type(back) is not type(v):
            return None
        same = back == v
        return r if same is True else None
    except Exception:
        return None


def _hook(frame, event, arg):
    if event == "call":
        code = frame.f_code
        rel = _rel(code)
        if rel is None:
            return
        key = (rel, code.co_firstlineno, getattr(code, "co_qualname", code.co_name))
        seen = _calls.get(key)
        if seen is not None and len(seen) >= 4 * _MAX:
            return
        loc = frame.f_locals
        n = code.co_argcount
        nk = code.co_kwonlyargcount
        names = code.co_varnames
        try:
            objs = [loc[x] for x in names[:n]]
            kwobjs = {x: loc[x] for x in names[n:n + nk]}
            i = n + nk
            if code.co_flags & 0x04:
                objs.extend(loc[names[i]])
                i += 1
            if code.co_flags & 0x08:
                extra = loc[names[i]]
                if not all(isinstance(k, str) and k.isidentifier() for k in extra):
                    return
                kwobjs.update(extra)
        except Exception:
            return
        args = []
        for o in objs:
            r = _literal(o)
            if r is None:
                return
            args.append(r)
        kwargs = {}
        for k in sorted(kwobjs):
            r = _literal(kwobjs[k])
            if r is None:
                return
            kwargs[k] = r
        callkey = repr((args, kwargs))
        _pending[id(frame)] = (key, callkey, args, kwargs, objs + list(kwobjs.values()),
                               args + [kwargs[k] for k in kwobjs])
    elif event == "return":
        p = _pending.pop(id(frame), None)
        if p is None:
            return
        key, callkey, args, kwargs, objs, before = p
        result = _literal(arg)
        if result is None:
            return
        mutated = [_literal(o) for o in objs] != before
        entry = _calls.setdefault(key, {})
        old = entry.get(callkey)
        if old is None:
            entry[callkey] = [args, kwargs, result, mutated]
        else:
            if old[2] != result:
                old[2] = None  # the same arguments gave a different result
            old[3] = old[3] or mutated


def _dump():
    sys.setprofile(None)
    if not _OUT:
        return
    out = []
    for (rel, line, qual), entry in _calls.items():
        for args, kwargs, result, mutated in entry.values():
            out.append({"file": rel, "lineno": line, "name": qual, "args": args, "kwargs": kwargs,
                        "result": result, "mutated": mutated})
    try:
        with open(os.path.join(_OUT, "trace.%d.json" % os.getpid()), "w") as f:
            json.dump(out, f)
    except OSError:
        pass


if _OUT:
    atexit.register(_dump)
    threading.setprofile(_hook)
    sys.setprofile(_hook)
