"""Compare a program's output with the expected one, in the parent process.

The program never sees the expected output and never runs this code, so nothing it does (an
``__eq__`` that is always True, a monkeypatched checker) can reach the verdict: call-based results
arrive as JSON text and are compared as plain JSON values here.
"""

from __future__ import annotations

import math
from typing import Any


def _is_float_token(tok: str) -> float | None:
    try:
        v = float(tok)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def stdout_matches(actual: str, expected: str, tol: float = 1e-6) -> bool:
    """Line by line, ignoring trailing whitespace per line and trailing blank lines; a line that
    differs still matches if its whitespace-separated tokens are equal or, where both parse as
    finite floats, equal within ``tol`` (absolute or relative)."""
    a_lines, e_lines = _lines(actual), _lines(expected)
    if len(a_lines) != len(e_lines):
        return False
    for a, e in zip(a_lines, e_lines):
        if a == e:
            continue
        a_tok, e_tok = a.split(), e.split()
        if len(a_tok) != len(e_tok):
            return False
        for x, y in zip(a_tok, e_tok):
            if x == y:
                continue
            fx, fy = _is_float_token(x), _is_float_token(y)
            if fx is None or fy is None or not _close(fx, fy, tol):
                return False
    return True


def values_match(actual: Any, expected: Any, tol: float = 1e-6) -> bool:
    """Structural equality of JSON values, floats within ``tol``; bool is not a number here."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        if actual == expected:
            return True
        return math.isfinite(actual) and math.isfinite(expected) and _close(float(actual), float(expected), tol)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(values_match(a, e, tol) for a, e in zip(actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(values_match(actual[k], expected[k], tol) for k in actual)
    return type(actual) is type(expected) and actual == expected


def call_result_matches(actual: Any, expected: Any, tol: float = 1e-6) -> bool:
    """APPS/TACO store a call's expected value wrapped in a one-element list; accept either form."""
    if values_match(actual, expected, tol):
        return True
    return isinstance(expected, list) and len(expected) == 1 and values_match(actual, expected[0], tol)
