"""SPO (arXiv 2606.03070): sequence-level NLL weighting with damped negatives.

Per response ``g`` with mean token NLL ``l_g = mean_t(-log_prob)``:

    loss_g = s_g * A_g * l_g,    s_g = 1 if A_g > 0 else lambda     (0 < lambda <= 1)

averaged over responses (seq-mean-token-mean). Per token ``w = s_g``. ``lambda`` is
``actor_rollout_ref.actor.policy_loss.spo_lambda`` (see ``aspo.config``). No importance ratio:
``old_log_prob`` feeds the ``ppo_kl`` diagnostic only.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import register_policy_loss

from aspo.losses.common import ClipSettings, aggregate, contract_metrics, log_ratio, policy_loss_setting
from aspo.losses.sequence_nll import warn_if_not_sequence_mean


@register_policy_loss("spo")
def compute_policy_loss_spo(
    old_log_prob: Optional[torch.Tensor],
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "seq-mean-token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
    entropy: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    warn_if_not_sequence_mean("spo", loss_agg_mode)
    s = ClipSettings.from_config(config)
    lam = float(policy_loss_setting(config, "spo_lambda"))
    weight = torch.where(advantages < 0, lam, 1.0).to(log_prob.dtype)
    loss_mat = weight * advantages * (-log_prob)

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
