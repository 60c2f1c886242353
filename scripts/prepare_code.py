#!/usr/bin/env python
"""Download the ASPO code training set and LiveCodeBench v5/v6 and write verl parquet files.

    python scripts/prepare_code.py --out data/code                      # train + v5 + v6 from the hub
    python scripts/prepare_code.py --out data/code --only livecodebench_v5 --test-format io
    python scripts/prepare_code.py --out data/code --only code_train --input archer2.0-code-1.5b-train.json
    python scripts/prepare_code.py --out data/code --only livecodebench_v5 livecodebench_v6 \\
        --input test.jsonl test2.jsonl test3.jsonl test4.jsonl test5.jsonl test6.jsonl

LiveCodeBench windows: v5 = 2024-08-01..2025-02-01, v6 = 2025-02-01..2025-05-01 (by contest_date).
``--test-format`` picks the ground-truth layout: ``lcb`` (LiveCodeBench's test list, function
name in extra_info) or ``io`` (``{"inputs", "outputs", "fn_name"}``); both score the same.
Logic: ``aspo.data``.
"""

from __future__ import annotations

import argparse
import sys

from aspo.data import code_tests, livecodebench
from aspo.data.prepare import prepare_code_train, prepare_livecodebench
from aspo.data.schema import ConversionError

NAMES = ("code_train", *livecodebench.VERSIONS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--only", nargs="+", choices=NAMES, help="datasets to prepare (default: all)")
    p.add_argument("--input", nargs="+", default=[], help="local upstream file(s) instead of the hub")
    p.add_argument("--test-format", choices=code_tests.FORMATS, default="lcb",
                   help="ground-truth layout of the written tests (default: lcb)")
    p.add_argument("--limit", type=int, help="keep the first N problems (smoke tests)")
    args = p.parse_args(argv)
    names = args.only or list(NAMES)
    if args.input and "code_train" in names and len(names) > 1:
        p.error("--input is either the code training file (--only code_train) or LiveCodeBench jsonl files")
    try:
        for name in names:
            if name == "code_train":
                if len(args.input) > 1:
                    p.error("code_train takes one --input file")
                path = prepare_code_train(args.out, args.input[0] if args.input else None, args.test_format, args.limit)
            else:
                path = prepare_livecodebench(name, args.out, args.input, args.test_format, args.limit)
            print(f"[aspo-data] wrote {path}", flush=True)
    except ConversionError as err:
        print(f"[aspo-data] ERROR: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
