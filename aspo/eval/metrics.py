"""avg@k and the unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models
Trained on Code"): with n samples of which c are correct, pass@k = 1 - C(n-c, k) / C(n, k).

avg@k is the mean per-sample accuracy over the k = n samples of every problem (= pass@1's
unbiased estimate). Both are averaged over problems, then reported in percent.
"""

from __future__ import annotations

from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem, computed as a product to stay exact for large n."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def report_ks(n: int) -> list[int]:
    """The k values reported for n samples: powers of two below n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def aggregate(correct: Sequence[Sequence[bool]]) -> dict:
    """Per-benchmark numbers from per-problem lists of per-sample correctness (all the same length n).

    Returns ``{"problems", "n", "avg@n", "pass@k" for k in report_ks(n)}`` in percent.
    """
    if not correct:
        raise ValueError("no problems to aggregate")
    n = len(correct[0])
    if n == 0 or any(len(c) != n for c in correct):
        raise ValueError(f"every problem needs the same number of samples (> 0); got {sorted({len(c) for c in correct})}")
    counts = [sum(bool(x) for x in c) for c in correct]
    out: dict = {"problems": len(correct), "n": n, f"avg@{n}": 100.0 * sum(counts) / (n * len(correct))}
    for k in report_ks(n):
        out[f"pass@{k}"] = 100.0 * sum(pass_at_k(n, c, k) for c in counts) / len(correct)
    return out
