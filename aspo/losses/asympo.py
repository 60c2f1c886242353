"""ASymPO (arXiv 2606.03070): policy optimisation without behaviour log-probs.

Per response ``g`` with mean token NLL ``l_g = mean_t(-log_prob)`` under the current policy:

    loss_g = A_g * l_g / sg(l_g)          averaged over responses (seq-mean-token-mean)

The value of ``loss_g`` is ``A_g`` (zero-sum advantages give a zero-sum loss); the gradient is
``A_g * grad(l_g) / l_g``, i.e. per token ``w = 1 / l_g`` before the within-response mean.
``old_log_prob`` never enters the loss or its gradient; it is used for the ``ppo_kl`` diagnostic
only. ``l_g`` is floored at 1e-6 so a fully confident response cannot divide by zero.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import register_policy_loss

from aspo.losses.common import ClipSettings, aggregate, contract_metrics, log_ratio
from aspo.losses.sequence_nll import mean_response_nll, warn_if_not_sequence_mean

MIN_NLL = 1e-6


@register_policy_loss("asympo")
def compute_policy_loss_asympo(
    old_log_prob: Optional[torch.Tensor],
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "seq-mean-token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
    entropy: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    warn_if_not_sequence_mean("asympo", loss_agg_mode)
    s = ClipSettings.from_config(config)
    nll_sg = mean_response_nll(log_prob.detach(), response_mask).clamp_min(MIN_NLL)  # [B, 1]
    weight = nll_sg.reciprocal().expand_as(log_prob)
    loss_mat = advantages * (-log_prob) * weight

    loss = aggregate(loss_mat, response_mask, loss_agg_mode, config, rollout_is_weights)
    metrics = contract_metrics(
        ratio=None,
        log_ratio_=log_ratio(log_prob.detach(), old_log_prob) if old_log_prob is not None else None,
        advantages=advantages,
        response_mask=response_mask,
        weight=weight,
        eps_low=s.eps_low,
        eps_high=s.eps_high,
        c=s.c,
        clipped=False,
    )
    return loss, metrics
