"""Seconds per training step on CPU, with its breakdown, before and after the CPU performance fixes.

Runs the same short training (``--config-name smollm2_arith_cpu`` by default: SmolLM2-135M-Instruct,
32 responses of <= 64 tokens per step) once per *variant*, one after the other, and writes one
Markdown table with the variants side by side: verl's ``timing_s/*`` per step (generation, old
log-prob recompute, actor update, weight sync, rest), start-up time, and the peak number and
memory of the run's processes. The first step (warm-up) is left out of the means when there are
more.

Variants (everything else is identical, including the samples: the CPU rollout seeds each row):

- ``before``: what verl's defaults gave on CPU once the run worked at all (fp32 kept: bf16 was ~140x
  slower on these AVX2 CPUs and is not re-measured here): Ray's ``OMP_NUM_THREADS=1`` in every actor
  (``ASPO_CPU_THREADS=1``), one generation request at a time (``ASPO_HF_MAX_BATCH=1``), verl's 8
  TransferQueue storage processes.
- ``after``: aspo's CPU defaults (``hardware/cpu.yaml``, ``aspo.cpu``): all cores per compute actor,
  concurrent requests batched into one ``generate``, one storage process, the old policy's
  log-probs and entropy taken from the rollout (``aspo.reuse_rollout_log_probs``).
- ``recompute``: ``after`` with verl's old-log-prob forward pass over the batch.

    python scripts/bench_cpu_step.py                         # before vs after, 3 steps each
    python scripts/bench_cpu_step.py --variants before,after,recompute
    python scripts/bench_cpu_step.py --steps 2 --variants after --out /tmp/bench.md
    python scripts/bench_cpu_step.py -- data.max_response_length=32   # extra overrides for every run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, dict] = {
    "before": {
        "env": {"ASPO_CPU_THREADS": "1", "ASPO_HF_MAX_BATCH": "1"},
        "overrides": [
            "transfer_queue.backend.SimpleStorage.num_data_storage_units=8",
            "aspo.reuse_rollout_log_probs=false",
        ],
    },
    "after": {"env": {}, "overrides": []},
    # `after` with verl's old-log-prob forward pass back on: what reusing the rollout's numbers saves.
    "recompute": {"env": {}, "overrides": ["aspo.reuse_rollout_log_probs=false"]},
}

PHASES = [
    ("generation", "timing_s/gen"),
    ("old log-probs", "timing_s/old_log_prob"),
    ("ref log-probs", "timing_s/ref"),
    ("actor update", "timing_s/update_actor"),
    ("weight sync", "timing_s/update_weights"),
]
STEP = "timing_s/step"


def _tree_usage(pid: int) -> tuple[int, int]:
    """(processes, resident MiB) of ``pid`` and its descendants, Ray's daemons included."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    rss = 0
    alive = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
            alive += 1
        except psutil.NoSuchProcess:
            pass
    return alive, rss // (1 << 20)


def run_variant(name: str, spec: dict, *, config: str, steps: int, extra: list[str], workdir: Path) -> dict:
    run_dir = workdir / name
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_FILE_LOGGER", "WANDB_"))}
    env.pop("ASPO_CPU_THREADS", None)
    env.pop("ASPO_HF_MAX_BATCH", None)
    env.update({"WANDB_MODE": "disabled", **spec["env"]})
    cmd = [
        sys.executable, "-m", "aspo.train", "--config-name", config,
        f"trainer.total_training_steps={steps}",
        f"trainer.default_local_dir={run_dir}",
        "trainer.resume_mode=disable",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.logger=[console,file]",
        *spec["overrides"],
        *extra,
    ]  # fmt: skip
    log = workdir / f"{name}.log"
    print(f"[bench] {name}: {' '.join(cmd[2:])}\n[bench]   log: {log}", flush=True)
    peak = {"procs": 0, "rss_mib": 0}
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(2.0):
                n, rss = _tree_usage(proc.pid)
                peak["procs"] = max(peak["procs"], n)
                peak["rss_mib"] = max(peak["rss_mib"], rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    wall = time.monotonic() - start
    if rc != 0:
        raise SystemExit(f"[bench] {name} failed (exit {rc}); see {log}")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    per_step = {int(r["step"]): r["data"] for r in records if STEP in r["data"]}
    return {"name": name, "steps": per_step, "wall_s": wall, **peak}


def summarize(result: dict) -> dict:
    """Mean seconds per phase over the measured steps (step 1 left out when there are more)."""
    steps = sorted(result["steps"])
    measured = steps[1:] if len(steps) > 1 else steps
    rows: dict[str, float | None] = {}
    for label, key in PHASES:
        values = [result["steps"][s][key] for s in measured if key in result["steps"][s]]
        rows[label] = statistics.fmean(values) if values else None
    step = statistics.fmean(result["steps"][s][STEP] for s in measured)
    rows["other (reward, advantages, metrics)"] = step - sum(v for v in rows.values() if v is not None)
    rows["**s/step**"] = step
    rows["start-up (s)"] = result["wall_s"] - sum(result["steps"][s][STEP] for s in steps)
    tokens = [result["steps"][s].get("perf/total_num_tokens") for s in measured]
    rows["tokens per step"] = statistics.fmean(tokens) if all(t is not None for t in tokens) else None
    rows["peak processes"] = result["procs"]
    rows["peak RSS (GiB)"] = result["rss_mib"] / 1024
    rows["_measured"] = measured
    return rows


def table(summaries: dict[str, dict]) -> str:
    names = list(summaries)
    labels = [k for k in next(iter(summaries.values())) if not k.startswith("_")]
    measured = {n: summaries[n]["_measured"] for n in names}
    head = "| | " + " | ".join(f"{n} (steps {measured[n][0]}-{measured[n][-1]})" for n in names) + " |"
    lines = [head, "|---|" + "---:|" * len(names)]
    for label in labels:
        cells = []
        for n in names:
            v = summaries[n][label]
            if v is None:
                cells.append("-")
            elif label.startswith("peak processes"):
                cells.append(str(int(v)))
            elif label.startswith("tokens"):
                cells.append(f"{v:.0f}")
            elif label.startswith("peak RSS"):
                cells.append(f"{v:.1f}")
            else:
                cells.append(f"{v:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    # Every variant against the first one (and `after` against `recompute` when both ran).
    pairs = [(names[0], n) for n in names[1:]]
    if "after" in names and "recompute" in names and ("recompute", "after") not in pairs:
        pairs.append(("recompute", "after"))
    for base, other in pairs:
        a, b = summaries[base]["**s/step**"], summaries[other]["**s/step**"]
        lines.append(f"\n{other} / {base} s/step: {b / a:.2f} ({a / b:.2f}x faster)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smollm2_arith_cpu", help="aspo-train --config-name")
    parser.add_argument("--steps", type=int, default=3, help="training steps per variant (step 1 is warm-up)")
    parser.add_argument("--variants", default="before,after", help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--out", default=None, help="also write the table here (Markdown)")
    parser.add_argument("--workdir", default=None, help="run directories (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (after --)")
    args = parser.parse_args(argv)

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="aspo-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name in names:
        result = run_variant(name, VARIANTS[name], config=args.config, steps=args.steps, extra=args.overrides, workdir=workdir)
        summaries[name] = summarize(result)
        print(f"[bench] {name}: {summaries[name]['**s/step**']:.1f} s/step", flush=True)
    text = (
        f"`python scripts/bench_cpu_step.py --config {args.config} --steps {args.steps} --variants {args.variants}"
        + (f" -- {' '.join(args.overrides)}" if args.overrides else "")
        + f"` ({os.cpu_count()} cores; seconds, mean over the measured steps)\n\n"
        + table(summaries)
        + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        print(f"[bench] table: {args.out}")


if __name__ == "__main__":
    main()
