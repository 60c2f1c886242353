"""A checkpoint's manifest: every file of a ``global_step_N`` folder with its size and checksum.

``aspo_manifest.json`` is written after all of the step's files and before the ``latest`` tracker
names the step (``aspo.runner.AspoTrainer._save_checkpoint``); ``aspo.checkpoint.resolve_resume``
verifies it before verl loads anything. It catches what the atomic tracker cannot: a shard
truncated by a full disk or a copy to a shared filesystem that stopped half-way.

Checksum: xxHash3-128 (``xxhash``, which ``datasets`` and ``wandb`` already install), 6.5 GB/s from
the page cache, else SHA-256, 0.6 GB/s (``scripts/bench_startup_checks.py``, a 1 GB file on the
loaded 2-core dev machine). Files are hashed on up to 8 threads (FSDP writes one shard per rank).
The manifest names its algorithm, so either side can verify the other's.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

MANIFEST = "aspo_manifest.json"
VERSION = 1
_CHUNK = 8 << 20


def default_algorithm() -> str:
    try:
        import xxhash  # noqa: F401

        return "xxh3_128"
    except ImportError:
        return "sha256"


def _hasher(algorithm: str):
    if algorithm == "xxh3_128":
        import xxhash

        return xxhash.xxh3_128()
    return hashlib.new(algorithm)


def file_digest(path: str | Path, algorithm: str) -> str:
    h = _hasher(algorithm)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])  # hashlib and xxhash release the GIL here: files hash in parallel
    return h.hexdigest()


def _files(step_dir: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(step_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), step_dir)
            if rel == MANIFEST or name.startswith(f".{MANIFEST}."):  # itself, or its temp file
                continue
            out.append(rel)
    return sorted(out)


def _workers(n_files: int) -> int:
    return max(1, min(8, os.cpu_count() or 1, n_files))


def build(step_dir: str | Path, algorithm: Optional[str] = None) -> dict[str, Any]:
    step_dir = Path(step_dir)
    algorithm = algorithm or default_algorithm()
    files = _files(step_dir)
    with ThreadPoolExecutor(_workers(len(files))) as pool:
        digests = list(pool.map(lambda rel: file_digest(step_dir / rel, algorithm), files))
    return {
        "version": VERSION,
        "algorithm": algorithm,
        "files": {rel: {"size": (step_dir / rel).stat().st_size, "hash": d} for rel, d in zip(files, digests, strict=True)},
    }


def write(step_dir: str | Path, algorithm: Optional[str] = None) -> dict[str, Any]:
    """Hash every file under ``step_dir`` and write the manifest atomically; returns it (plus ``seconds``)."""
    from aspo.checkpoint import atomic_write_text

    start = time.perf_counter()
    manifest = build(step_dir, algorithm)
    atomic_write_text(Path(step_dir) / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    manifest["seconds"] = time.perf_counter() - start
    return manifest


def exists(step_dir: str | Path) -> bool:
    return (Path(step_dir) / MANIFEST).is_file()


def verify(step_dir: str | Path, check_hashes: bool = True) -> Optional[str]:
    """``None`` when every listed file is there with its size and checksum, else what is wrong (one phrase).

    Sizes are checked for all files before any byte is hashed, so a truncated shard is found in
    milliseconds. Files not listed (written after the manifest) are not looked at.
    """
    step_dir = Path(step_dir)
    try:
        manifest = json.loads((step_dir / MANIFEST).read_text())
        files = manifest["files"]
        algorithm = manifest["algorithm"]
    except FileNotFoundError:
        return f"it has no {MANIFEST}"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its {MANIFEST} is unreadable ({type(err).__name__}: {err})"
    for rel, entry in files.items():
        path = step_dir / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{rel} is missing"
        if size != entry["size"]:
            return f"{rel} is {size} bytes, the manifest says {entry['size']} (truncated or partly copied)"
    if not check_hashes:
        return None
    try:
        _hasher(algorithm)
    except ImportError:  # written where xxhash was installed, verified where it is not
        import sys

        print(f"[aspo] WARNING: {step_dir}: file sizes checked, checksums not ({algorithm} needs "
              "`pip install xxhash`)", file=sys.stderr, flush=True)
        return None
    except ValueError:
        return f"its {MANIFEST} names an unknown checksum {algorithm!r}"
    def problem(rel: str) -> Optional[str]:
        try:
            digest = file_digest(step_dir / rel, algorithm)
        except OSError as err:
            return f"{rel} is unreadable ({err.strerror or err})"
        return None if digest == files[rel]["hash"] else f"{rel} does not match its {algorithm} checksum (corrupted)"

    rels = list(files)
    with ThreadPoolExecutor(_workers(len(rels))) as pool:
        return next((p for p in pool.map(problem, rels) if p is not None), None)

