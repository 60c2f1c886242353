"""scripts/bench_cpu_step.py's summary and table (no training run), and the rollout's batch-size knob."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cpu_step", ROOT / "scripts" / "bench_cpu_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(name, step_times, wall):
    steps = {
        i + 1: {
            "timing_s/gen": t * 0.4,
            "timing_s/old_log_prob": t * 0.1,
            "timing_s/update_actor": t * 0.4,
            "timing_s/update_weights": t * 0.05,
            "timing_s/step": t,
            "perf/total_num_tokens": 3000,
        }
        for i, t in enumerate(step_times)
    }
    return {"name": name, "steps": steps, "wall_s": wall, "procs": 30, "rss_mib": 8 * 1024}


def test_summary_leaves_out_the_warm_up_step_and_accounts_for_the_whole_step():
    bench = _bench()
    rows = bench.summarize(_result("after", [100.0, 60.0, 50.0], wall=300.0))
    assert rows["_measured"] == [2, 3]
    assert rows["**s/step**"] == pytest.approx(55.0)
    assert rows["generation"] == pytest.approx(22.0)
    assert rows["ref log-probs"] is None  # no reference model in the run
    parts = sum(v for k, v in rows.items() if k in dict(bench.PHASES) and v is not None)
    assert parts + rows["other (reward, advantages, metrics)"] == pytest.approx(55.0)
    assert rows["start-up (s)"] == pytest.approx(300.0 - 210.0)
    assert rows["peak RSS (GiB)"] == pytest.approx(8.0)


def test_table_puts_variants_side_by_side_with_the_speed_up():
    bench = _bench()
    summaries = {
        "before": bench.summarize(_result("before", [200.0, 180.0], wall=400.0)),
        "after": bench.summarize(_result("after", [70.0, 60.0], wall=200.0)),
    }
    text = bench.table(summaries)
    assert "before (steps 2-2)" in text and "after (steps 2-2)" in text
    assert "| **s/step** | 180.0 | 60.0 |" in text
    assert "after / before s/step: 0.33 (3.00x faster)" in text


def test_three_variants_are_each_compared_with_the_first_and_after_with_recompute():
    bench = _bench()
    summaries = {
        name: bench.summarize(_result(name, [s, s], wall=100.0))
        for name, s in (("before", 240.0), ("after", 60.0), ("recompute", 80.0))
    }
    text = bench.table(summaries)
    assert "| **s/step** | 240.0 | 60.0 | 80.0 |" in text
    assert "after / before s/step: 0.25 (4.00x faster)" in text
    assert "recompute / before s/step: 0.33 (3.00x faster)" in text
    assert "after / recompute s/step: 0.75 (1.33x faster)" in text


def test_variants_differ_only_in_the_documented_knobs():
    bench = _bench()
    assert bench.VARIANTS["after"] == {"env": {}, "overrides": []}
    assert set(bench.VARIANTS["before"]["env"]) == {"ASPO_CPU_THREADS", "ASPO_HF_MAX_BATCH"}
    assert "aspo.reuse_rollout_log_probs=false" in bench.VARIANTS["before"]["overrides"]
    assert bench.VARIANTS["recompute"] == {"env": {}, "overrides": ["aspo.reuse_rollout_log_probs=false"]}


def test_rollout_chunks_requests_by_max_batch():
    from aspo.cpu.rollout import _chunks

    assert _chunks(list(range(5)), 0) == [[0, 1, 2, 3, 4]]
    assert _chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert _chunks(list(range(3)), 1) == [[0], [1], [2]]
