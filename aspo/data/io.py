"""Load upstream records from a local file or the Hugging Face hub, with a progress bar.

A local path (``.json`` list or object-per-line, ``.jsonl``, ``.parquet``) is read directly, so the
converters run offline and in the tests; anything else is taken as a hub dataset id and loaded with
``datasets.load_dataset`` (imported only then).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from aspo.data.schema import ConversionError

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet")


def is_local(source: str) -> bool:
    return Path(source).suffix in LOCAL_SUFFIXES or Path(source).exists()


def _read_json(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(text)
    try:  # one object for the whole file (e.g. {"data": [...]}) ...
        obj = json.loads(text)
        if isinstance(obj, dict):
            for key in ("data", "rows", "train", "test"):
                if isinstance(obj.get(key), list):
                    return obj[key]
            return [obj]
    except json.JSONDecodeError:
        pass
    # ... or JSON lines.
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ConversionError(f"{path}:{lineno}: not valid JSON lines ({err.msg}); "
                                      "expected a JSON list or one JSON object per line") from None
    return rows


def load_local(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"input file {path} does not exist; pass an existing .json/.jsonl/.parquet "
                              "file or a Hugging Face dataset id")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix in (".json", ".jsonl"):
        return _read_json(path)
    raise ConversionError(f"input file {path}: unknown format {path.suffix!r}; use .json, .jsonl or .parquet")


def load_hub(dataset_id: str, config: str | None = None, split: str = "train",
             **kwargs: Any) -> list[dict[str, Any]]:
    """``datasets.load_dataset(dataset_id, config, split=split)`` as a list of dicts."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets ships with verl
        raise ConversionError("loading from the hub needs the `datasets` package: pip install datasets") from None
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split, **kwargs)
    except Exception as err:  # network, auth, unknown id: say which dataset and how to work offline
        raise ConversionError(
            f"could not load {dataset_id!r} (config={config}, split={split}) from the Hugging Face hub: "
            f"{type(err).__name__}: {err}. Download it elsewhere and pass the file with --input") from None
    return [dict(r) for r in ds]


def load_records(source: str, config: str | None = None, split: str = "train", **kwargs: Any) -> list[dict[str, Any]]:
    """Records from a local file (``config``/``split`` ignored) or a hub dataset id."""
    return load_local(source) if is_local(source) else load_hub(source, config, split, **kwargs)


def pick(record: dict[str, Any], keys: Sequence[str], what: str, where: str) -> Any:
    """The first present, non-empty field among ``keys``; a one-line error naming them otherwise."""
    for key in keys:
        value = record.get(key)
        if value is not None and not (isinstance(value, (str, list)) and len(value) == 0):
            return value
    raise ConversionError(f"{where}: no {what} column (looked for {', '.join(map(repr, keys))}; "
                          f"the record has {', '.join(map(repr, record)) or 'no columns'})")


def progress(items: Iterable[Any], desc: str, total: int | None = None) -> Iterator[Any]:
    """tqdm over ``items`` on stderr (a no-op wrapper when tqdm is missing)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit="rec", dynamic_ncols=True)
