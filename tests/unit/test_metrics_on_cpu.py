"""Advantage-sign split metrics (aspo.metrics)."""

from __future__ import annotations

import pytest
import torch

from aspo import metrics


def test_entropy_by_sign_uses_valid_tokens_of_each_side():
    entropy = torch.tensor([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0], [2.0, 2.0, 2.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1]])
    adv = torch.tensor([[1.0, 1.0, 1.0], [-0.5, -0.5, -0.5], [0.0, 0.0, 0.0]])
    out = metrics.entropy_by_sign(entropy, adv, mask)
    assert out == {"actor/entropy_pos_adv": pytest.approx(2.0), "actor/entropy_neg_adv": pytest.approx(7.0)}


def test_entropy_by_sign_omits_an_absent_side():
    out = metrics.entropy_by_sign(torch.ones(2, 2), torch.ones(2, 2), torch.ones(2, 2))
    assert set(out) == {"actor/entropy_pos_adv"}


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
