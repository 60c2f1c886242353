"""Code test suites in the two ground-truth formats our code verifier reads, and conversion between them.

* ``io``:  ``{"inputs": [...], "outputs": [...]}`` (stdin/stdout), plus ``"fn_name"`` for call-based
  problems, where each input is the list of arguments and each output the return value.
* ``lcb``: LiveCodeBench's list ``[{"input", "output", "testtype": "stdin"|"functional"}]``; a
  functional input is one JSON value per line (the arguments), the output one JSON value; the
  function name travels in ``extra_info["fn_name"]``.

``Tests`` is the neutral form both are parsed into and written from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aspo.data.schema import ConversionError

FORMATS = ("lcb", "io")


@dataclass(frozen=True)
class Tests:
    functional: bool
    fn_name: str | None
    inputs: tuple[Any, ...]  # stdin text, or the argument list (decoded JSON values)
    outputs: tuple[Any, ...]  # expected stdout text, or the return value (decoded JSON)


def _json_or_text(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return x
    return x


def from_lcb(tests: list[dict[str, Any]], fn_name: str | None, where: str) -> Tests:
    if not tests:
        raise ConversionError(f"{where}: empty LiveCodeBench test list")
    types = {t.get("testtype", "stdin") for t in tests}
    if types == {"functional"}:
        if not fn_name:
            raise ConversionError(f"{where}: functional tests but no function name (metadata.func_name)")
        args = tuple([json.loads(line) for line in str(t["input"]).split("\n") if line.strip()] for t in tests)
        return Tests(True, fn_name, args, tuple(_json_or_text(t["output"]) for t in tests))
    if types == {"stdin"}:
        return Tests(False, None, tuple(str(t["input"]) for t in tests), tuple(str(t["output"]) for t in tests))
    raise ConversionError(f"{where}: mixed LiveCodeBench test types {sorted(types)}")


def from_io(tests: dict[str, Any], where: str) -> Tests:
    inputs, outputs = tests.get("inputs"), tests.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs) or not inputs:
        raise ConversionError(f'{where}: "inputs"/"outputs" must be non-empty lists of equal length')
    fn_name = tests.get("fn_name") or None
    if fn_name:
        args = tuple((a if isinstance(a, list) else [a]) for a in map(_json_or_text, inputs))
        return Tests(True, fn_name, args, tuple(map(_json_or_text, outputs)))
    as_text = lambda v: v if isinstance(v, str) else ("\n".join(v) if isinstance(v, list) else json.dumps(v))  # noqa: E731
    return Tests(False, None, tuple(map(as_text, inputs)), tuple(map(as_text, outputs)))


def parse(ground_truth: Any, fn_name: str | None, where: str) -> Tests:
    """Either format, as a JSON string or already decoded."""
    gt = json.loads(ground_truth) if isinstance(ground_truth, str) else ground_truth
    if isinstance(gt, dict):
        return from_io(gt, where)
    if isinstance(gt, list) and all(isinstance(t, dict) for t in gt):
        return from_lcb(gt, fn_name, where)
    raise ConversionError(f"{where}: code ground truth is neither an inputs/outputs dict nor a LiveCodeBench list")


def dump(tests: Tests, fmt: str) -> str:
    """The JSON ground-truth string in ``fmt`` (``lcb`` or ``io``)."""
    if fmt == "io":
        out: dict[str, Any] = {"inputs": list(tests.inputs), "outputs": list(tests.outputs)}
        if tests.functional:
            out["fn_name"] = tests.fn_name
        return json.dumps(out)
    if fmt == "lcb":
        if tests.functional:
            return json.dumps([{"input": "\n".join(json.dumps(a) for a in args), "output": json.dumps(o),
                                "testtype": "functional"} for args, o in zip(tests.inputs, tests.outputs)])
        return json.dumps([{"input": i, "output": o, "testtype": "stdin"} for i, o in zip(tests.inputs, tests.outputs)])
    raise ConversionError(f"unknown test format {fmt!r}; use one of {', '.join(FORMATS)}")
