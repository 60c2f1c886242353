"""What runs inside a math worker process: math-verify on one (answer, ground truth) pair.

Imported only in the worker processes (spawned, so math-verify and sympy never load in the
trainer). Each worker is single-threaded and runs tasks on its main thread, so math-verify's own
``signal.alarm`` timeouts work here; they turn most slow comparisons into a cheap "timeout"
answer without killing the worker. Work stuck in C code (sympy big-integer powers) does not see
the alarm: the parent's hard timeout kills and replaces the worker for those.
"""

from __future__ import annotations

import logging
from functools import lru_cache


class _TimeoutFlag(logging.Handler):
    """math-verify reports its internal timeouts only as log warnings; catch them to tell the
    parent "timeout" rather than "wrong"."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.fired = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if str(record.msg).startswith("Timeout"):
                self.fired = True
        except Exception:  # never let logging break scoring
            pass


_flag = _TimeoutFlag()


def warm_up() -> None:
    """Pool initializer: import math-verify (sympy: ~1 s) before the first task's clock starts."""
    import math_verify  # noqa: F401

    log = logging.getLogger("math_verify")
    log.addHandler(_flag)
    log.propagate = False  # its warnings would otherwise flood the trainer's stderr
    logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)


@lru_cache(maxsize=4096)
def _parse_gold(ground_truth: str, inner_timeout: int):
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    gold = parse("\\boxed{" + ground_truth + "}", [LatexExtractionConfig()], parsing_timeout=inner_timeout)
    if not gold:
        gold = parse(ground_truth, [ExprExtractionConfig(), LatexExtractionConfig()], parsing_timeout=inner_timeout)
    return gold


def verify_answer(answer: str, ground_truth: str, inner_timeout: int) -> str:
    """Compare ``answer`` (the boxed content) with ``ground_truth``.

    Returns one of ``"correct"``, ``"wrong"``, ``"timeout"``, ``"bad_ground_truth"``.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if _flag not in logging.getLogger("math_verify").handlers:
        warm_up()
    _flag.fired = False
    gold = _parse_gold(ground_truth, inner_timeout)
    if not gold:
        return "timeout" if _flag.fired else "bad_ground_truth"
    pred = parse(
        "\\boxed{" + answer + "}",
        [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()],
        parsing_timeout=inner_timeout,
    )
    if not pred:
        return "timeout" if _flag.fired else "wrong"
    ok = verify(gold, pred, timeout_seconds=inner_timeout)
    if ok:
        return "correct"
    return "timeout" if _flag.fired else "wrong"
