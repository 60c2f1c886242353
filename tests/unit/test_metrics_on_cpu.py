"""Advantage-sign split metrics (aspo.metrics)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aspo import metrics
from aspo.ngram import repetition_ratios


def test_entropy_by_sign_uses_valid_tokens_of_each_side():
    entropy = torch.tensor([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1]])
    adv = torch.tensor([[1.0, 1.0, 1.0], [-0.5, -0.5, -0.5], [0.0, 0.0, 0.0]])
    out = metrics.entropy_by_sign(entropy, adv, mask)
    assert out == {"actor/entropy_pos_adv": pytest.approx(2.0), "actor/entropy_neg_adv": pytest.approx(7.0)}


def test_entropy_by_sign_omits_an_absent_side():
    out = metrics.entropy_by_sign(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2))
    assert set(out) == {"actor/entropy_pos_adv"}


def test_sign_shares_count_responses_and_log_zero_for_an_absent_side():
    adv = torch.tensor([[1.0, 1.0], [-0.5, -0.5], [0.0, 0.0], [2.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 0]])
    assert metrics.sign_shares(adv, mask) == {"response/share_pos_adv": 0.5, "response/share_neg_adv": 0.25}
    assert metrics.sign_shares(torch.zeros(2, 2), torch.ones(2, 2)) == {
        "response/share_pos_adv": 0.0, "response/share_neg_adv": 0.0}


def test_repetition_ratio():
    assert metrics.repetition_ratio([1, 2, 3], 4) == 0.0
    assert metrics.repetition_ratio([1, 2, 1, 2, 1, 2], 2) == pytest.approx(3 / 5)
    assert metrics.repetition_ratio(list(range(30)), 20) == 0.0
    assert metrics.repetition_ratio([7] * 25, 20) == pytest.approx(5 / 6)


def test_repetition_by_sign_ignores_padding():
    responses = torch.tensor([[5, 5, 5, 5, 0, 0], [1, 2, 3, 4, 5, 6]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    adv = torch.tensor([[1.0] * 6, [-1.0] * 6])
    out = metrics.repetition_by_sign(responses, adv, mask, n=2)
    assert out == {"response/repetition_2gram_pos_adv": pytest.approx(2 / 3), "response/repetition_2gram_neg_adv": 0.0}


# ---- the vectorised repetition ratio (aspo.ngram) against the definition (metrics.repetition_ratio) ----


def _reference(tokens: np.ndarray, mask: np.ndarray, n: int) -> list[float]:
    return [metrics.repetition_ratio(row[m].tolist(), n) for row, m in zip(tokens, mask, strict=True)]


def _random_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """Rows of different kinds: tiny vocabularies (many repeats), periodic text with a few edits,
    a realistic vocabulary (few repeats), and wide or negative ids (no bit packing possible)."""
    out = np.empty((rows, width), dtype=np.int64)
    for r in range(rows):
        kind = r % 5
        if kind == 0:
            out[r] = rng.integers(0, rng.integers(1, 4), width)
        elif kind == 1:
            period = rng.integers(1, 9)
            out[r] = np.resize(rng.integers(0, 50, period), width)
            edits = rng.integers(0, width, rng.integers(0, 4))
            out[r, edits] = rng.integers(0, 50, len(edits))
        elif kind == 2:
            out[r] = rng.integers(0, 151_936, width)
        elif kind == 3:
            out[r] = rng.integers(-(2**40), 2**40, width) * rng.integers(0, 2, width)
        else:
            out[r] = rng.integers(0, 2**62, width) * (rng.random(width) < 0.5)
    return out


def _random_mask(rng: np.random.Generator, rows: int, width: int, holes: bool) -> np.ndarray:
    lengths = rng.integers(0, width + 1, rows)
    lengths[:2] = (width, 0)  # always one full and one empty row
    mask = np.arange(width)[None, :] < lengths[:, None]
    if holes:
        mask &= rng.random((rows, width)) < 0.8
    return mask


@pytest.mark.parametrize("holes", [False, True], ids=["right-padded", "holes"])
@pytest.mark.parametrize("seed", range(6))
def test_fast_repetition_equals_the_definition(seed, holes):
    rng = np.random.default_rng(seed)
    rows, width = 30, int(rng.integers(1, 90))
    tokens = _random_rows(rng, rows, width)
    mask = _random_mask(rng, rows, width, holes)
    for n in sorted({1, 2, 3, 5, 20, max(1, width - 1), width, width + 1, 2 * width + 3}):
        expected = _reference(tokens, mask, n)
        # A small chunk size so several chunks (and a last partial one) are exercised.
        got = repetition_ratios(tokens, mask, n, chunk_tokens=7 * width).tolist()
        assert got == expected, f"seed={seed} n={n} width={width}"


def test_fast_repetition_long_repetitive_rows():
    """Rows long enough that the 20-gram codes go through two rank steps, with heavy repetition."""
    rng = np.random.default_rng(7)
    width = 3000
    tokens = _random_rows(rng, 10, width)
    tokens[0] = np.resize(rng.integers(0, 151_936, 37), width)  # a degenerate loop of 37 tokens
    mask = _random_mask(rng, 10, width, holes=False)
    assert repetition_ratios(tokens, mask, 20).tolist() == _reference(tokens, mask, 20)
    loop = repetition_ratios(tokens[:1], np.ones((1, width), bool), 20)[0]
    assert loop == pytest.approx((width - 19 - 37) / (width - 19))  # all but the first 37 20-grams repeat


def test_fast_repetition_rejects_bad_input():
    with pytest.raises(ValueError, match="n-gram size must be >= 1"):
        repetition_ratios(np.zeros((1, 3), np.int64), np.ones((1, 3), bool), 0)
    with pytest.raises(ValueError, match="longer than"):
        repetition_ratios(np.zeros((1, (1 << 21) + 1), np.int32), np.ones((1, (1 << 21) + 1), bool), 2)
    with pytest.raises(ValueError, match="one shape"):
        repetition_ratios(np.zeros((1, 3), np.int64), np.ones((1, 4), bool), 2)


def test_repetition_by_sign_matches_the_definition_per_side():
    rng = np.random.default_rng(3)
    tokens = _random_rows(rng, 40, 60)
    mask = _random_mask(rng, 40, 60, holes=True)
    adv = torch.from_numpy(rng.choice([-1.0, 0.0, 1.0], 40)).unsqueeze(-1).expand(40, 60)
    mask_t = torch.from_numpy(mask).long()
    ratios = _reference(tokens, mask, 4)
    sign = metrics.response_sign(adv, mask_t).tolist()
    expected = {}
    for name, s in (("pos", 1.0), ("neg", -1.0)):
        chosen = [r for r, sg in zip(ratios, sign, strict=True) if sg == s]
        expected[f"response/repetition_4gram_{name}_adv"] = sum(chosen) / len(chosen)
    got = metrics.repetition_by_sign(torch.from_numpy(tokens), adv, mask_t, n=4)
    assert got == expected


def test_bench_metrics_runs_and_checks_equality():
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_metrics.py"
    out = subprocess.run([sys.executable, str(script), "--rows", "12", "--len", "300"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "equality on 12 rows: all equal" in out.stdout and "speed-up old/new" in out.stdout
