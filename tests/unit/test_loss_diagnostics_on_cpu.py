"""aspo.loss_diagnostics: the gradient weight w read off autograd equals each loss's own w (written out by
hand from the contract), bucketed by old-policy probability; NLL by sign and gradient shares."""

from __future__ import annotations

import math

import pytest
import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig

from aspo.config import AspoPolicyLossConfig
from aspo.loss_diagnostics import bucket_name
from aspo.patches import loss_diagnostics as patch


def actor_config(**policy) -> ActorConfig:
    return ActorConfig(strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=1,
                       policy_loss=AspoPolicyLossConfig(**policy))


# One token per old-probability bucket: (old prob bucket index, ratio r, advantage A, aspo w, vanilla w).
# eps = 0.2, c = 3.
TOKENS = [
    (0, 1.10, +1.0, 1 / 1.10, 1.10),  # A>0 inside: ASPO flips to 1/r, PPO keeps r
    (1, 1.50, +1.0, 0.0, 0.0),  # A>0 above 1 + eps: hard clip for both
    (2, 0.25, +1.0, 3.0, 0.25),  # A>0 below 1/c: ASPO's soft dual clip keeps c; PPO's weight r
    (3, 0.50, +1.0, 2.0, 0.50),
    (4, 0.90, -1.0, 0.90, 0.90),  # A<0 inside: r for both
    (5, 0.50, -1.0, 0.0, 0.0),  # A<0 below 1 - eps: hard clip
    (6, 4.00, -1.0, 3.0, 0.0),  # A<0 above c: ASPO keeps the gradient at c; verl's dual clip zeroes it
    (7, 2.00, -1.0, 2.0, 2.00),
]


def _batch():
    old_p = torch.tensor([[(b + 0.5) / 10 for b, *_ in TOKENS]], dtype=torch.float64)
    ratio = torch.tensor([[t[1] for t in TOKENS]], dtype=torch.float64)
    old = old_p.log()
    log_prob = (old + ratio.log()).clone().requires_grad_(True)
    adv = torch.tensor([[t[2] for t in TOKENS]], dtype=torch.float64)
    mask = torch.ones_like(adv, dtype=torch.bool)
    return old, log_prob, adv, mask


def _run(loss_mode: str, old, log_prob, adv, mask, agg="token-mean", **policy):
    return patch._call_with_diagnostics(
        get_policy_loss_fn(loss_mode), old_log_prob=old, log_prob=log_prob, advantages=adv, response_mask=mask,
        loss_agg_mode=agg, config=actor_config(loss_mode=loss_mode, **policy), rollout_is_weights=None,
    )


@pytest.mark.parametrize("loss_mode, column", [("aspo", 3), ("vanilla", 4)])
def test_credit_buckets_hold_each_losses_own_gradient_weight(loss_mode, column):
    loss, metrics = _run(loss_mode, *_batch())
    for token in TOKENS:
        b, sign = token[0], "pos" if token[2] > 0 else "neg"
        assert metrics[bucket_name(sign, b / 10, (b + 1) / 10)] == pytest.approx(token[column], rel=1e-9), token
    assert not [k for k in metrics if k.startswith("actor/credit_") and ("0.8_0.9" in k or "0.9_1.0" in k)]
    assert loss.requires_grad  # the real backward still works after the diagnostics' autograd.grad
    loss.backward()


def test_grad_shares_add_up_and_follow_the_weights():
    _, metrics = _run("aspo", *_batch())
    pos = sum(abs(t[3]) for t in TOKENS if t[2] > 0)
    neg = sum(abs(t[3]) for t in TOKENS if t[2] < 0)
    assert metrics["actor/pg_grad_share_pos"] == pytest.approx(pos / (pos + neg))
    assert metrics["actor/pg_grad_share_pos"] + metrics["actor/pg_grad_share_neg"] == pytest.approx(1.0)


def _responses():
    """Two responses of 3 tokens, A = +1 and -1, with mean NLLs 0.5 and 2.0."""
    log_prob = torch.tensor([[-0.5, -0.25, -0.75], [-2.0, -1.0, -3.0]], dtype=torch.float64).requires_grad_(True)
    old = log_prob.detach() - 0.01
    adv = torch.tensor([[1.0] * 3, [-1.0] * 3], dtype=torch.float64)
    return old, log_prob, adv, torch.ones_like(adv, dtype=torch.bool)


def test_nll_by_sign_and_asympo_weight_is_one_over_l():
    _, metrics = _run("asympo", *_responses(), agg="seq-mean-token-mean")
    assert metrics["actor/nll_pos_adv"] == pytest.approx(0.5)
    assert metrics["actor/nll_neg_adv"] == pytest.approx(2.0)
    assert metrics["actor/nll_ratio_neg_pos"] == pytest.approx(4.0)
    w_pos = [v for k, v in metrics.items() if k.startswith("actor/credit_w_pos")]
    w_neg = [v for k, v in metrics.items() if k.startswith("actor/credit_w_neg")]
    assert w_pos and all(v == pytest.approx(1 / 0.5) for v in w_pos)
    assert w_neg and all(v == pytest.approx(1 / 2.0) for v in w_neg)
    # ASymPO's normalisation: the low-NLL positive response gets 4x the gradient of the negative one.
    assert metrics["actor/pg_grad_share_pos"] == pytest.approx(0.8)


def test_spo_weight_is_lambda_on_negative_responses():
    _, metrics = _run("spo", *_responses(), agg="seq-mean-token-mean", spo_lambda=0.25)
    assert all(v == pytest.approx(1.0) for k, v in metrics.items() if k.startswith("actor/credit_w_pos"))
    assert all(v == pytest.approx(0.25) for k, v in metrics.items() if k.startswith("actor/credit_w_neg"))


def test_no_gradient_no_diagnostics():
    old, log_prob, adv, mask = _batch()
    with torch.no_grad():
        _, metrics = _run("aspo", old, log_prob, adv, mask)
    assert not [k for k in metrics if k.startswith(("actor/credit_", "actor/nll"))]


def test_install_composes_with_the_entropy_hook(monkeypatch):
    from verl.workers.utils import losses

    from aspo.patches import entropy_to_loss

    monkeypatch.setattr(losses, "get_policy_loss_fn", losses.get_policy_loss_fn)
    monkeypatch.setattr(patch, "_ORIGINAL_LOOKUP", None)
    monkeypatch.setattr(entropy_to_loss, "_ORIGINAL_LOOKUP", None)
    patch.install()
    patch.install()  # idempotent
    entropy_to_loss.install()
    old, log_prob, adv, mask = _batch()
    token = entropy_to_loss._ENTROPY.set(torch.rand_like(adv))
    try:
        fn = losses.get_policy_loss_fn("aspo")
        _, metrics = fn(old_log_prob=old, log_prob=log_prob, advantages=adv, response_mask=mask,
                        loss_agg_mode="token-mean", config=actor_config(loss_mode="aspo", entropy_clip=True),
                        rollout_is_weights=None)
    finally:
        entropy_to_loss._ENTROPY.reset(token)
    assert "actor/pg_grad_share_pos" in metrics and "actor/is_weight_pos_mean" in metrics
    assert not math.isnan(metrics["actor/pg_grad_share_pos"])


def test_diagnostics_switch():
    assert patch.diagnostics_enabled(actor_config()) is True
    assert patch.diagnostics_enabled(actor_config(diagnostics=False)) is False
