#!/usr/bin/env python
"""Download the ASPO math training set and benchmarks and write verl parquet files.

    python scripts/prepare_math.py --out data/math                       # everything, from the hub
    python scripts/prepare_math.py --out data/math --only aime2024 math500
    python scripts/prepare_math.py --out data/math --only math_train --input archer2.0-math-1.5b-train.json

Writes ``<out>/<name>.parquet`` for math_train, aime2024, aime2025, amc2023, math500, minerva,
olympiadbench. ``--input`` takes a local .json/.jsonl/.parquet in the upstream layout (one dataset
per call) for machines without hub access. Logic: ``aspo.data``.
"""

from __future__ import annotations

import argparse
import sys

from aspo.data import math as math_data
from aspo.data.prepare import prepare_math
from aspo.data.schema import ConversionError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--only", nargs="+", choices=sorted(math_data.SOURCES), help="datasets to prepare (default: all)")
    p.add_argument("--input", help="local upstream file instead of the hub (needs exactly one --only name)")
    p.add_argument("--limit", type=int, help="keep the first N records (smoke tests)")
    args = p.parse_args(argv)
    names = args.only or list(math_data.SOURCES)
    if args.input and len(names) != 1:
        p.error("--input converts one dataset: name it with --only <name>")
    try:
        for name in names:
            path = prepare_math(name, args.out, args.input, args.limit)
            print(f"[aspo-data] wrote {path}", flush=True)
    except ConversionError as err:
        print(f"[aspo-data] ERROR: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
