#!/usr/bin/env python
"""The per-step n-gram repetition metric: the pure-Python definition vs the vectorised version.

Both run in this one process on the same batch (responses of a 151,936-token vocabulary, right
padded to random lengths, a fifth of them degenerate loops). Prints each one's wall time, the
ratio, the new path's peak memory (tracemalloc: numpy's allocations) and checks that every ratio
the old path computed is equal (==) to the new one. Target: <= 5 s for 1024 x 32,768 on 2 cores.

    python scripts/bench_metrics.py                 # 1024 x 32768, n=20 (the old path takes ~1 min)
    python scripts/bench_metrics.py --quick         # 128 x 8192
    python scripts/bench_metrics.py --fill 1        # every response 32768 tokens long
    python scripts/bench_metrics.py --old-rows 128  # old path on the first 128 rows only, time scaled up
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import torch

from aspo.metrics import repetition_ratio
from aspo.ngram import repetition_ratios


def make_batch(rows: int, length: int, fill: float = 0.25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 151_936, (rows, length), generator=g)
    for r in range(0, rows, 5):  # a degenerate loop of 10..200 tokens repeated to the end
        period = int(torch.randint(10, 201, (1,), generator=g))
        tokens[r] = tokens[r, :period].repeat(length // period + 1)[:length]
    lengths = torch.randint(int(length * fill), length + 1, (rows, 1), generator=g)
    lengths[0] = length
    mask = (torch.arange(length).unsqueeze(0) < lengths).long()
    return tokens, mask


def old(tokens: torch.Tensor, mask: torch.Tensor, n: int) -> list[float]:
    """What ``repetition_by_sign`` did before: the definition, row by row."""
    return [repetition_ratio(row[m.bool()].tolist(), n) for row, m in zip(tokens, mask, strict=True)]


def new(tokens: torch.Tensor, mask: torch.Tensor, n: int) -> list[float]:
    return repetition_ratios(tokens.cpu().numpy(), mask.bool().cpu().numpy(), n).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--len", type=int, default=32768, dest="length")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--fill", type=float, default=0.25,
                        help="shortest response as a share of --len (lengths uniform up to --len; 1: all full)")
    parser.add_argument("--quick", action="store_true", help="128 x 8192")
    parser.add_argument("--old-rows", type=int, default=None,
                        help="run the (slow) old path on the first K rows only and scale its time to all rows")
    args = parser.parse_args()
    rows, length = (128, 8192) if args.quick else (args.rows, args.length)
    old_rows = min(rows, args.old_rows or rows)
    tokens, mask = make_batch(rows, length, args.fill)
    print(f"batch {rows} x {length} tokens ({int(mask.sum()):,} valid), n={args.n}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")

    new(tokens[:2], mask[:2], args.n)  # first-call overheads out of the timing
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    fast = new(tokens, mask, args.n)
    t_new, c_new = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    t0, c0 = time.perf_counter(), time.process_time()
    slow = old(tokens[:old_rows], mask[:old_rows], args.n)
    scale = rows / old_rows
    t_old, c_old = (time.perf_counter() - t0) * scale, (time.process_time() - c0) * scale

    mismatches = sum(a != b for a, b in zip(slow, fast[:old_rows], strict=True))
    scaled = "" if old_rows == rows else f" (measured on {old_rows} rows, scaled x{scale:g})"
    # CPU seconds (all threads) are less disturbed than wall seconds on a shared machine.
    print(f"old (pure Python):  {t_old:8.2f} s wall {c_old:8.2f} s CPU{scaled}")
    print(f"new (vectorised):   {t_new:8.2f} s wall {c_new:8.2f} s CPU   peak {peak / 2**20:.0f} MiB beyond the input")
    print(f"speed-up old/new:   {t_old / t_new:8.1f}x wall {c_old / c_new:6.1f}x CPU")
    print(f"equality on {old_rows} rows: {'all equal' if mismatches == 0 else f'{mismatches} MISMATCHES'}")
    print(f"mean ratio {sum(fast) / len(fast):.4f}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
