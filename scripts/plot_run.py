#!/usr/bin/env python
"""Plot a run's metrics JSONL (verl's file logger format) to a PNG.

    python scripts/plot_run.py runs/aspo-quickstart/aspo/metrics.jsonl [--out run.png]

Panels: reward (train score, validation avg@k), entropy (all tokens and by advantage sign), clip
and dual-clip fractions, response length. Metrics a run did not log are skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aspo.runlog import Series, load_series, matching

PANELS = {
    # last_number_acc: the arithmetic task's shaped accuracy (right number, boxed or not).
    "reward": ["critic/score/mean", "val-core/*/acc/mean@*", "val-aux/*/last_number_acc/mean@*"],
    "entropy": ["actor/entropy", "actor/entropy_pos_adv", "actor/entropy_neg_adv"],
    "clip fractions": [
        "actor/pg_clipfrac",
        "actor/pg_clipfrac_upper",
        "actor/pg_clipfrac_lower",
        "actor/pg_dualclipfrac_pos",
        "actor/pg_dualclipfrac_neg",
    ],
    "response length": ["response_length/mean"],
}


def plot(series: Series, out: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, (panel, patterns) in zip(axes.flat, PANELS.items(), strict=True):
        keys = [k for p in patterns for k in matching(series, p)]
        for key in keys:
            steps = sorted(series[key])
            ax.plot(steps, [series[key][s] for s in steps], marker="o", markersize=3, label=key)
        ax.set_title(panel)
        ax.set_xlabel("step")
        if keys:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, help="metrics JSONL written by aspo-train (verl file logger)")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: next to the JSONL)")
    args = parser.parse_args()
    if not args.metrics.exists():
        parser.error(f"{args.metrics} does not exist; aspo-train prints the metrics path when it finishes")
    series = load_series(args.metrics)
    if not series:
        parser.error(f"{args.metrics} has no numeric metrics")
    out = plot(series, args.out or args.metrics.with_suffix(".png"), title=str(args.metrics.parent))
    print(out)


if __name__ == "__main__":
    main()
