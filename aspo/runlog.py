"""Reading a run's metrics JSONL (verl's file-logger format: one ``{"step", "data"}`` per line)."""

from __future__ import annotations

import fnmatch
import json
import math
from pathlib import Path

Series = dict[str, dict[int, float]]


def load_series(path: str | Path) -> Series:
    """``{metric: {step: value}}``; a later record of the same step wins (as after a resume).

    Non-numeric and non-finite values are skipped; a torn last line (a killed run) is ignored.
    """
    series: Series = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = record.get("step")
        if step is None:
            continue
        for key, value in (record.get("data") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                series.setdefault(key, {})[int(step)] = float(value)
    return series


def matching(series: Series, pattern: str) -> list[str]:
    """Metric names matching a glob pattern, sorted."""
    return sorted(k for k in series if fnmatch.fnmatch(k, pattern))


def first_match(series: Series, patterns: list[str]) -> str | None:
    for pattern in patterns:
        keys = matching(series, pattern)
        if keys:
            return keys[0]
    return None
