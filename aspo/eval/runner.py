"""One evaluation: benchmark parquet files -> samples -> verifier scores -> per-benchmark metrics.

A benchmark is one verl parquet file (as written by ``scripts/prepare_*.py``); its name is the
rows' ``data_source`` (which also picks the sampling defaults and the paper's numbers). Responses
are scored with ``reward.compute_score_batch``; a sample counts as correct when the verifier's
``acc`` is true (penalties that shape training rewards do not enter evaluation).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from aspo.eval import benchmarks, metrics
from aspo.eval.generate import Generator


class EvalError(ValueError):
    """A benchmark file cannot be evaluated; the message says which and why."""


@dataclass
class Benchmark:
    name: str
    path: str
    rows: list[dict[str, Any]]


def load_benchmark(path: str | Path, limit: int | None = None) -> Benchmark:
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise EvalError(f"benchmark file {path} does not exist; write it with scripts/prepare_math.py or prepare_code.py")
    rows = pq.read_table(path).to_pylist()
    missing = {"data_source", "prompt", "reward_model"} - set(rows[0] if rows else {})
    if not rows or missing:
        raise EvalError(f"{path}: not a verl benchmark parquet ({'empty' if not rows else 'missing ' + ', '.join(sorted(missing))})")
    sources = {r["data_source"] for r in rows}
    if len(sources) != 1:
        raise EvalError(f"{path}: one benchmark per file expected, found data_source values {sorted(sources)}")
    return Benchmark(sources.pop(), str(path), rows[:limit] if limit else rows)


def chat_prompt(tokenizer, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def evaluate_benchmark(bench: Benchmark, generator: Generator, sampling: benchmarks.Sampling, seed: int = 0,
                       samples_path: Path | None = None) -> dict[str, Any]:
    """Generate ``sampling.n`` responses per problem, score them, aggregate; optionally write every sample."""
    import reward

    prompts = [chat_prompt(generator.tokenizer, r["prompt"]) for r in bench.rows]
    too_long = [i for i, p in enumerate(prompts)
                if len(generator.tokenizer(p, add_special_tokens=False)["input_ids"]) > sampling.max_prompt_length]
    if too_long:  # the official eval filters these out too (data.filter_overlong_prompts)
        print(f"[aspo-eval] {bench.name}: skipping {len(too_long)} prompt(s) over {sampling.max_prompt_length} tokens",
              flush=True)
    keep = [i for i in range(len(prompts)) if i not in set(too_long)]
    if not keep:
        raise EvalError(f"{bench.name}: every prompt is longer than max_prompt_length={sampling.max_prompt_length} "
                        "tokens; raise --max-prompt-length")
    gens = generator.generate([prompts[i] for i in keep], sampling.n, sampling.temperature, sampling.top_p,
                              sampling.max_response_length, seed)
    flat_rows = [bench.rows[i] for i in keep for _ in range(sampling.n)]
    flat_texts = [t for texts in gens.texts for t in texts]
    if len(flat_texts) != len(flat_rows):
        raise EvalError(f"{bench.name}: generator returned {len(flat_texts)} responses for {len(flat_rows)} expected")
    results = reward.compute_score_batch(
        [r["data_source"] for r in flat_rows], flat_texts, [r["reward_model"]["ground_truth"] for r in flat_rows],
        [r.get("extra_info") for r in flat_rows])
    correct = [[bool(results[j * sampling.n + s]["acc"]) for s in range(sampling.n)] for j in range(len(keep))]
    summary = metrics.aggregate(correct)
    summary.update(benchmark=bench.name, file=bench.path, sampling=asdict(sampling), skipped_prompts=len(too_long),
                   generated_tokens=gens.tokens, generation_s=round(gens.seconds, 3),
                   tokens_per_s=round(gens.tokens / gens.seconds, 1) if gens.seconds else None)
    if samples_path is not None:
        samples_path.parent.mkdir(parents=True, exist_ok=True)
        with samples_path.open("w", encoding="utf-8") as f:
            for j, i in enumerate(keep):
                for s in range(sampling.n):
                    res = results[j * sampling.n + s]
                    f.write(json.dumps({"problem": i, "sample": s, "response": flat_texts[j * sampling.n + s],
                                        "acc": bool(res["acc"]), "score": res["score"], "pred": res.get("pred"),
                                        "reason": res.get("reason")}, ensure_ascii=False) + "\n")
    return summary


def evaluate(files: Sequence[str | Path], generator: Generator, out_dir: str | Path, n: int | None = None,
             temperature: float | None = None, top_p: float | None = None, max_response_length: int | None = None,
             max_prompt_length: int | None = None, seed: int = 0, limit: int | None = None,
             model: str = "") -> dict[str, Any]:
    """Evaluate every file; write ``results.json``, ``results.md`` and ``<benchmark>.samples.jsonl``."""
    from aspo.eval.report import write_reports

    out = Path(out_dir)
    overrides = {k: v for k, v in dict(n=n, temperature=temperature, top_p=top_p, max_response_length=max_response_length,
                                       max_prompt_length=max_prompt_length).items() if v is not None}
    summaries = []
    for f in files:
        bench = load_benchmark(f, limit)
        sampling = replace(benchmarks.sampling_for(bench.name), **overrides)
        print(f"[aspo-eval] {bench.name}: {len(bench.rows)} problems x n={sampling.n} "
              f"(temperature {sampling.temperature}, top_p {sampling.top_p}, max {sampling.max_response_length} tokens)",
              flush=True)
        summaries.append(evaluate_benchmark(bench, generator, sampling, seed, out / f"{bench.name}.samples.jsonl"))
    return write_reports(summaries, out, model=model)
