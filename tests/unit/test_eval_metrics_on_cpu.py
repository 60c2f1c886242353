"""avg@k, the unbiased pass@k estimator, aggregation and the Markdown report."""

from __future__ import annotations

import itertools
from math import comb

import pytest

from aspo.eval import benchmarks, metrics
from aspo.eval.report import markdown


@pytest.mark.parametrize("n,c,k", [(8, 0, 1), (8, 1, 1), (8, 3, 2), (16, 5, 8), (16, 16, 16), (10, 9, 3), (32, 1, 32)])
def test_pass_at_k_matches_the_binomial_formula(n, c, k):
    assert metrics.pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_k_is_the_probability_over_k_subsets():
    # Brute force: the share of k-subsets of the n samples that contain a correct one.
    samples = [True, False, False, True, False, False]
    for k in range(1, len(samples) + 1):
        subsets = list(itertools.combinations(samples, k))
        assert metrics.pass_at_k(len(samples), sum(samples), k) == pytest.approx(
            sum(any(s) for s in subsets) / len(subsets))


def test_pass_at_k_rejects_impossible_inputs():
    for n, c, k in [(4, 5, 1), (4, 1, 0), (4, 1, 5), (4, -1, 1)]:
        with pytest.raises(ValueError, match="pass@k needs"):
            metrics.pass_at_k(n, c, k)


def test_aggregate_reports_avg_and_pass_in_percent():
    correct = [[True, False, False, False], [True, True, True, True], [False] * 4]
    out = metrics.aggregate(correct)
    assert out["problems"] == 3 and out["n"] == 4
    assert out["avg@4"] == pytest.approx(100 * 5 / 12)
    assert out["pass@1"] == pytest.approx(out["avg@4"])  # pass@1 is avg@n
    assert out["pass@4"] == pytest.approx(100 * 2 / 3)
    assert out["pass@2"] == pytest.approx(100 * (0.5 + 1 + 0) / 3)
    assert set(out) == {"problems", "n", "avg@4", "pass@1", "pass@2", "pass@4"}
    assert metrics.report_ks(16) == [1, 2, 4, 8, 16] and metrics.report_ks(6) == [1, 2, 4, 6]
    with pytest.raises(ValueError, match="same number of samples"):
        metrics.aggregate([[True], [True, False]])


def test_markdown_puts_paper_numbers_beside_ours():
    summaries = [{"benchmark": b, "problems": 10, "n": 4, "avg@4": 50.0, "pass@4": 70.0}
                 for b in benchmarks.MATH_BENCHMARKS]
    summaries.append({"benchmark": "livecodebench_v5", "problems": 3, "n": 8, "avg@8": 25.0, "pass@8": 40.0})
    md = markdown(summaries, "m")
    assert "| AIME 2024 | 10 | 4 | 50.0 | 49.0 | 70.0 | - |" in md
    assert "| LiveCodeBench v5 (2024.08-2025.02) | 3 | 8 | 25.0 | 31.5 | 40.0 | 47.0 |" in md
    assert "**math average** | | | **50.0** | **59.3** (GRPO 53.5)" in md


def test_official_sampling_defaults():
    v5, v6 = benchmarks.sampling_for("livecodebench_v5"), benchmarks.sampling_for("livecodebench_v6")
    assert (v5.n, v6.n, v5.temperature, v5.top_p, v5.max_response_length) == (8, 16, 0.8, 0.95, 32768)
    assert benchmarks.sampling_for("aime2024").n == 32
