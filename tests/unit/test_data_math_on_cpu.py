"""Math converters: every benchmark's upstream fixture -> verl parquet rows our math verifier scores.

The fixtures in tests/fixtures/data are in the upstream column layouts (see its README); the
converted rows must carry the right data_source, a \\boxed{} instruction, a string ground truth,
and must score 1.0 through ``reward.compute_score`` for a response boxing that answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aspo.data import math as math_data
from aspo.data.io import load_local
from aspo.data.prepare import prepare_math
from aspo.data.schema import ConversionError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
FIXTURE_OF = {
    "math_train": "deepscaler_train.jsonl",
    "aime2024": "aime_2024.jsonl",
    "aime2025": "aime_2025.jsonl",
    "amc2023": "amc23.jsonl",
    "math500": "math500.jsonl",
    "minerva": "minerva.jsonl",
    "olympiadbench": "olympiadbench.jsonl",
}
EXPECTED_FIRST_ANSWER = {
    "math_train": "2", "aime2024": "204", "aime2025": "70", "amc2023": "27",
    "math500": "\\left( 3, \\frac{\\pi}{2} \\right)", "minerva": "0.49", "olympiadbench": "2",
}


@pytest.mark.parametrize("name", sorted(FIXTURE_OF))
def test_fixture_converts_to_verl_rows(tmp_path, name):
    out = prepare_math(name, tmp_path, str(FIXTURES / FIXTURE_OF[name]))
    df = pd.read_parquet(out)
    upstream = load_local(FIXTURES / FIXTURE_OF[name])
    assert len(df) == len(upstream)
    assert list(df.columns) == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    src = math_data.SOURCES[name]
    assert set(df.data_source) == {src.data_source}
    assert set(df.ability) == {"math"}
    first = df.iloc[0]
    assert first.reward_model == {"style": "rule", "ground_truth": EXPECTED_FIRST_ANSWER[name]}
    assert first.extra_info["split"] == src.split and list(df.extra_info.map(lambda e: e["index"])) == list(range(len(df)))
    (message,) = first.prompt
    assert message["role"] == "user" and message["content"].endswith("within \\boxed{}.")


def test_converted_rows_score_with_the_reward_verifier(tmp_path):
    import reward

    for name in ("aime2024", "amc2023", "math500", "olympiadbench"):
        df = pd.read_parquet(prepare_math(name, tmp_path, str(FIXTURES / FIXTURE_OF[name])))
        for row in df.itertuples():
            gt = row.reward_model["ground_truth"]
            right = reward.compute_score(row.data_source, f"<think>...</think> The answer is \\boxed{{{gt}}}.", gt,
                                         row.extra_info)
            wrong = reward.compute_score(row.data_source, "<think>...</think> \\boxed{123456789}", gt, row.extra_info)
            assert (right["score"], wrong["score"]) == (1.0, 0.0), (name, gt, right, wrong)


def test_answers_are_normalised():
    assert math_data.normalize_answer(36.0, "t") == ("36", ["36"])
    assert math_data.normalize_answer(["$(1,1)$", "$(2,4)$"], "t") == ("(1,1)", ["(1,1)", "(2,4)"])
    assert math_data.normalize_answer("0.49", "t") == ("0.49", ["0.49"])
    with pytest.raises(ConversionError, match="empty answer"):
        math_data.normalize_answer([None, " $ $ "], "t")


def test_olympiad_multiple_answers_kept_in_extra_info(tmp_path):
    df = pd.read_parquet(prepare_math("olympiadbench", tmp_path, str(FIXTURES / "olympiadbench.jsonl")))
    assert json.loads(df.iloc[1].extra_info["answers"]) == ["(1,1)", "(2,4)"]


def test_archer_verl_layout_training_json(tmp_path):
    df = pd.read_parquet(prepare_math("math_train", tmp_path, str(FIXTURES / "archer_math_train.json")))
    assert list(df.data_source) == ["math", "math"]
    assert [r["ground_truth"] for r in df.reward_model] == ["5", "2"]  # list answer -> first, rest kept
    assert df.iloc[0].prompt[0]["content"].startswith("What is $2+3$?")
    assert list(df.extra_info.map(lambda e: (e["split"], e["index"]))) == [("train", 0), ("train", 1)]


def test_parquet_input_and_limit(tmp_path):
    src = tmp_path / "MATH-500.parquet"
    pd.DataFrame(load_local(FIXTURES / "math500.jsonl")).to_parquet(src)
    df = pd.read_parquet(prepare_math("math500", tmp_path / "out", str(src), limit=1))
    assert len(df) == 1 and df.iloc[0].extra_info["upstream_unique_id"] == "test/precalculus/807.json"


def test_missing_column_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "1+1?", "solution_text": "2"}) + "\n")
    with pytest.raises(ConversionError, match=r"aime2024 record 0: no answer column \(looked for 'answer'.*has 'problem', 'solution_text'"):
        prepare_math("aime2024", tmp_path, str(bad))


def test_cli_writes_parquet_and_reports_errors(tmp_path):
    script = ROOT / "scripts" / "prepare_math.py"
    ok = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--only", "minerva",
                         "--input", str(FIXTURES / "minerva.jsonl")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "minerva.parquet").is_file() and "minerva: 100%" in ok.stderr  # tqdm progress bar
    bad = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--only", "minerva",
                          "--input", str(tmp_path / "missing.jsonl")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
