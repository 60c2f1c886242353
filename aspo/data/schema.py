"""verl's RL parquet row, built and checked in one place.

Every converter in ``aspo.data`` returns rows of exactly this shape, the layout verl's
``RLHFDataset`` and reward loop read (and ``aspo.preflight`` checks):

``data_source`` (str, a name ``reward.resolve`` knows), ``prompt`` (chat list
``[{"role": "user", "content": ...}]``), ``ability`` (``math`` | ``code``),
``reward_model`` (``{"style": "rule", "ground_truth": str}``), ``extra_info`` (``{"split", "index", ...}``).

``ground_truth`` is always a string: a parquet column must have one type, and verl hands the
value to ``reward.compute_score`` unchanged (math: the answer; code: the JSON test suite).
``extra_info`` values are strings or ints for the same reason (one struct type per column).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable


class ConversionError(ValueError):
    """An upstream record or file cannot be converted; the message says which and how to fix it."""


def make_row(data_source: str, prompt: str, ability: str, ground_truth: str, split: str, index: int,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One verl row. ``extra`` goes into ``extra_info`` next to ``split`` and ``index``."""
    if not isinstance(ground_truth, str):
        raise ConversionError(f"ground_truth must be a string, got {type(ground_truth).__name__} "
                              f"(data_source={data_source}, index={index})")
    info: dict[str, Any] = {"split": split, "index": int(index)}
    for key, value in (extra or {}).items():
        # Keep the struct column typed: nested values become JSON strings.
        info[key] = value if isinstance(value, (str, int)) and not isinstance(value, bool) else json.dumps(value)
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": prompt}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": info,
    }


def check_rows(rows: list[dict[str, Any]], what: str) -> None:
    """Fail with one line if the rows are empty or a data_source has no reward verifier."""
    if not rows:
        raise ConversionError(f"{what}: no rows were produced; check the input file and the filters "
                              f"(e.g. the LiveCodeBench date window)")
    from reward import UnknownDataSource, resolve

    for source in sorted({r["data_source"] for r in rows}):
        try:
            resolve(source)
        except UnknownDataSource as err:
            raise ConversionError(f"{what}: {err}") from None


def write_parquet(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as a verl parquet (parent directories created; written to a temp file, then renamed)."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # extra_info keys differ between rows of some sources: union them so the struct type is one.
    rows = list(rows)
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r["extra_info"]))
    for r in rows:
        r["extra_info"] = {k: r["extra_info"].get(k) for k in keys}  # missing -> null
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path
