"""In-sandbox harness: runs ONE test of an untrusted program. Executed by the sandbox's own
Python (default /usr/bin/python3), so standard library only and Python 3.8-compatible.

Why a harness instead of running the program directly: it sets the rlimits on the sandboxed
process itself before any untrusted code runs (no extra ``prlimit`` exec per test, and the limits
can only be lowered after that), and in call mode it calls the function and serialises its
return value to JSON on a private fd, so the program's own prints cannot be confused with the
result. The expected output is never given to this process; the parent compares.

argv: harness.py MODE FN_NAME LIMITS [PROGRAM]
  MODE "stdin" or "call"; FN_NAME the function to call ("-" in stdin mode);
  LIMITS "RLIMIT_AS=n,RLIMIT_CPU=n,..."; PROGRAM defaults to /sandbox/solution.py.
  (Plain argv, not JSON: importing json pulls in re and costs ~5 ms per test in stdin mode.)
call mode: stdin holds a JSON list of positional arguments; the result line
{"ok": true, "value": ...} or {"ok": false, "error": "..."} goes to the original stdout.
"""

import os
import resource
import sys


def _apply_limits(spec):
    for item in spec.split(","):
        if item:
            name, value = item.split("=")
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))


def _load(path):
    with open(path, "rb") as f:
        source = f.read()
    return compile(source, "solution.py", "exec")


def _run_stdin(code):
    sys.argv = ["solution.py"]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(code, namespace)


def _find_callable(namespace, fn_name):
    fn = namespace.get(fn_name)
    if callable(fn):
        return fn
    cls = namespace.get("Solution")
    if isinstance(cls, type):
        method = getattr(cls(), fn_name, None)
        if callable(method):
            return method
    raise NameError("no function or Solution method named %r" % (fn_name,))


def _run_call(code, fn_name):
    import json

    # The real stdout becomes a private result channel; the program's prints go to stderr.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(result_fd, "w", encoding="utf-8")
    try:
        args = json.loads(sys.stdin.read())
    except ValueError as e:
        out.write(json.dumps({"ok": False, "error": "bad input: %s" % e}) + "\n")
        return
    if not isinstance(args, list):
        args = [args]
    namespace = {"__name__": "__solution__", "__builtins__": __builtins__}
    exec(code, namespace)
    fn = _find_callable(namespace, fn_name)
    value = fn(*args)
    try:
        line = json.dumps({"ok": True, "value": value}, allow_nan=True)
    except (TypeError, ValueError) as e:
        line = json.dumps({"ok": False, "error": "return value is not JSON-serialisable: %s" % type(e).__name__})
    out.write(line + "\n")
    out.flush()


def main():
    mode, fn_name, limits = sys.argv[1], sys.argv[2], sys.argv[3]
    _apply_limits(limits)
    code = _load(sys.argv[4] if len(sys.argv) > 4 else "/sandbox/solution.py")
    if mode == "call":
        _run_call(code, fn_name)
    else:
        _run_stdin(code)


if __name__ == "__main__":
    main()
