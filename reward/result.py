"""The result dict every verifier returns, and the reasons it can carry.

verl logs every key of the dict as ``reward_extra_info``, so the dict is flat, has the same keys
for math and code, and holds only JSON-friendly values.
"""

from __future__ import annotations

from typing import Any

# Why a response scored what it scored. Exactly one per result.
CORRECT = "correct"
WRONG = "wrong"
NO_ANSWER = "no_answer"  # no \boxed{} / no python block after the reasoning
ANSWER_TOO_LONG = "answer_too_long"
TIMEOUT = "timeout"
RUNTIME_ERROR = "runtime_error"  # the program crashed, was killed by an rlimit or printed nothing usable
OUTPUT_LIMIT = "output_limit"
SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed to start: not the program's fault
VERIFIER_ERROR = "verifier_error"  # math-verify crashed or its worker died
BAD_GROUND_TRUTH = "bad_ground_truth"

REASONS = (
    CORRECT, WRONG, NO_ANSWER, ANSWER_TOO_LONG, TIMEOUT, RUNTIME_ERROR, OUTPUT_LIMIT,
    SANDBOX_ERROR, VERIFIER_ERROR, BAD_GROUND_TRUTH,
)


def make_result(correct: bool, reason: str, pred: str | None, **extra: Any) -> dict[str, Any]:
    """Build the result dict: ``score`` 1.0/0.0, ``acc``, ``pred`` (a short preview), ``reason``."""
    assert reason in REASONS, reason
    out: dict[str, Any] = {
        "score": 1.0 if correct else 0.0,
        "acc": bool(correct),
        "pred": pred if pred is not None else "",
        "reason": reason,
    }
    out.update(extra)
    return out
