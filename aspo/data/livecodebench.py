"""LiveCodeBench (``livecodebench/code_generation_lite``) -> verl rows, windowed by contest date.

The paper's windows: v5 = problems dated 2024-08-01 .. 2025-02-01, v6 = 2025-02-01 .. 2025-05-01
(start inclusive, end exclusive). Upstream stores ``public_test_cases`` as a JSON string and
``private_test_cases`` either as JSON or as base64(zlib(pickle(JSON string))); the pickle is read
with an unpickler that refuses every class, so a tampered file cannot run code here.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aspo.data import code_tests
from aspo.data.io import pick
from aspo.data.schema import ConversionError, make_row


@dataclass(frozen=True)
class LcbVersion:
    name: str  # data_source and output stem
    release: str  # upstream version_tag
    start: str  # ISO date, inclusive
    end: str  # ISO date, exclusive


VERSIONS = {
    "livecodebench_v5": LcbVersion("livecodebench_v5", "release_v5", "2024-08-01", "2025-02-01"),
    "livecodebench_v6": LcbVersion("livecodebench_v6", "release_v6", "2025-02-01", "2025-05-01"),
}
HUB_ID = "livecodebench/code_generation_lite"
# release_vN is the union of these files up to test{N}.jsonl (test.jsonl is release_v1).
HUB_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")

# LiveCodeBench's own generation prompt (lcb_runner), so scores are comparable with its leaderboard.
_HEAD = ("You will be given a question (problem specification) and will generate a correct Python program "
         "that matches the specification and passes all tests.\n\nQuestion: {question}\n\n")
_WITH_STARTER = ("### Format: You will use the following starter code to write the solution to the problem "
                 "and enclose your code within delimiters.\n```python\n{starter}\n```\n\n"
                 "### Answer: (use the provided format with backticks)\n\n")
_STDIN = ("### Format: Read the inputs from stdin solve the problem and write the answer to stdout (do not "
          "directly test on the sample inputs). Enclose your code within delimiters as follows. Ensure that "
          "when the python program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
          "```python\n# YOUR CODE HERE\n```\n\n### Answer: (use the provided format with backticks)\n\n")


def build_prompt(question: str, starter_code: str | None) -> str:
    tail = _WITH_STARTER.format(starter=starter_code) if starter_code and starter_code.strip() else _STDIN
    return _HEAD.format(question=question.strip()) + tail


class _StringsOnly(pickle.Unpickler):
    """Upstream pickles a plain ``str``; anything needing a class is refused."""

    def find_class(self, module: str, name: str):  # noqa: D401
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from private_test_cases")


def decode_private_tests(value: Any, where: str) -> list[dict[str, Any]]:
    """Plain JSON, or base64 -> zlib -> pickle (a JSON string) -> JSON, as upstream ships them."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        pass
    try:
        raw = zlib.decompress(base64.b64decode(str(value).encode("ascii")))
        obj = _StringsOnly(io.BytesIO(raw)).load()
        return json.loads(obj) if isinstance(obj, (str, bytes)) else obj
    except Exception as err:
        raise ConversionError(f"{where}: private_test_cases is neither JSON nor base64(zlib(pickle(JSON))): "
                              f"{type(err).__name__}: {err}") from None


def _date(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "")).replace(tzinfo=None)
    except ValueError:
        raise ConversionError(f"{where}: contest_date {value!r} is not an ISO date") from None


def in_window(record: dict[str, Any], version: LcbVersion, where: str) -> bool:
    d = _date(pick(record, ("contest_date",), "contest_date", where), where)
    return datetime.fromisoformat(version.start) <= d < datetime.fromisoformat(version.end)


def _fn_name(record: dict[str, Any]) -> str | None:
    meta = record.get("metadata") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = {}
    return (meta.get("func_name") if isinstance(meta, dict) else None) or record.get("fn_name") or None


def convert_record(record: dict[str, Any], version: LcbVersion, index: int, test_format: str = "lcb") -> dict[str, Any]:
    """One upstream LCB record -> one verl row with every test (public + private) in ``test_format``."""
    where = f"{version.name} record {index} ({record.get('question_id', '?')})"
    question = pick(record, ("question_content",), "question_content", where)
    public = record.get("public_test_cases") or "[]"
    public = json.loads(public) if isinstance(public, str) else list(public)
    tests = public + decode_private_tests(record.get("private_test_cases"), where)
    fn_name = _fn_name(record)
    suite = code_tests.from_lcb(tests, fn_name, where)
    extra: dict[str, Any] = {
        "question_id": str(record.get("question_id", "")),
        "contest_date": _date(record["contest_date"], where).date().isoformat(),
        "difficulty": str(record.get("difficulty", "")),
        "platform": str(record.get("platform", "")),
    }
    if fn_name:
        extra["fn_name"] = fn_name  # the verifier reads the function name from here (lcb format)
    prompt = build_prompt(question, record.get("starter_code"))
    return make_row(version.name, prompt, "code", code_tests.dump(suite, test_format), "test", index, extra)


def load_hub_release(version: LcbVersion) -> list[dict[str, Any]]:
    """The jsonl files making up ``version.release`` (no loading script: datasets >= 4 dropped them)."""
    from huggingface_hub import hf_hub_download

    from aspo.data.io import load_local

    upto = int(version.release.rsplit("v", 1)[1])
    rows: list[dict[str, Any]] = []
    for name in HUB_FILES[:upto]:
        try:
            path = hf_hub_download(HUB_ID, name, repo_type="dataset")
        except Exception as err:
            raise ConversionError(f"could not download {HUB_ID}/{name}: {type(err).__name__}: {err}. "
                                  "Download the jsonl files elsewhere and pass them with --input") from None
        rows.extend(load_local(path))
    return rows
