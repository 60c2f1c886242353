"""Run summaries and the side-by-side table from metrics JSONL files."""

import json

from aspo.compare import compare, summarize
from aspo.runlog import load_series


def write_run(path, val, reward, s_step=10.0, staleness=None):
    with open(path, "w") as f:
        for step, (v, r) in enumerate(zip(val, reward), start=1):
            data = {
                "actor/nll_ratio_neg_pos": 1.0 + step if step < 3 else 100.0,  # heavy tail at step 3
                "training/off_policy/trajectory_staleness/max": (staleness or [0] * len(val))[step - 1],
                "training/off_policy/trajectory_staleness_worst/max": (staleness or [0] * len(val))[step - 1] + 1,
                "critic/score/mean": r,
                "actor/entropy": 1.0,
                "actor/pg_clipfrac": 0.01,
                "actor/pg_dualclipfrac_pos": 0.001,
                "actor/pg_dualclipfrac_neg": 0.0,
                "timing_s/step": s_step,
                "val-core/arith/acc/mean@4": v,
                "val-aux/arith/last_number_acc/mean@4": v + 0.1,
                "note": "text is skipped",
            }
            f.write(json.dumps({"step": step, "data": data}) + "\n")
        f.write('{"step": 9, "data": {"critic/sc')  # a torn last line


def test_summary_numbers(tmp_path):
    p = tmp_path / "a.jsonl"
    write_run(p, val=[0.2, 0.5, 0.4], reward=[0.1, 0.2, 0.3])
    s = summarize("aspo", load_series(p))
    assert (s.val_start, s.val_end, s.val_best) == (0.2, 0.4, 0.5)
    assert s.val_loose_end == 0.5
    assert abs(s.means["reward"] - 0.2) < 1e-12
    assert s.means["s_per_step"] == 10.0
    assert s.means["nll_ratio"] == 3.0  # the median of 2, 3, 100
    assert s.steps == 3


def test_staleness_is_the_largest_reached_not_the_mean(tmp_path):
    p = tmp_path / "a.jsonl"
    write_run(p, val=[0.2, 0.5, 0.4], reward=[0.1, 0.2, 0.3], staleness=[0, 2, 1])
    maxima = summarize("aspo-async", load_series(p)).maxima
    assert maxima["staleness"] == 2 and maxima["staleness_worst"] == 3


def test_compare_writes_table_and_png(tmp_path):
    files = {}
    for name, val in (("aspo", [0.2, 0.6]), ("vanilla", [0.2, 0.5])):
        files[name] = tmp_path / f"{name}.jsonl"
        write_run(files[name], val=val, reward=[0.1, 0.2])
    md, png = compare(files, tmp_path / "out")
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| loss |") and len(lines) == 4
    assert lines[2].startswith("| aspo | 2 | 0.200 | 0.600 | 0.600 |")
    # NLL ratio 2.5 (mean of 2, 3), staleness 0, 10 s/step = 360 steps/hour
    assert lines[2].endswith("| 2.500 | 0 / 1 | 10.0 | 360 |"), lines[2]
    assert png.stat().st_size > 10_000


def test_async_panels_plot_and_unknown_panel_set_is_named(tmp_path):
    files = {"aspo-sync": tmp_path / "s.jsonl", "aspo-async": tmp_path / "a.jsonl"}
    write_run(files["aspo-sync"], val=[0.2, 0.5], reward=[0.1, 0.2])
    write_run(files["aspo-async"], val=[0.2, 0.4], reward=[0.1, 0.3], staleness=[0, 2])
    _, png = compare(files, tmp_path / "out", "async", panels="async")
    assert png.stat().st_size > 10_000
    import pytest

    with pytest.raises(ValueError, match="unknown panel set 'nope'"):
        compare(files, tmp_path / "out", "x", panels="nope")
