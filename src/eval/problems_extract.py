# Extracts problems from one Python source file. Runs INSIDE the sandbox (src/eval/sandbox.h):
# the corpus is untrusted, and although nothing here executes it, parsing hostile input is still
# best kept away from the host. Embedded into the binary at build time (cmake/EmbedPython.cmake);
# the host appends a call `extract(SOURCE, OPTIONS)` and reads the JSON lines this prints.
#
# A problem is a function that can stand alone: a top-level function (or a method that uses
# neither self/cls nor its class: a staticmethod, or a method whose first parameter is unused)
# whose free names are builtins, itself, or names bound by the module's own absolute imports.
#   prompt             = the imports it needs + its signature + its docstring (as written)
#   canonical_solution = the rest of its body
#   steps              = its doctest examples turned into statements on `candidate`
# Printed lines (one JSON object each):
#   {"kind": "problem", ...fields...}      a candidate problem (the host checks its steps)
#   {"kind": "drop", "reason": R, "name": Q, "lineno": L}
#   {"kind": "file", "status": "ok" | "syntax_error", "error": "..."}
import ast
import builtins
import doctest
import json
import sys

_BUILTINS = set(dir(builtins))
_OUT = sys.stdout


def _emit(obj):
    _OUT.write(json.dumps(obj) + "\n")


def _import_bindings(tree):
    """name -> import statement text for names the module binds by an absolute import at its top
    level (also inside top-level if/try blocks); names bound by relative imports map to None."""
    out = {}
    future = []

    def visit(stmts):
        for st in stmts:
            if isinstance(st, ast.Import):
                for a in st.names:
                    name = a.asname or a.name.split(".")[0]
                    text = "import " + a.name + (" as " + a.asname if a.asname else "")
                    out.setdefault(name, text)
            elif isinstance(st, ast.ImportFrom):
                if st.module == "__future__":
                    future.extend(a.name for a in st.names)
                    continue
                for a in st.names:
                    if a.name == "*":
                        continue
                    name = a.asname or a.name
                    if st.level:
                        out.setdefault(name, None)
                    else:
                        out.setdefault(name, "from " + st.module + " import " + a.name +
                                       (" as " + a.asname if a.asname else ""))
            elif isinstance(st, ast.If):
                visit(st.body)
                visit(st.orelse)
            elif isinstance(st, ast.Try):
                visit(st.body)
    visit(tree.body)
    return out, future


def _module_names(tree):
    """Every name the module binds at its top level other than by import."""
    names = set()
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(st.name)
            continue
        if isinstance(st, (ast.Import, ast.ImportFrom)):
            continue
        for n in ast.walk(st):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                names.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(n.name)
            elif isinstance(n, ast.alias):
                names.add((n.asname or n.name).split(".")[0])
    return names


def _free_names(fn):
    """(names the function reads but never binds, whether it declares global/nonlocal names)."""
    loads, stores = set(), set()
    has_global = False
    for n in ast.walk(fn):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else stores).add(n.id)
        elif isinstance(n, ast.arg):
            stores.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not fn:
            stores.add(n.name)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            stores.add(n.name)
        elif isinstance(n, ast.alias):
            stores.add((n.asname or n.name).split(".")[0])
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            has_global = True
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            stores.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            stores.add(n.rest)
    return loads - stores, has_global


def _uses_name(node, name):
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _dedent(lines, col):
    out = []
    for ln in lines:
        if not ln.strip():
            out.append("")
        elif ln[:col].strip() == "" and len(ln) > col:
            out.append(ln[col:])
        else:
            return None  # a line left of the def (inside a multi-line string): not movable
    return out


def _is_stub(body):
    for st in body:
        if isinstance(st, ast.Pass):
            continue
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
            continue  # ... or a string
        if isinstance(st, ast.Raise):
            exc = st.exc
            if isinstance(exc, ast.Call):
                exc = exc.func
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                continue
        return False
    return True


class _Rename(ast.NodeTransformer):
    """Calls of the function by its name (or Class.name for a method) become `candidate`."""

    def __init__(self, name, cls):
        self.name, self.cls = name, cls

    def visit_Name(self, node):
        if node.id == self.name and self.cls is None and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Name("candidate", ast.Load()), node)
        return node

    def visit_Attribute(self, node):
        if (self.cls is not None and node.attr == self.name and isinstance(node.value, ast.Name)
                and node.value.id == self.cls and isinstance(node.ctx, ast.Load)):
            return ast.copy_location(ast.Name("candidate", ast.Load()), node)
        self.generic_visit(node)
        return node


_SAFE_LEFT = (ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.List, ast.Tuple,
              ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
              ast.BinOp, ast.JoinedStr)


def _doctest_steps(doc, name, cls, counts):
    """The docstring's doctest examples as check() statements: [kind, code] with kind "setup"
    (a statement whose effect later examples may need) or "assert"."""
    try:
        examples = doctest.DocTestParser().get_examples(doc)
    except Exception:
        counts["doctest_unparsable"] += 1
        return []
    steps = []
    for ex in examples:
        counts["examples"] += 1
        if ex.options:  # +ELLIPSIS, +SKIP, +NORMALIZE_WHITESPACE...: not an exact expectation
            counts["examples_directive"] += 1
            continue
        try:
            tree = ast.parse(ex.source)
        except SyntaxError:
            counts["examples_unsupported"] += 1
            continue
        tree = ast.fix_missing_locations(_Rename(name, cls).visit(tree))
        want = ex.want.rstrip("\n")
        if ex.exc_msg is not None:
            # Traceback: the call must raise the named exception type.
            last = want.strip().splitlines()[-1] if want.strip() else ""
            etype = last.split(":", 1)[0].strip().rsplit(".", 1)[-1]
            if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr) or not etype.isidentifier():
                counts["examples_unsupported"] += 1
                continue
            code = ast.unparse(tree)
            steps.append(["assert", "try:\n    " + code + "\nexcept Exception as e:\n    assert type(e).__name__ == "
                          + repr(etype) + "\nelse:\n    assert False, " + repr("expected " + etype)])
            continue
        if not want:
            steps.append(["setup", ast.unparse(tree)])
            continue
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
            counts["examples_unsupported"] += 1
            continue
        expr = tree.body[0].value
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "print":
            counts["examples_unsupported"] += 1  # printed output, not a value
            continue
        left = ast.unparse(expr)
        if not isinstance(expr, _SAFE_LEFT):
            left = "(" + left + ")"
        try:
            ast.literal_eval(want)
            right = ast.unparse(ast.parse(want.strip(), mode="eval").body)
            steps.append(["assert", "assert " + left + " == " + right])
        except Exception:
            if "\n" in want:
                counts["examples_unsupported"] += 1
                continue
            # Not a literal (an object's repr): compare reprs, as doctest itself does.
            steps.append(["assert", "assert repr(" + ast.unparse(expr) + ") == " + repr(want)])
    return steps


def _candidates(tree):
    """(function node, class name or None) for top-level functions and top-level classes' methods."""
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield st, None
        elif isinstance(st, ast.ClassDef):
            for m in st.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield m, st.name


def extract(source, options):
    require_doc = options.get("require_docstring", True)
    source = source.replace("\r\n", "\n")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as e:
        _emit({"kind": "file", "status": "syntax_error", "error": str(e)[:200]})
        return
    lines = source.split("\n")
    imports, future = _import_bindings(tree)
    module_names = _module_names(tree)
    for fn, cls in _candidates(tree):
        qual = (cls + "." if cls else "") + fn.name
        counts = {"examples": 0, "examples_directive": 0, "examples_unsupported": 0, "doctest_unparsable": 0}

        def drop(reason):
            _emit({"kind": "drop", "reason": reason, "name": qual, "lineno": fn.lineno})

        if isinstance(fn, ast.AsyncFunctionDef):
            drop("async")
            continue
        if fn.name in ("check", "candidate"):
            drop("reserved_name")  # the test defines check(candidate)
            continue
        deco = [ast.unparse(d) for d in fn.decorator_list]
        if cls is not None and fn.name.startswith("__") and fn.name.endswith("__"):
            drop("special_method")
            continue
        drop_first = False
        if cls is not None:
            if deco == ["staticmethod"]:
                pass
            elif deco in ([], ["classmethod"]):
                params = fn.args.posonlyargs + fn.args.args
                if not params or _uses_name(fn, params[0].arg) or _uses_name(fn, "super") or _uses_name(fn, "__class__"):
                    drop("method_uses_self")
                    continue
                drop_first = True
            else:
                drop("decorated")
                continue
        elif deco:
            drop("decorated")
            continue
        doc_node = fn.body[0] if fn.body else None
        has_doc = (isinstance(doc_node, ast.Expr) and isinstance(doc_node.value, ast.Constant)
                   and isinstance(doc_node.value.value, str))
        if not has_doc and require_doc:
            drop("no_docstring")
            continue
        body = fn.body[1:] if has_doc else fn.body
        if not body or _is_stub(body):
            drop("stub")
            continue
        free, has_global = _free_names(fn)
        if has_global:
            drop("uses_module_names")
            continue
        needed = []
        bad = None
        for name in sorted(free):
            if name in _BUILTINS and name not in module_names and name not in imports:
                continue
            if name == fn.name and cls is None:
                continue  # recursion
            if name in imports:
                if imports[name] is None:
                    bad = "relative_import"
                    break
                needed.append(imports[name])
            elif name in module_names or name.startswith("__"):
                bad = "uses_module_names"
                break
            else:
                bad = "unresolved_names"
                break
        if bad:
            drop(bad)
            continue
        # The def line through the docstring's last line, then the body.
        head_end = doc_node.end_lineno if has_doc else fn.body[0].lineno - 1
        if body[0].lineno <= head_end or (not has_doc and fn.body[0].lineno == fn.lineno):
            drop("layout")
            continue
        col = fn.col_offset
        head = _dedent(lines[fn.lineno - 1:head_end], col)
        sol = _dedent(lines[head_end:fn.end_lineno], col)
        if head is None or sol is None:
            drop("layout")
            continue
        if drop_first:
            args = fn.args
            if args.posonlyargs:
                args.posonlyargs = args.posonlyargs[1:]
            else:
                args.args = args.args[1:]
            sig = "def " + fn.name + "(" + ast.unparse(args) + ")"
            if fn.returns is not None:
                sig += " -> " + ast.unparse(fn.returns)
            # The signature is rebuilt; the docstring lines keep their text.
            doc_lines = _dedent(lines[doc_node.lineno - 1:head_end], col) if has_doc else []
            if doc_lines is None or doc_node.lineno == fn.lineno or any(
                    l.strip() and not l.startswith((" ", "\t")) for l in doc_lines[:1]):
                drop("layout")
                continue
            head = [sig + ":"] + doc_lines
        # Imports in module order, __future__ first.
        order = []
        for text in needed:
            if text not in order:
                order.append(text)
        order.sort(key=lambda t: list(imports.values()).index(t))
        prefix = "".join("from __future__ import " + f + "\n" for f in future if f == "annotations")
        prefix += "".join(t + "\n" for t in order)
        prompt = (prefix + "\n\n" if prefix else "") + "\n".join(head) + "\n"
        solution = "\n".join(sol).rstrip() + "\n"
        try:
            compile(prompt + solution, "<problem>", "exec")
        except (SyntaxError, ValueError):
            drop("layout")
            continue
        docstring = ast.get_docstring(fn, clean=True) if has_doc else ""
        steps = _doctest_steps(docstring, fn.name, cls, counts) if has_doc else []
        _emit({"kind": "problem", "name": qual, "entry_point": fn.name, "lineno": fn.lineno,
               "first_lineno": min([fn.lineno] + [d.lineno for d in fn.decorator_list]),
               "prompt": prompt, "canonical_solution": solution, "docstring": docstring or "",
               "steps": steps, "counts": counts})
    _emit({"kind": "file", "status": "ok"})
