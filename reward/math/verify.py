"""Score a math response: extract the boxed answer, then compare with math-verify in the pool.

Split into ``prepare`` (cheap, in the caller) and ``finish`` (waits on the pool) so the batch API
can submit every comparison before waiting on any.
"""

from __future__ import annotations

from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from pebble import ProcessExpired

from reward.math.extract import extract_math_answer
from reward.math.fastpath import quick_verdict
from reward.math.pool import MathPool
from reward.result import (
    ANSWER_TOO_LONG, BAD_GROUND_TRUTH, CORRECT, NO_ANSWER, TIMEOUT, VERIFIER_ERROR, WRONG, make_result,
)
from reward.text import preview, sanitize

# Parent-side slack on top of the per-task timeout: the pool may be (re)spawning a worker, which
# imports sympy (~1-2 s, more on a loaded machine). The task clock itself starts in the worker.
_WAIT_SLACK_S = 60.0

@dataclass
class MathJob:
    """A response waiting for the pool (or already decided: ``result`` set)."""

    answer: str | None
    ground_truths: tuple[str, ...]
    result: dict | None = None
    futures: list[Future] | None = None


def _ground_truths(ground_truth) -> tuple[str, ...]:
    if isinstance(ground_truth, (list, tuple)):  # several accepted answers
        return tuple(sanitize(str(g)) for g in ground_truth if g is not None and str(g).strip())
    if ground_truth is None:
        return ()
    g = sanitize(str(ground_truth)).strip()
    return (g,) if g else ()


def prepare(solution_str: str, ground_truth, max_answer_chars: int, fast_path: bool = True) -> MathJob:
    """Extract and pre-check in the caller; decide without the pool when possible."""
    gts = _ground_truths(ground_truth)
    if not gts:
        return MathJob(None, gts, make_result(False, BAD_GROUND_TRUTH, None))
    answer = extract_math_answer(sanitize(solution_str) if isinstance(solution_str, str) else "")
    if answer is None:
        return MathJob(None, gts, make_result(False, NO_ANSWER, None))
    if max_answer_chars and len(answer) > max_answer_chars:
        return MathJob(answer, gts, make_result(False, ANSWER_TOO_LONG, preview(answer)))
    verdicts = [quick_verdict(answer, g) if fast_path else None for g in gts]
    if True in verdicts:
        return MathJob(answer, gts, make_result(True, CORRECT, preview(answer)))
    if all(v is False for v in verdicts):
        return MathJob(answer, gts, make_result(False, WRONG, preview(answer)))
    # Only the ground truths the fast path could not decide go to the pool.
    return MathJob(answer, tuple(g for g, v in zip(gts, verdicts) if v is None))


def submit(job: MathJob, pool: MathPool, timeout_s: float) -> MathJob:
    if job.result is None:
        job.futures = [pool.submit(job.answer, g, timeout_s) for g in job.ground_truths]
    return job


def finish(job: MathJob, wait_s: float) -> dict:
    """Wait for the pool's verdicts (bounded by ``wait_s``); any failure scores 0."""
    if job.result is not None:
        return job.result
    verdicts = []
    for fut in job.futures or []:
        try:
            verdicts.append(fut.result(timeout=wait_s))
        except (FutureTimeout, TimeoutError):
            fut.cancel()
            verdicts.append(TIMEOUT)
        except CancelledError:
            verdicts.append(TIMEOUT)
        except (ProcessExpired, Exception):  # the worker died (OOM, segfault) or math-verify raised
            verdicts.append(VERIFIER_ERROR)
        if verdicts[-1] == CORRECT:
            for other in job.futures:
                other.cancel()
            break
    pred = preview(job.answer)
    if CORRECT in verdicts:
        return make_result(True, CORRECT, pred)
    for reason in (TIMEOUT, VERIFIER_ERROR, BAD_GROUND_TRUTH):
        if reason in verdicts:
            return make_result(False, reason, pred)
    return make_result(False, WRONG, pred)


def score_math(solution_str: str, ground_truth, pool: MathPool, timeout_s: float, max_answer_chars: int,
               fast_path: bool = True) -> dict:
    """One response, blocking the calling thread for at most about ``timeout_s`` of worker time."""
    job = submit(prepare(solution_str, ground_truth, max_answer_chars, fast_path), pool, timeout_s)
    return finish(job, timeout_s + _WAIT_SLACK_S)
