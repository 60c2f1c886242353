"""``no_is``: ASPO's ablation without importance weights (arXiv 2510.06062, ablation).

Every unclipped token gets weight ``w = 1``; the hard clip is kept, so stale tokens still stop
contributing (clip ranges as ASPO's, entropy-aware clip included when it is on):

    A < 0:  w = 0 if r < 1 - eps_low,  else 1
    A > 0:  w = 0 if r > 1 + eps_high, else 1

There is no dual clip to apply (``w`` never exceeds 1); the dual-clip fractions are still reported
so runs can be compared with ``aspo``. ``loss_t = -A * (1 + log_prob - sg(log_prob))`` on unclipped
tokens: value ``-A``, gradient ``-A``.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import register_policy_loss

from aspo.losses.clip_ranges import clip_ranges
from aspo.losses.common import ClipSettings, aggregate, contract_metrics, log_ratio


@register_policy_loss("no_is")
def compute_policy_loss_no_is(
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
    ratio = torch.exp(lr)
    neg = advantages < 0
    # Unclipped tokens; clamp bounds are inclusive, as in PPO's clip.
    weight = torch.where(neg, ratio >= 1 - eps_low, ratio <= 1 + eps_high).to(log_prob.dtype)

    loss_mat = -advantages * weight * (1.0 + log_prob - log_prob.detach())

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
