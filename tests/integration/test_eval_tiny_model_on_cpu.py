"""``scripts/eval.py`` end to end on CPU: the tiny random Qwen2 fixture, the transformers backend,
the shipped arithmetic set and a converted AIME fixture, real sampling, our verifiers, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_eval_cli_with_tiny_model(tmp_path):
    from aspo.fixtures import ensure_fixtures

    fx = ensure_fixtures()
    data = tmp_path / "data"
    prep = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_math.py"), "--out", str(data), "--only",
                           "aime2024", "--input", str(ROOT / "tests" / "fixtures" / "data" / "aime_2024.jsonl")],
                          capture_output=True, text=True, timeout=120)
    assert prep.returncode == 0, prep.stderr
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval.py"), "--model", fx["model"], "--backend", "hf",
                           "--data", fx["val"], str(data / "aime2024.parquet"), "--n", "3", "--limit", "4",
                           "--max-response-length", "12", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert set(report["benchmarks"]) == {"math", "aime2024"}
    arith, aime = report["benchmarks"]["math"], report["benchmarks"]["aime2024"]
    assert (arith["problems"], arith["n"], aime["problems"]) == (4, 3, 3)
    for res in (arith, aime):
        assert 0.0 <= res["avg@3"] <= res["pass@3"] <= 100.0 and res["generated_tokens"] > 0
    lines = (out / "math.samples.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["reason"] for x in lines)
    md = (out / "results.md").read_text()
    assert "| AIME 2024 | 3 | 3 |" in md and "| 49.0 |" in md
    assert "| AIME 2024 |" in done.stdout  # the table is printed too
