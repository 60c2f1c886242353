#!/usr/bin/env python
"""Evaluate a model on the ASPO paper's benchmarks: k samples per problem, our verifiers,
avg@k and unbiased pass@k per benchmark, as JSON and a Markdown table beside the paper's numbers.

    python scripts/eval.py --model <hf-dir-or-id> --suite math --data-dir data/math --out eval/aspo-math
    python scripts/eval.py --model <hf-dir> --data data/code/livecodebench_v5.parquet --out eval/lcb5
    python scripts/eval.py --model ~/.cache/aspo/fixtures/tiny-qwen2-v1 --backend hf \\
        --data aspo/fixtures/parquet/arith_val.parquet --n 4 --max-response-length 16 --out /tmp/ev  # CPU

Sampling defaults per benchmark follow the official Archer2.0 eval (aspo/eval/benchmarks.py):
temperature 0.8, top_p 0.95, 32768 response tokens; n = 8 (LCB v5), 16 (LCB v6), 32 (AIME, AMC), 4
(MATH-500, Minerva, OlympiadBench). ``--backend auto`` uses vLLM on a GPU, transformers otherwise.
Checkpoints from aspo-train are FSDP shards: merge them to a HF directory first with
``python -m verl.model_merger merge --backend fsdp --local_dir <ckpt>/actor --target_dir <hf_dir>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aspo.eval import benchmarks
from aspo.eval.runner import EvalError, evaluate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF model directory or hub id")
    p.add_argument("--data", nargs="+", default=[], help="benchmark parquet files (one benchmark each)")
    p.add_argument("--suite", choices=sorted(benchmarks.SUITES), help="every benchmark of a suite, from --data-dir")
    p.add_argument("--data-dir", default="data", help="where --suite finds <benchmark>.parquet (default: data)")
    p.add_argument("--out", required=True, help="output directory (results.json, results.md, samples)")
    p.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto")
    p.add_argument("--n", type=int, help="samples per problem (default: per benchmark)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-response-length", type=int)
    p.add_argument("--max-prompt-length", type=int)
    p.add_argument("--limit", type=int, help="first N problems of each benchmark (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tp", type=int, default=1, help="vLLM tensor parallel size")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=8, help="hf backend: prompts per generate() call")
    args = p.parse_args(argv)

    files = list(args.data)
    if args.suite:
        files += [str(Path(args.data_dir) / f"{b}.parquet") for b in benchmarks.SUITES[args.suite]]
    if not files:
        p.error("nothing to evaluate: pass --data FILE... or --suite math|code")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        print(f"[aspo-eval] ERROR: missing benchmark file(s) {', '.join(missing)}; write them with "
              "scripts/prepare_math.py / scripts/prepare_code.py", file=sys.stderr)
        return 2

    from aspo.eval.generate import make_generator

    max_len = (args.max_prompt_length or 2048) + (args.max_response_length or 32768)
    generator = make_generator(args.backend, args.model, batch_size=args.batch_size, tp=args.tp,
                               max_model_len=max_len, gpu_memory_utilization=args.gpu_memory_utilization)
    try:
        evaluate(files, generator, args.out, n=args.n, temperature=args.temperature, top_p=args.top_p,
                 max_response_length=args.max_response_length, max_prompt_length=args.max_prompt_length,
                 seed=args.seed, limit=args.limit, model=args.model)
    except EvalError as err:
        print(f"[aspo-eval] ERROR: {err}", file=sys.stderr)
        return 2
    print((Path(args.out) / "results.md").read_text())
    print(f"[aspo-eval] wrote {Path(args.out) / 'results.json'} and results.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
