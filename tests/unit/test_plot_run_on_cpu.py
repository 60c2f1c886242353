"""scripts/plot_run.py turns a run's metrics JSONL into a PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_run.py"


def test_plot_run_writes_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    records = [
        {"step": s, "data": {"critic/score/mean": 0.1 * s, "actor/entropy": 3.0 - s, "actor/entropy_pos_adv": 2.9,
                             "actor/pg_clipfrac": 0.01, "response_length/mean": 10 + s, "val-core/math/acc/mean@4": 0.2}}
        for s in (1, 2, 3)
    ]
    metrics.write_text("\n".join(json.dumps(r) for r in records) + '\n{"step": 4, "da')  # torn last line
    proc = subprocess.run([sys.executable, str(SCRIPT), str(metrics)], capture_output=True, text=True, check=True)
    png = Path(proc.stdout.strip())
    assert png == metrics.with_suffix(".png") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_run_rejects_missing_file(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope.jsonl")], capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
