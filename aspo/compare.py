"""Side-by-side summary of runs that differ only in their loss: one Markdown table, one PNG.

Each run is a metrics JSONL (verl's file logger). Columns: validation accuracy at the first and
last validated step and its best, mean training reward, mean entropy, mean clip and dual-clip
fractions, the mean NLL scale ratio of negative- to positive-advantage responses (ASymPO's scale
imbalance, ``actor/nll_ratio_neg_pos``; the median over steps), the largest trajectory staleness reached for the newest
and the oldest token of a trajectory (verl's ``training/off_policy/trajectory_staleness{,_worst}/max``;
0 in sync mode), seconds per step (verl's
``timing_s/step``) and the steps per hour it implies.

``panels="async"`` draws the asynchronous-training view instead of the loss view: reward, entropy,
NLL scale ratio, staleness and step time by step.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from aspo.runlog import Series, first_match, load_series, matching

# Validation accuracy: strict (boxed) accuracy first, then verl's reward mean.
VAL_ACC = ["val-core/*/acc/mean@*", "val-aux/*/acc/mean@*", "val-core/*/reward/mean@*"]
VAL_LOOSE = ["val-aux/*/last_number_acc/mean@*"]
COLUMNS = {
    "reward": ["critic/score/mean"],
    "entropy": ["actor/entropy"],
    "clipfrac": ["actor/pg_clipfrac"],
    "dualclip": ["actor/pg_dualclipfrac_pos"],
    "dualclip_neg": ["actor/pg_dualclipfrac_neg"],
    "nll_ratio": ["actor/nll_ratio_neg_pos"],
    "s_per_step": ["timing_s/step"],
}
# A ratio whose denominator can approach 0 (positive responses' NLL as the policy sharpens) is
# heavy-tailed: reported as the median over steps, not the mean.
MEDIAN_COLUMNS = {"nll_ratio"}
# Reported as the largest value over the run, not the mean.
# verl's staleness of a trajectory: policy versions between the one training on it and the one that
# generated its newest token (``trajectory_staleness``) or its oldest (``_worst``). A partial rollout
# resumed after a weight sync mixes versions, so the two differ.
MAXIMA = {
    "staleness": ["training/off_policy/trajectory_staleness/max"],
    "staleness_worst": ["training/off_policy/trajectory_staleness_worst/max"],
}


@dataclass
class RunSummary:
    name: str
    steps: int
    val_start: float | None
    val_end: float | None
    val_best: float | None
    val_loose_end: float | None
    means: dict[str, float | None]
    maxima: dict[str, float | None]


def _values(series: Series, key: str | None) -> list[float]:
    if key is None:
        return []
    return [series[key][s] for s in sorted(series[key])]


def summarize(name: str, series: Series) -> RunSummary:
    val = _values(series, first_match(series, VAL_ACC))
    loose = _values(series, first_match(series, VAL_LOOSE))
    means = {}
    for col, patterns in COLUMNS.items():
        values = _values(series, first_match(series, patterns))
        average = statistics.median if col in MEDIAN_COLUMNS else statistics.fmean
        means[col] = average(values) if values else None
    maxima = {}
    for col, patterns in MAXIMA.items():
        values = _values(series, first_match(series, patterns))
        maxima[col] = max(values) if values else None
    steps = max((max(v) for v in series.values() if v), default=0)
    return RunSummary(
        name=name,
        steps=steps,
        val_start=val[0] if val else None,
        val_end=val[-1] if val else None,
        val_best=max(val) if val else None,
        val_loose_end=loose[-1] if loose else None,
        means=means,
        maxima=maxima,
    )


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown_table(rows: list[RunSummary]) -> str:
    header = (
        "| loss | steps | val acc start | val acc end | val acc best | val last-number acc end | mean reward "
        "| mean entropy | clip frac | dual-clip frac (A>0 / A<0) | NLL ratio A<0 / A>0 (median) | staleness max (newest / oldest token) "
        "| s/step | steps/hour |"
    )
    lines = [header, "|" + "|".join(["---"] * 14) + "|"]
    for r in rows:
        m = r.means
        per_hour = 3600 / m["s_per_step"] if m["s_per_step"] else None
        staleness = " / ".join("n/a" if r.maxima[k] is None else str(int(r.maxima[k])) for k in ("staleness", "staleness_worst"))
        lines.append(
            f"| {r.name} | {r.steps} | {_fmt(r.val_start)} | {_fmt(r.val_end)} | {_fmt(r.val_best)} "
            f"| {_fmt(r.val_loose_end)} | {_fmt(m['reward'])} | {_fmt(m['entropy'])} | {_fmt(m['clipfrac'], 4)} "
            f"| {_fmt(m['dualclip'], 4)} / {_fmt(m['dualclip_neg'], 4)} | {_fmt(m['nll_ratio'])} "
            f"| {staleness} | {_fmt(m['s_per_step'], 1)} | {_fmt(per_hour, 0)} |"
        )
    return "\n".join(lines) + "\n"


PANELS = {
    "validation accuracy": VAL_ACC[:1] + VAL_LOOSE,
    "train reward (critic/score/mean)": ["critic/score/mean"],
    "entropy": ["actor/entropy"],
    "clip fraction": ["actor/pg_clipfrac"],
    "dual-clip fraction (A>0 solid, A<0 dashed)": ["actor/pg_dualclipfrac_pos", "actor/pg_dualclipfrac_neg"],
    "response length": ["response_length/mean"],
}
ASYNC_PANELS = {
    "validation accuracy": VAL_ACC[:1] + VAL_LOOSE,
    "train reward (critic/score/mean)": ["critic/score/mean"],
    "entropy": ["actor/entropy"],
    "NLL scale ratio, A<0 / A>0 (actor/nll_ratio_neg_pos)": ["actor/nll_ratio_neg_pos"],
    "trajectory staleness, max (newest token solid, oldest dashed)": [
        "training/off_policy/trajectory_staleness/max", "training/off_policy/trajectory_staleness_worst/max"],
    "seconds per step": ["timing_s/step"],
}
PANEL_SETS = {"losses": PANELS, "async": ASYNC_PANELS}
# Heavy-tailed panels drawn on a log scale.
LOG_PANELS = {"NLL scale ratio, A<0 / A>0 (actor/nll_ratio_neg_pos)"}


def plot_runs(runs: dict[str, Series], out: str | Path, panels: str = "losses") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if panels not in PANEL_SETS:
        raise ValueError(f"unknown panel set {panels!r}; choose one of {sorted(PANEL_SETS)}")
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (title, patterns) in zip(axes.flat, PANEL_SETS[panels].items(), strict=True):
        drawn = False
        for run_index, (name, series) in enumerate(runs.items()):
            for i, pattern in enumerate(patterns):
                for key in matching(series, pattern)[:1]:
                    steps = sorted(series[key])
                    # One colour per run in every panel; a panel's second metric is dashed.
                    label = name if len(patterns) == 1 else f"{name} ({key.split('/')[-2 if key.startswith('val') else -1]})"
                    ax.plot(steps, [series[key][s] for s in steps], "-" if i == 0 else "--", color=f"C{run_index}",
                            marker="o", markersize=3, label=label)
                    drawn = True
        ax.set_title(title)
        ax.set_xlabel("step")
        if title in LOG_PANELS and drawn:
            ax.set_yscale("log")
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def compare(
    run_files: dict[str, str | Path], out_dir: str | Path, stem: str = "comparison", panels: str = "losses"
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.png`` for the given ``{run name: metrics.jsonl}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, path in run_files.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"metrics file for run {name!r} not found: {path}")
        runs[name] = load_series(path)
    table = markdown_table([summarize(name, s) for name, s in runs.items()])
    md = out_dir / f"{stem}.md"
    md.write_text(table)
    png = plot_runs(runs, out_dir / f"{stem}.png", panels)
    return md, png
