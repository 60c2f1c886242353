#!/usr/bin/env python
"""``python scripts/run_table.py OUT RECIPE...``: the table scripts/gpu_check.sh prints.

For each recipe: exit status and wall time (``OUT/<recipe>.status``: "<rc> <seconds>"), the steps
in ``OUT/<recipe>/metrics.jsonl``, mean ``timing_s/step``, the last step's ``critic/score/mean`` and
``rollout_corr/log_ppl_diff_max`` (vLLM vs trainer log-probs: near 0 when the weights reached vLLM).
Exits 1 when any run failed or logged no step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("recipe", "exit", "wall_s", "steps", "s/step", "score", "log_ppl_diff_max")


def row(out: Path, recipe: str) -> dict:
    status = out / f"{recipe}.status"
    rc, wall = (status.read_text().split() + ["?", "?"])[:2] if status.exists() else ("not run", "-")
    steps: dict[int, dict] = {}
    metrics = out / recipe / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                steps.setdefault(int(record["step"]), {}).update(record.get("data", {}))
    times = [s["timing_s/step"] for s in steps.values() if "timing_s/step" in s]
    last = steps[max(steps)] if steps else {}
    fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
    return {
        "recipe": recipe, "exit": rc, "wall_s": wall, "steps": str(len(steps)),
        "s/step": fmt(sum(times) / len(times) if times else None),
        "score": fmt(last.get("critic/score/mean")),
        "log_ppl_diff_max": fmt(last.get("rollout_corr/log_ppl_diff_max")),
    }


def table(rows: list[dict]) -> str:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    out, recipes = Path(argv[0]), argv[1:]
    rows = [row(out, r) for r in recipes]
    print(table(rows))
    return 0 if all(r["exit"] == "0" and r["steps"] != "0" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
