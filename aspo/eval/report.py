"""results.json and results.md: our avg@k / pass@k per benchmark beside the ASPO paper's numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from aspo.eval import benchmarks


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def markdown(summaries: Sequence[dict[str, Any]], model: str = "") -> str:
    lines = [f"# Evaluation{': ' + model if model else ''}", "",
             "| benchmark | problems | n | avg@n | paper avg@n | pass@n | paper pass@n |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        n, paper = s["n"], benchmarks.PAPER.get(s["benchmark"], {})
        lines.append(f"| {benchmarks.LABELS.get(s['benchmark'], s['benchmark'])} | {s['problems']} | {n} | "
                     f"{_fmt(s[f'avg@{n}'])} | {_fmt(paper.get('avg'))} | {_fmt(s[f'pass@{n}'])} | {_fmt(paper.get('pass'))} |")
    math = [s for s in summaries if s["benchmark"] in benchmarks.MATH_BENCHMARKS]
    if len(math) == len(benchmarks.MATH_BENCHMARKS):
        mean = sum(s[f"avg@{s['n']}"] for s in math) / len(math)
        lines.append(f"| **math average** | | | **{mean:.1f}** | **{benchmarks.PAPER_MATH_MEAN['aspo']}** "
                     f"(GRPO {benchmarks.PAPER_MATH_MEAN['grpo']}) | | |")
    lines += ["", "Paper: ASPO (arXiv 2510.06062), DeepSeek-R1-Distill-Qwen-1.5B; math avg@k, code avg@k / pass@k "
              "(k = 8 for v5, 16 for v6). pass@k is the unbiased estimator 1 - C(n-c,k)/C(n,k).", ""]
    return "\n".join(lines)


def write_reports(summaries: Sequence[dict[str, Any]], out_dir: str | Path, model: str = "") -> dict[str, Any]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": model, "benchmarks": {s["benchmark"]: s for s in summaries},
              "paper": {k: v for k, v in benchmarks.PAPER.items() if k in {s["benchmark"] for s in summaries}}}
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(summaries, model))
    return report
