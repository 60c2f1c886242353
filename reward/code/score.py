"""Score a code response: extract the program, run every test in the sandbox, compare here.

All tests must pass for a score of 1; the first failing test stops the run (its reason is the
result's). Comparison happens in this (parent) process against expected outputs the program never
saw.
"""

from __future__ import annotations

import json
import time

from reward.code.compare import call_result_matches, stdout_matches
from reward.code.extract import extract_code
from reward.code.sandbox import RunResult, Sandbox
from reward.code.testcases import BadGroundTruth, TestSuite, parse_tests
from reward.result import (
    BAD_GROUND_TRUTH, CORRECT, NO_ANSWER, OUTPUT_LIMIT, RUNTIME_ERROR, SANDBOX_ERROR, TIMEOUT, WRONG, make_result,
)
from reward.text import sanitize


def _call_value(run: RunResult):
    """The harness's result line (the last one: anything earlier is noise); raises ValueError."""
    lines = [line for line in run.stdout.split(b"\n") if line.strip()]
    if not lines:
        raise ValueError("no result line")
    msg = json.loads(lines[-1].decode("utf-8"))
    if not isinstance(msg, dict) or msg.get("ok") is not True or "value" not in msg:
        raise ValueError("call failed")
    return msg["value"]


def _run_case(sandbox: Sandbox, workdir: str, suite: TestSuite, stdin: bytes, timeout_s: float) -> RunResult:
    run = sandbox.run(workdir, stdin, timeout_s, mode=suite.mode, fn_name=suite.fn_name)
    if run.sandbox_error:  # e.g. EAGAIN while the kernel tears down a previous namespace: retry once
        time.sleep(0.2)
        run = sandbox.run(workdir, stdin, timeout_s, mode=suite.mode, fn_name=suite.fn_name)
    return run


def run_tests(sandbox: Sandbox, code: str, suite: TestSuite, timeout_s: float, max_total_s: float,
              tol: float) -> tuple[str, int]:
    """Run the suite; returns (reason, number of tests passed)."""
    workdir = sandbox.workdir(code)
    start = time.monotonic()
    passed = 0
    try:
        for case in suite.cases:
            remaining = max_total_s - (time.monotonic() - start)
            if remaining <= 0:
                return TIMEOUT, passed
            run = _run_case(sandbox, workdir, suite, case.stdin, min(timeout_s, remaining))
            if run.sandbox_error:
                return SANDBOX_ERROR, passed
            if run.timed_out:
                return TIMEOUT, passed
            if run.output_limited:
                return OUTPUT_LIMIT, passed
            if run.returncode != 0:
                return RUNTIME_ERROR, passed
            if suite.mode == "call":
                try:
                    value = _call_value(run)
                except (ValueError, UnicodeDecodeError):
                    return RUNTIME_ERROR, passed
                ok = call_result_matches(value, case.expected, tol)
            else:
                ok = stdout_matches(run.stdout.decode("utf-8", "replace"), case.expected, tol)
            if not ok:
                return WRONG, passed
            passed += 1
        return CORRECT, passed
    finally:
        sandbox.remove_workdir(workdir)


def score_code(solution_str: str, ground_truth, extra_info, sandbox: Sandbox, timeout_s: float,
               max_total_s: float, tol: float) -> dict:
    try:
        suite = parse_tests(ground_truth, extra_info)
    except BadGroundTruth as e:
        return make_result(False, BAD_GROUND_TRUTH, str(e)[:200])
    if not suite.cases:
        return make_result(False, BAD_GROUND_TRUTH, "no test cases")
    code = extract_code(sanitize(solution_str)) if isinstance(solution_str, str) else None
    if code is None:
        return make_result(False, NO_ANSWER, None)
    reason, passed = run_tests(sandbox, code, suite, timeout_s, max_total_s, tol)
    return make_result(reason == CORRECT, reason, f"{passed}/{len(suite.cases)} tests passed")
