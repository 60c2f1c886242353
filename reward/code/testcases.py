"""Parse a code problem's ground truth into test cases (both formats of the contract).

* ``{"inputs": [...], "outputs": [...]}``: stdin/stdout tests; with ``"fn_name"`` call-based, each
  input the list of arguments (a JSON string or an already-decoded list), each output the value.
* LiveCodeBench: a list ``[{"input", "output", "testtype": "stdin"|"functional"}, ...]``; for
  functional tests the input is one JSON value per line (the arguments) and the output a JSON
  value; the function name comes from ``extra_info`` (``fn_name``/``func_name``, possibly under
  ``metadata``, itself possibly a JSON string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class BadGroundTruth(ValueError):
    """The ground truth is not in a known format; the message says what was found."""


@dataclass(frozen=True)
class TestCase:
    stdin: bytes  # what the program reads (stdin mode) or the JSON argument list (call mode)
    expected: Any  # expected stdout text (str) or expected return value (JSON value)


@dataclass(frozen=True)
class TestSuite:
    mode: str  # "stdin" or "call"
    fn_name: str | None
    cases: tuple[TestCase, ...]


def _fn_name_from(extra_info: Any) -> str | None:
    if not isinstance(extra_info, dict):
        return None
    for source in (extra_info, extra_info.get("metadata")):
        if isinstance(source, str):
            try:
                source = json.loads(source)
            except ValueError:
                continue
        if isinstance(source, dict):
            for key in ("fn_name", "func_name", "function_name"):
                if isinstance(source.get(key), str) and source[key]:
                    return source[key]
    return None


def _as_text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, list) and all(isinstance(s, str) for s in x):
        return "\n".join(x)  # some datasets split stdin into lines
    return json.dumps(x)


def _call_args(x: Any, lcb_lines: bool) -> list:
    if isinstance(x, str):
        if lcb_lines:
            return [json.loads(line) for line in x.split("\n") if line.strip()]
        x = json.loads(x)
    return x if isinstance(x, list) else [x]


def _call_expected(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def parse_tests(ground_truth: Any, extra_info: Any = None) -> TestSuite:
    """Decode ``ground_truth`` (JSON string, dict or list) into a ``TestSuite``."""
    gt = ground_truth
    if isinstance(gt, (bytes, bytearray)):
        gt = gt.decode("utf-8", "replace")
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except ValueError as e:
            raise BadGroundTruth(f"code ground truth is not JSON: {e}") from None
    try:
        if isinstance(gt, dict):
            inputs, outputs = gt.get("inputs"), gt.get("outputs")
            if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
                raise BadGroundTruth('code ground truth needs "inputs" and "outputs" lists of equal length')
            fn_name = gt.get("fn_name") or None
            if fn_name:
                cases = tuple(TestCase(json.dumps(_call_args(i, False)).encode(), _call_expected(o))
                              for i, o in zip(inputs, outputs))
                return TestSuite("call", fn_name, cases)
            cases = tuple(TestCase(_as_text(i).encode("utf-8", "replace"), _as_text(o)) for i, o in zip(inputs, outputs))
            return TestSuite("stdin", None, cases)
        if isinstance(gt, list) and all(isinstance(t, dict) for t in gt):
            types = {t.get("testtype", "stdin") for t in gt}
            if types == {"functional"}:
                fn_name = _fn_name_from(extra_info)
                if not fn_name:
                    raise BadGroundTruth("functional LiveCodeBench tests need the function name in "
                                         "extra_info['fn_name'] or extra_info['metadata']['func_name']")
                cases = tuple(TestCase(json.dumps(_call_args(t["input"], True)).encode(), _call_expected(t["output"]))
                              for t in gt)
                return TestSuite("call", fn_name, cases)
            if types == {"stdin"}:
                cases = tuple(TestCase(_as_text(t["input"]).encode("utf-8", "replace"), _as_text(t["output"])) for t in gt)
                return TestSuite("stdin", None, cases)
            raise BadGroundTruth(f"mixed or unknown LiveCodeBench testtype(s) {sorted(map(str, types))}")
    except (KeyError, ValueError, TypeError) as e:
        if isinstance(e, BadGroundTruth):
            raise
        raise BadGroundTruth(f"malformed code ground truth: {type(e).__name__}: {e}") from None
    raise BadGroundTruth(f"code ground truth must be a dict with inputs/outputs or a LiveCodeBench list, got {type(gt).__name__}")
