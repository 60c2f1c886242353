"""Benchmark the reward verifiers; prints one table.

Math: responses/s of ``reward.compute_score_batch`` vs plain math-verify in a thread pool (the usual
"just call verify in threads" set-up, which must disable math-verify's signal-based timeouts) on
the same generated responses: a mix of easy ones and pathological ones that hang math-verify.
The thread-pool baseline runs in a child process with a wall-clock budget, since its hangs cannot
be interrupted; what it has not finished by then is counted as hung.

Code: per-test wall time of one sandboxed run (bwrap, uid switch, rlimits, harness) vs a bare
``python3 prog.py`` subprocess, on a typical competitive-programming test and on a trivial one.

    python scripts/bench_reward.py            # ~2,000 math responses, 30 runs per code case
    python scripts/bench_reward.py --quick    # smaller, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run from a checkout: make `reward` importable even if the venv's editable install predates it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ------------------------------------------------------------------------------------ math data
EASY_KINDS = ("int", "frac", "sqrt", "set", "thousands", "poly", "decimal")
# Pathological answers that hang math-verify without its timeouts (checked by hand: > 20 s each).
HANGING = (r"2^{2^{2^{2^{2^{2}}}}}", r"9^{9^{9^{9}}}", r"(10^{10})!")
# Heavy but finite ones.
HEAVY = (r"10^{10^{6}}", r"x^{2^{2^{2^{2^{2}}}}} - 5", "+".join(["1"] * 300),
         r"\frac{1}{" * 12 + "2" + "}" * 12)


def _easy(rng: random.Random) -> tuple[str, str]:
    """(ground truth, boxed answer): about half correct, and correct ones often in another form."""
    kind = rng.choice(EASY_KINDS)
    a, b = rng.randint(1, 99), rng.randint(2, 99)
    right = rng.random() < 0.6
    if kind == "int":
        gt, ans = str(a), str(a if right else a + 1)
    elif kind == "frac":
        gt = rf"\frac{{{a}}}{{{b}}}"
        ans = rng.choice([rf"\dfrac{{{a}}}{{{b}}}", f"{a}/{b}", rf"\frac{{{2 * a}}}{{{2 * b}}}"]) if right else f"{a + 1}/{b}"
    elif kind == "sqrt":
        gt = rf"{a}\sqrt{{2}}"
        ans = rng.choice([rf"\sqrt{{{2 * a * a}}}", rf"{a}\sqrt{{2}}"]) if right else rf"{a}\sqrt{{3}}"
    elif kind == "set":
        gt = rf"\{{{a}, {b}\}}"
        ans = rf"\{{{b}, {a}\}}" if right else rf"\{{{a}, {b + 1}\}}"
    elif kind == "thousands":
        n = a * 1000 + b
        gt, ans = str(n), (f"{n:,}" if right else f"{n + 1:,}")
    elif kind == "poly":
        gt = f"x^2 + {a}x + {b}"
        ans = f"{b} + {a}x + x^2" if right else f"x^2 + {a}x + {b + 1}"
    else:
        gt = rf"\frac{{{a}}}{{4}}"
        ans = str(a / 4) if right else str(a / 4 + 0.5)
    return gt, ans


def make_math_responses(n: int, hanging: int, heavy: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(kind, response, ground truth) triples, shuffled."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        if i < hanging:
            kind, gt, ans = "hanging", "5", HANGING[i % len(HANGING)]
        elif i < hanging + heavy:
            kind, gt, ans = "heavy", "5", HEAVY[i % len(HEAVY)]
        else:
            kind, (gt, ans) = "easy", _easy(rng)
        think = "<think>" + "Let me compute step by step. " * rng.randint(5, 60) + r"maybe \boxed{0}</think>"
        items.append((kind, f"{think}\nSo the final answer is $\\boxed{{{ans}}}$.", gt))
    rng.shuffle(items)
    return items


# ------------------------------------------------------------------------- math: the baseline
def _baseline_worker(path: str, threads: int) -> None:
    """Child process: plain math-verify in a thread pool; prints a progress count per result."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import logging

    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    with open(path) as f:
        items = json.load(f)

    def one(item):
        _, resp, gt = item
        gold = parse("\\boxed{" + gt + "}", parsing_timeout=None)
        pred = parse(resp, parsing_timeout=None)
        return verify(gold, pred, timeout_seconds=None)

    one(["easy", r"\boxed{1}", "1"])  # warm-up (imports, caches)
    print("ready", flush=True)
    done = correct = 0
    with ThreadPoolExecutor(max_workers=threads) as ex:
        for fut in as_completed([ex.submit(one, it) for it in items]):
            done += 1
            try:
                correct += bool(fut.result())
            except Exception:
                pass
            print(f"{done} {correct}", flush=True)
    os._exit(0)  # hung threads would otherwise block interpreter exit


def run_baseline(items, threads: int, budget_s: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(items, f)
        path = f.name

    def limit():  # the hanging inputs would otherwise eat all memory
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    proc = subprocess.Popen([sys.executable, __file__, "--baseline-worker", path, str(threads)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=limit)
    state = {"done": 0, "correct": 0, "last": 0.0}

    def reader():  # a thread, so a hung child never blocks the budget check
        for line in proc.stdout:
            if line.strip() and line.strip() != "ready":
                state["done"], state["correct"] = map(int, line.split())
                state["last"] = time.monotonic()

    try:
        assert proc.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        threading.Thread(target=reader, daemon=True).start()
        while time.monotonic() - t0 < budget_s and state["done"] < len(items):
            time.sleep(0.05)
        done, correct = state["done"], state["correct"]
        elapsed = (state["last"] if done == len(items) else time.monotonic()) - t0
    finally:
        proc.kill()
        proc.wait()
        os.unlink(path)
    return {"done": done, "correct": correct, "hung": len(items) - done, "elapsed": elapsed,
            "rps": done / elapsed if elapsed > 0 else 0.0}


def run_ours(items, timeout_s: float, fast_path: bool = True) -> dict:
    import reward

    if reward.get_config().math_fast_path != fast_path:
        reward.configure(math_fast_path=fast_path)
    reward.compute_score_batch(["math"], [r"\boxed{\frac{1}{2}}"], ["0.5"])  # start the pool (spawn)
    t0 = time.monotonic()
    out = reward.compute_score_batch(["math"] * len(items), [r for _, r, _ in items], [g for _, _, g in items],
                                     math_timeout_s=timeout_s)
    elapsed = time.monotonic() - t0
    reasons = {}
    for r in out:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"done": len(out), "correct": sum(r["acc"] for r in out), "hung": 0, "elapsed": elapsed,
            "rps": len(out) / elapsed, "reasons": reasons}


# ------------------------------------------------------------------------------------ code
TYPICAL = ("import sys\ndata = sys.stdin.buffer.read().split()\nn = int(data[0])\na = sorted(map(int, data[1:n + 1]))\n"
           "best = 0\nfor i in range(1, n):\n    best = max(best, a[i] - a[i - 1])\nprint(sum(a) % 1000003, best)\n")
TRIVIAL = "print(int(input()) * 2)\n"


def bench_code(runs: int) -> list[tuple[str, float, float]]:
    import reward
    from reward import _runtime

    reward.configure(code_slots=1)
    box = _runtime.sandbox()
    rng = random.Random(1)
    n = 100_000
    typical_in = (f"{n}\n" + " ".join(str(rng.randint(0, 10 ** 9)) for _ in range(n)) + "\n").encode()
    rows = []
    for name, prog, stdin in (("typical test (sort 1e5 ints)", TYPICAL, typical_in), ("trivial test (print)", TRIVIAL, b"21\n")):
        work = box.workdir(prog)
        bare_dir = tempfile.mkdtemp()
        bare_prog = os.path.join(bare_dir, "prog.py")
        with open(bare_prog, "w") as f:
            f.write(prog)
        sand, bare = [], []
        try:
            expect = subprocess.run([box.python, bare_prog], input=stdin, capture_output=True).stdout
            for _ in range(runs):  # interleaved, so machine load hits both alike
                t = time.perf_counter()
                r = box.run(work, stdin, 10.0)
                sand.append(time.perf_counter() - t)
                assert r.stdout == expect, r
                t = time.perf_counter()
                b = subprocess.run([box.python, bare_prog], input=stdin, capture_output=True)
                bare.append(time.perf_counter() - t)
                assert b.stdout == expect
        finally:
            box.remove_workdir(work)
            os.unlink(bare_prog)
            os.rmdir(bare_dir)
        rows.append((name, statistics.median(sand) * 1000, statistics.median(bare) * 1000))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="math responses")
    ap.add_argument("--hanging", type=int, default=20, help="of which hang math-verify (no timeout)")
    ap.add_argument("--heavy", type=int, default=80, help="of which are slow but finite")
    ap.add_argument("--math-timeout", type=float, default=3.0, help="our per-response hard timeout (s)")
    ap.add_argument("--baseline-budget", type=float, default=120.0, help="wall budget of the thread-pool baseline (s)")
    ap.add_argument("--runs", type=int, default=30, help="runs per code case")
    ap.add_argument("--quick", action="store_true", help="n=300, runs=10, budget 40 s")
    ap.add_argument("--baseline-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_worker:
        _baseline_worker(args.baseline_worker[0], int(args.baseline_worker[1]))
        return
    if args.quick:
        args.n, args.hanging, args.heavy, args.runs, args.baseline_budget = 300, 6, 12, 10, 40.0

    threads = os.cpu_count() or 1
    mixed = make_math_responses(args.n, args.hanging, args.heavy)
    easy = [it for it in mixed if it[0] == "easy"]
    print(f"machine: {threads} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"math: {len(mixed)} responses ({args.hanging} hanging, {args.heavy} heavy, {len(easy)} easy); "
          f"ours: {threads} worker processes, timeout {args.math_timeout:g}s; baseline: {threads} threads", flush=True)
    ours_mix = run_ours(mixed, args.math_timeout)
    base_mix = run_baseline(mixed, threads, args.baseline_budget)
    ours_easy = run_ours(easy, args.math_timeout)
    base_easy = run_baseline(easy, threads, args.baseline_budget)
    ours_easy_pool = run_ours(easy, args.math_timeout, fast_path=False)
    code_rows = bench_code(args.runs)

    print()
    print(f"{'benchmark':46s} {'ours':>14s} {'baseline':>14s} {'ratio':>8s}  notes")
    print("-" * 110)
    for label, o, b in (("math, mixed set (responses/s)", ours_mix, base_mix),
                        ("math, easy only (responses/s)", ours_easy, base_easy),
                        ("math, easy only, fast path off (responses/s)", ours_easy_pool, base_easy)):
        note = (f"ours: {o['hung']} hung, reasons {o['reasons']}; baseline: {b['done']}/{o['done']} done, "
                f"{b['hung']} hung after {b['elapsed']:.0f}s")
        print(f"{label:46s} {o['rps']:14.1f} {b['rps']:14.1f} {o['rps'] / max(b['rps'], 1e-9):7.2f}x  {note}")
        if b["hung"] == 0 and b["correct"] != o["correct"]:
            print(f"{'':46s} note: {o['correct']} scored correct by ours vs {b['correct']} by the baseline")
    for name, s, b in code_rows:
        print(f"{'sandbox per-test wall, ' + name + ' (ms)':46s} {s:14.1f} {b:14.1f} {s / b:7.2f}x  "
              f"sandbox vs bare python3 subprocess (median of {args.runs}); overhead {s - b:.1f} ms")
    print()
    print("targets: math ratio >= 1.5x with 0 hangs; sandbox <= 1.3x of bare (typical test)")


if __name__ == "__main__":
    main()
