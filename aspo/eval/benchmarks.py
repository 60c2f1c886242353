"""Benchmarks: sampling defaults and the ASPO paper's numbers to print beside ours.

Sampling follows the official Archer2.0 evaluation (``scripts/eval/run_eval.sh``,
``tools/run_eval_pipeline.sh``): temperature 0.8, top_p 0.95, prompts up to 2048 tokens and
responses up to 32768; n = 8 for LiveCodeBench v5, 16 for v6, 32 for AIME 2024/2025. The official
scripts do not evaluate AMC/MATH-500/Minerva/OlympiadBench; we use n = 32 for AMC 2023 (40
problems, high variance) and n = 4 for the three large sets. ``--n`` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    n: int
    temperature: float = 0.8
    top_p: float = 0.95
    max_prompt_length: int = 2048
    max_response_length: int = 32768


SAMPLING = {
    "aime2024": Sampling(32),
    "aime2025": Sampling(32),
    "amc2023": Sampling(32),
    "math500": Sampling(4),
    "minerva": Sampling(4),
    "olympiadbench": Sampling(4),
    "livecodebench_v5": Sampling(8),
    "livecodebench_v6": Sampling(16),
}
DEFAULT_SAMPLING = Sampling(4)

MATH_BENCHMARKS = ("aime2024", "aime2025", "amc2023", "math500", "minerva", "olympiadbench")
CODE_BENCHMARKS = ("livecodebench_v5", "livecodebench_v6")
SUITES = {"math": MATH_BENCHMARKS, "code": CODE_BENCHMARKS}

LABELS = {
    "aime2024": "AIME 2024", "aime2025": "AIME 2025", "amc2023": "AMC 2023", "math500": "MATH-500",
    "minerva": "Minerva", "olympiadbench": "OlympiadBench",
    "livecodebench_v5": "LiveCodeBench v5 (2024.08-2025.02)", "livecodebench_v6": "LiveCodeBench v6 (2025.02-2025.05)",
}

# ASPO (arXiv 2510.06062), DeepSeek-R1-Distill-Qwen-1.5B. Math: avg@k per benchmark (and their
# mean; GRPO's mean in the same table is 53.5). Code: avg@k and pass@k with k = 8 (v5) / 16 (v6).
PAPER = {
    "aime2024": {"avg": 49.0}, "aime2025": {"avg": 35.1}, "amc2023": {"avg": 87.2},
    "math500": {"avg": 90.5}, "minerva": {"avg": 35.1}, "olympiadbench": {"avg": 58.8},
    "livecodebench_v5": {"avg": 31.5, "pass": 47.0}, "livecodebench_v6": {"avg": 30.5, "pass": 46.0},
}
PAPER_MATH_MEAN = {"aspo": 59.3, "grpo": 53.5}


def sampling_for(benchmark: str) -> Sampling:
    return SAMPLING.get(benchmark, DEFAULT_SAMPLING)
