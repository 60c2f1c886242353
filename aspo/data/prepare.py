"""Load -> convert (with a progress bar) -> check -> write, for each dataset family."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from aspo.data import code_tests, livecodebench, math as math_data, verl_layout
from aspo.data.io import load_local, load_records, progress
from aspo.data.schema import ConversionError, check_rows, write_parquet


def _limit(records: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    return records[:limit] if limit else records


def prepare_math(name: str, out_dir: str | Path, input_path: str | None = None, limit: int | None = None,
                 prompt_template: str = math_data.PROMPT_TEMPLATE) -> Path:
    """Write ``<out_dir>/<name>.parquet`` for a math source (``math_data.SOURCES``)."""
    if name not in math_data.SOURCES:
        raise ConversionError(f"unknown math dataset {name!r}; known: {', '.join(math_data.SOURCES)}")
    src = math_data.SOURCES[name]
    records = _limit(load_records(input_path or src.hub_id, src.hub_config, src.hub_split), limit)
    rows = []
    for i, rec in enumerate(progress(records, f"{name}", len(records))):
        if verl_layout.is_verl_record(rec):
            rows.append(verl_layout.convert_record(rec, i, src.split, src.data_source, "math"))
        else:
            rows.append(math_data.convert_record(rec, src, i, prompt_template))
    check_rows(rows, name)
    return write_parquet(rows, Path(out_dir) / f"{name}.parquet")


def prepare_livecodebench(version_name: str, out_dir: str | Path, inputs: Sequence[str] = (),
                          test_format: str = "lcb", limit: int | None = None) -> Path:
    """Write ``<out_dir>/<version>.parquet``: the version's date window, every test in ``test_format``."""
    if version_name not in livecodebench.VERSIONS:
        raise ConversionError(f"unknown LiveCodeBench version {version_name!r}; known: {', '.join(livecodebench.VERSIONS)}")
    if test_format not in code_tests.FORMATS:
        raise ConversionError(f"unknown test format {test_format!r}; use one of {', '.join(code_tests.FORMATS)}")
    version = livecodebench.VERSIONS[version_name]
    records: list[dict[str, Any]] = []
    if inputs:
        for path in inputs:
            records.extend(load_local(path))
    else:
        records = livecodebench.load_hub_release(version)
    chosen, seen = [], set()
    for i, rec in enumerate(records):
        where = f"{version_name} input record {i}"
        qid = rec.get("question_id")
        if livecodebench.in_window(rec, version, where) and (qid is None or qid not in seen):
            seen.add(qid)
            chosen.append(rec)
    chosen = _limit(chosen, limit)
    rows = [livecodebench.convert_record(rec, version, i, test_format)
            for i, rec in enumerate(progress(chosen, version_name, len(chosen)))]
    check_rows(rows, version_name)
    return write_parquet(rows, Path(out_dir) / f"{version_name}.parquet")


def _fn_name(extra_info: dict[str, Any]) -> str | None:
    """The function name of a call-based problem: ``fn_name``/``func_name``, or inside ``metadata``."""
    import json

    for source in (extra_info, extra_info.get("metadata")):
        if isinstance(source, str):
            try:
                source = json.loads(source)
            except ValueError:
                continue
        if isinstance(source, dict):
            for key in ("fn_name", "func_name"):
                if source.get(key):
                    return str(source[key])
    return None


CODE_TRAIN_HUB_ID = "Fate-Zero/Archer2.0-Code-1.5B"


def prepare_code_train(out_dir: str | Path, input_path: str | None = None, test_format: str | None = None,
                       limit: int | None = None, name: str = "code_train") -> Path:
    """The code training set (verl layout, as Archer2.0 ships it), tests rewritten to ``test_format`` if given."""
    records = _limit(load_records(input_path or CODE_TRAIN_HUB_ID, None, "train"), limit)
    rows = []
    for i, rec in enumerate(progress(records, name, len(records))):
        if not verl_layout.is_verl_record(rec):
            raise ConversionError(f"{name} record {i}: expected verl layout (prompt + reward_model.ground_truth), "
                                  f"got columns {', '.join(rec)}; convert LiveCodeBench files with prepare_livecodebench.py")
        row = verl_layout.convert_record(rec, i, "train", "code", "code")
        if test_format:
            info = row["extra_info"]
            suite = code_tests.parse(row["reward_model"]["ground_truth"], _fn_name(info), f"{name} record {i}")
            row["reward_model"]["ground_truth"] = code_tests.dump(suite, test_format)
            if suite.functional:
                info["fn_name"] = suite.fn_name
        rows.append(row)
    check_rows(rows, name)
    return write_parquet(rows, Path(out_dir) / f"{name}.parquet")
