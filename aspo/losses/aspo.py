"""ASPO: Asymmetric Importance Sampling Policy Optimization (arXiv 2510.06062).

Gradient weight ``w`` per valid token (``d loss_t / d log_prob_t = -A * w``):

    A < 0 (PPO side):      w = 0    if r < 1 - eps_low    (hard clip)
                           w = c    if r > c              (soft dual clip: gradient kept at c)
                           w = r    otherwise
    A > 0 (flipped side):  w = 0    if r > 1 + eps_high   (hard clip)
                           w = c    if r < 1 / c          (soft dual clip)
                           w = 1/r  otherwise
    A = 0:                 no gradient

The flipped weight is a stop-gradient trick: the paper writes ``pi_old * pi / sg(pi^2)``, the
contract ``-A * (rc / sg(rc)) / sg(rc)`` with ``rc = min(r, 1 + eps_high)``. Here every branch is
written the same way, ``loss_t = -A * (sg(v) + sg(w) * (log_prob - sg(log_prob)))``: the value
``v`` is the reference's (``-A * max(r, 1 - eps_low)`` for A < 0, ``-A / rc`` for A > 0,
``-A * c * log_prob`` on the soft dual clip) and the gradient is exactly ``-A * w``. Values and
gradients match the official Archer2.0 ``compute_policy_loss_archer`` (uniform clip);
on-policy (r = 1) it is exactly GRPO/vanilla PPO.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import register_policy_loss

from aspo.losses.clip_ranges import clip_ranges
from aspo.losses.common import ClipSettings, aggregate, contract_metrics, log_ratio


@register_policy_loss("aspo")
def compute_policy_loss_aspo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
    entropy: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    s = ClipSettings.from_config(config)
    eps_low, eps_high = clip_ranges(config, s, response_mask, entropy)
    lr = log_ratio(log_prob, old_log_prob)

    # Weights and values are computed without autograd; the loss then carries them with one
    # stop-gradient product, so the backward pass is a single multiply (cheaper than vanilla's).
    with torch.no_grad():
        ratio = torch.exp(lr)
        neg = advantages < 0
        # Clamp bounds are inclusive, as in PPO's clip: r == 1 - eps_low still gets gradient.
        inside = torch.where(neg, ratio >= 1 - eps_low, ratio <= 1 + eps_high)
        dual = torch.where(neg, ratio > s.c, ratio < 1.0 / s.c)
        weight = torch.where(dual, s.c, torch.where(inside, torch.where(neg, ratio, ratio.reciprocal()), 0.0))
        # Values as in the reference: -A * max(r, 1 - eps_low) for A < 0, -A / min(r, 1 + eps_high)
        # for A > 0, -A * c * log_prob on the soft dual clip.
        value = torch.where(
            dual,
            s.c * log_prob,
            torch.where(neg, torch.clamp(ratio, min=1 - eps_low), torch.clamp(ratio, max=1 + eps_high).reciprocal()),
        )
    # value: as above; gradient: -A * w * grad(log_prob).
    loss_mat = -advantages * (value + weight * (log_prob - log_prob.detach()))

    loss = aggregate(loss_mat, response_mask, loss_agg_mode, config, rollout_is_weights)
    metrics = contract_metrics(
        ratio=ratio,
        log_ratio_=lr,
        advantages=advantages,
        response_mask=response_mask,
        weight=weight,
        eps_low=eps_low,
        eps_high=eps_high,
        c=s.c,
    )
    return loss, metrics
