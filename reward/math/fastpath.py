"""Decide the common easy cases in the caller, without a round trip to a math-verify worker.

Most ground truths are plain numbers (AIME/AMC answers are integers), and a plain-number answer
against a plain-number ground truth needs no symbolic algebra. Only verdicts that math-verify would
certainly agree with are returned; anything else (``None``) goes to the pool:

* both sides are the same text up to spacing and ``\\dfrac``/``\\left``-style cosmetics: correct;
* both are exact rationals (integers, thousands-separated integers, finite decimals, ``a/b``,
  ``\\frac{a}{b}``) with the same value: correct;
* both are integers with different values: wrong. (Not for decimals: math-verify compares those
  with rounding, so 0.3333333 may count as 1/3.)
"""

from __future__ import annotations

import re
from fractions import Fraction

_SPACE = re.compile(r"\s+")
_INT = re.compile(r"[+-]?\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_SLASH = re.compile(r"([+-]?\d+)/(\d+)")
_FRAC = re.compile(r"([+-]?)\\frac\{([+-]?\d+)\}\{(\d+)\}")
_MAX_DIGITS = 60  # beyond this, leave it to math-verify (and its timeout)


def normalize(s: str) -> str:
    """Text normal form: equal here means equal as math."""
    s = _SPACE.sub("", s)
    for a, b in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", ""),
                 ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\$", ""), ("$", "")):
        s = s.replace(a, b)
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1]
    return s


def exact_value(s: str) -> tuple[Fraction, bool] | None:
    """(value, is_integer) of a plain rational number written in ``s`` (normalized), else None."""
    if len(s) > _MAX_DIGITS:
        return None
    if _INT.fullmatch(s):
        return Fraction(int(s)), True
    if _THOUSANDS.fullmatch(s):
        return Fraction(int(s.replace(",", ""))), True
    if _DECIMAL.fullmatch(s):
        return Fraction(s), False
    m = _SLASH.fullmatch(s)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2))), False
    m = _FRAC.fullmatch(s)
    if m and int(m.group(3)) != 0:
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return (-v if m.group(1) == "-" else v), False
    return None


def quick_verdict(answer: str, ground_truth: str) -> bool | None:
    """True/False when certain, None when math-verify must decide."""
    a, g = normalize(answer), normalize(ground_truth)
    if a == g:
        return True
    va, vg = exact_value(a), exact_value(g)
    if va is None or vg is None:
        return None
    if va[0] == vg[0]:
        return True
    if va[1] and vg[1]:
        return False
    return None
