"""The evaluation pipeline with a scripted generator: known responses in, exact numbers out.

Exercises everything but the model: loading converted benchmark parquet, chat templating,
scoring through our math and code verifiers, aggregation, JSON/Markdown/sample files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aspo.data.prepare import prepare_livecodebench, prepare_math
from aspo.eval.generate import Generations
from aspo.eval.runner import EvalError, evaluate, load_benchmark

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"


class EchoTokenizer:
    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return "".join(m["content"] for m in messages)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


class ScriptedGenerator:
    """Returns ``script(prompt_index, sample_index)`` for each sample; records the calls."""

    def __init__(self, script):
        self.tokenizer = EchoTokenizer()
        self.script, self.calls = script, []

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed):
        self.calls.append(dict(prompts=len(prompts), n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens))
        texts = [[self.script(i, s) for s in range(n)] for i in range(len(prompts))]
        return Generations(texts, tokens=10 * n * len(prompts), seconds=1.0)


def test_math_benchmark_numbers_are_exact(tmp_path):
    bench = prepare_math("aime2024", tmp_path / "data", str(FIXTURES / "aime_2024.jsonl"))
    answers = ["204", "113", "315"]
    right_count = [4, 1, 0]  # problem i has right_count[i] correct samples out of 4

    def script(i, s):
        return f"<think>x</think> \\boxed{{{answers[i] if s < right_count[i] else 7}}}"

    gen = ScriptedGenerator(script)
    report = evaluate([bench], gen, tmp_path / "out", n=4)
    res = report["benchmarks"]["aime2024"]
    assert res["avg@4"] == pytest.approx(100 * 5 / 12)
    assert res["pass@4"] == pytest.approx(100 * 2 / 3)
    assert res["pass@2"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    assert res["tokens_per_s"] == 120.0
    # AIME's official sampling, n overridden.
    assert gen.calls == [dict(prompts=3, n=4, temperature=0.8, top_p=0.95, max_new_tokens=32768)]
    samples = [json.loads(line) for line in (tmp_path / "out" / "aime2024.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and sum(s["acc"] for s in samples) == 5
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["benchmarks"]["aime2024"]["avg@4"] == res["avg@4"] and saved["paper"] == {"aime2024": {"avg": 49.0}}
    assert "| AIME 2024 | 3 | 4 | 41.7 | 49.0 | 66.7 | - |" in (tmp_path / "out" / "results.md").read_text()


def test_code_benchmark_through_the_sandbox(tmp_path):
    import reward

    reward.configure(code_timeout_s=5.0, code_slots=2)
    bench = prepare_livecodebench("livecodebench_v5", tmp_path / "data", [str(FIXTURES / "livecodebench_code_generation_lite.jsonl")])
    good = ["a, b = map(int, input().split())\nprint(a + b)",
            "class Solution:\n    def maxProduct(self, nums):\n        s = sorted(nums)\n        return s[-1] * s[-2]"]

    def script(i, s):  # problem 0: 1 of 2 right; problem 1: 2 of 2 right
        code = good[i] if (i == 1 or s == 0) else "print('nope')"
        return f"<think>x</think>\n```python\n{code}\n```"

    report = evaluate([bench], ScriptedGenerator(script), tmp_path / "out", n=2)
    res = report["benchmarks"]["livecodebench_v5"]
    assert (res["avg@2"], res["pass@2"], res["pass@1"]) == (75.0, 100.0, 75.0)
    assert res["sampling"]["n"] == 2 and res["sampling"]["temperature"] == 0.8


def test_overlong_prompts_are_skipped_like_the_official_eval(tmp_path):
    bench = prepare_math("minerva", tmp_path / "data", str(FIXTURES / "minerva.jsonl"))
    report = evaluate([bench], ScriptedGenerator(lambda i, s: "\\boxed{100}"), tmp_path / "out", n=1,
                      max_prompt_length=28)  # the Minerva prompts are 30 and 27 words long

    res = report["benchmarks"]["minerva"]
    assert res["skipped_prompts"] == 1 and res["problems"] == 1 and res["avg@1"] == 100.0
    with pytest.raises(EvalError, match="every prompt is longer than max_prompt_length=20"):
        evaluate([bench], ScriptedGenerator(lambda i, s: "x"), tmp_path / "out2", n=1, max_prompt_length=20)


def test_bad_benchmark_files_fail_with_one_line(tmp_path):
    with pytest.raises(EvalError, match="does not exist; write it with scripts/prepare_math.py"):
        load_benchmark(tmp_path / "nope.parquet")
    import pandas as pd

    chat = [{"role": "user", "content": "1+1?"}]
    gt = {"style": "rule", "ground_truth": "2"}
    pd.DataFrame({"data_source": ["aime2024", "math500"], "prompt": [chat, chat], "reward_model": [gt, gt]}).to_parquet(
        tmp_path / "mixed.parquet")
    with pytest.raises(EvalError, match="one benchmark per file"):
        load_benchmark(tmp_path / "mixed.parquet")
