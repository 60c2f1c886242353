"""Code converters: LiveCodeBench windows and compressed private tests, the training JSON, both
ground-truth formats -- checked by running a correct and a wrong program through our sandboxed
code verifier on the converted rows."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import zlib
from pathlib import Path

import pandas as pd
import pytest

from aspo.data import code_tests, livecodebench
from aspo.data.prepare import prepare_code_train, prepare_livecodebench
from aspo.data.schema import ConversionError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
LCB = str(FIXTURES / "livecodebench_code_generation_lite.jsonl")

SOLUTIONS = {  # question_id -> (correct program, wrong program)
    "abc370_a": ("a, b = map(int, input().split())\nprint(a + b)", "print(0)"),
    "3501": ("class Solution:\n    def maxProduct(self, nums):\n        s = sorted(nums)\n        return s[-1] * s[-2]",
             "class Solution:\n    def maxProduct(self, nums):\n        return 0"),
    "abc395_a": ("print(2 * int(input()))", "print(int(input()))"),
}


def _response(code: str) -> str:
    return f"<think>thinking</think>\n```python\n{code}\n```"


@pytest.fixture(scope="module")
def fast_reward():
    import reward

    reward.configure(code_timeout_s=5.0, code_slots=2)
    return reward


@pytest.mark.parametrize("fmt", code_tests.FORMATS)
def test_lcb_windows_and_tests(tmp_path, fmt):
    v5 = pd.read_parquet(prepare_livecodebench("livecodebench_v5", tmp_path, [LCB], fmt))
    v6 = pd.read_parquet(prepare_livecodebench("livecodebench_v6", tmp_path, [LCB], fmt))
    # 2024-09-07 and 2024-10-19 fall in v5, 2025-03-01 in v6; 2023 and 2025-06 in neither.
    assert list(v5.extra_info.map(lambda e: e["question_id"])) == ["abc370_a", "3501"]
    assert list(v6.extra_info.map(lambda e: e["question_id"])) == ["abc395_a"]
    assert set(v5.data_source) == {"livecodebench_v5"} and set(v6.data_source) == {"livecodebench_v6"}
    gt = json.loads(v5.iloc[0].reward_model["ground_truth"])
    if fmt == "lcb":  # public + the two compressed private tests
        assert [t["input"] for t in gt] == ["1 2\n", "10 20\n", "-1 1\n"]
        assert {t["testtype"] for t in gt} == {"stdin"}
    else:
        assert gt == {"inputs": ["1 2\n", "10 20\n", "-1 1\n"], "outputs": ["3\n", "30\n", "0\n"]}
    functional = json.loads(v5.iloc[1].reward_model["ground_truth"])
    if fmt == "io":
        assert functional == {"inputs": [[[3, 4, 5, 2]], [[1, 5, 4, 5]]], "outputs": [20, 25], "fn_name": "maxProduct"}
    assert v5.iloc[1].extra_info["fn_name"] == "maxProduct"
    assert "```python\nclass Solution:" in v5.iloc[1].prompt[0]["content"]
    assert "# YOUR CODE HERE" in v5.iloc[0].prompt[0]["content"]


@pytest.mark.parametrize("fmt", code_tests.FORMATS)
def test_converted_lcb_rows_score_with_the_sandbox(tmp_path, fmt, fast_reward):
    rows = pd.concat([pd.read_parquet(prepare_livecodebench(v, tmp_path, [LCB], fmt)) for v in livecodebench.VERSIONS])
    for row in rows.itertuples():
        good, bad = SOLUTIONS[row.extra_info["question_id"]]
        gt, info = row.reward_model["ground_truth"], dict(row.extra_info)
        scores = [fast_reward.compute_score(row.data_source, _response(code), gt, info)["score"] for code in (good, bad)]
        assert scores == [1.0, 0.0], (row.extra_info["question_id"], fmt)


def test_code_training_json_both_formats(tmp_path, fast_reward):
    for fmt in (None, *code_tests.FORMATS):
        df = pd.read_parquet(prepare_code_train(tmp_path / str(fmt), str(FIXTURES / "archer_code_train.json"), fmt))
        assert list(df.data_source) == ["code", "livecodebench"]
        programs = ["a, b = map(int, input().split())\nprint(a + b)",
                    "class Solution:\n    def twoSum(self, nums, target):\n"
                    "        seen = {}\n        for i, x in enumerate(nums):\n"
                    "            if target - x in seen:\n                return [seen[target - x], i]\n"
                    "            seen[x] = i"]
        for row, code in zip(df.itertuples(), programs):
            result = fast_reward.compute_score(row.data_source, _response(code), row.reward_model["ground_truth"],
                                               dict(row.extra_info))
            assert result["score"] == 1.0, (fmt, result)


def test_private_tests_decoding_refuses_pickled_objects():
    tests = [{"input": "1\n", "output": "1\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()
    assert livecodebench.decode_private_tests(packed, "t") == tests
    assert livecodebench.decode_private_tests(json.dumps(tests), "t") == tests

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(ConversionError, match="refusing to load builtins.print"):
        livecodebench.decode_private_tests(evil, "t")


def test_format_round_trip():
    lcb = [{"input": "[1, 2]\n3", "output": "[0]", "testtype": "functional"}]
    suite = code_tests.parse(json.dumps(lcb), "f", "t")
    assert code_tests.parse(code_tests.dump(suite, "io"), None, "t") == suite
    assert json.loads(code_tests.dump(suite, "lcb")) == [{"input": "[1, 2]\n3", "output": "[0]", "testtype": "functional"}]
    with pytest.raises(ConversionError, match="no function name"):
        code_tests.parse(json.dumps(lcb), None, "t")


def test_empty_window_and_bad_date_fail_clearly(tmp_path):
    old = tmp_path / "old.jsonl"
    rec = json.loads(Path(LCB).read_text().splitlines()[3])  # 2023: outside both windows
    old.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ConversionError, match="no rows were produced.*date window"):
        prepare_livecodebench("livecodebench_v5", tmp_path, [str(old)])
    rec["contest_date"] = "last tuesday"
    old.write_text(json.dumps(rec) + "\n")
    with pytest.raises(ConversionError, match="contest_date 'last tuesday' is not an ISO date"):
        prepare_livecodebench("livecodebench_v5", tmp_path, [str(old)])


def test_cli(tmp_path):
    script = ROOT / "scripts" / "prepare_code.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--only", "livecodebench_v5",
                           "livecodebench_v6", "--input", LCB, "--test-format", "io"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["livecodebench_v5.parquet", "livecodebench_v6.parquet"]
