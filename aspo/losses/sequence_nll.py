"""Shared shape of ASymPO and SPO: per-response losses on the mean token NLL.

Both methods define the loss per response ``g`` on ``l_g = mean_t(-log_prob)`` under the current
policy, averaged over responses. In per-token form, ``loss_t = k_g * (-log_prob_t)`` aggregated
with ``seq-mean-token-mean`` gives ``mean_g(k_g * l_g)``: exactly the per-response form, with the
global batch info making micro-batches add up.

Under another ``loss_agg_mode`` the per-response balance (the point of these methods) is lost:
we honour the mode the user asked for and warn once per process.
"""

from __future__ import annotations

import warnings

import torch

NATURAL_AGG_MODE = "seq-mean-token-mean"
_warned: set[tuple[str, str]] = set()


def warn_if_not_sequence_mean(loss_name: str, loss_agg_mode: str) -> None:
    if loss_agg_mode == NATURAL_AGG_MODE or (loss_name, loss_agg_mode) in _warned:
        return
    _warned.add((loss_name, loss_agg_mode))
    warnings.warn(
        f"policy loss '{loss_name}' is defined per response (seq-mean-token-mean); with "
        f"actor_rollout_ref.actor.loss_agg_mode={loss_agg_mode} responses are weighted by length and the "
        f"loss value no longer equals the advantage. Set actor_rollout_ref.actor.loss_agg_mode={NATURAL_AGG_MODE} "
        "to follow the paper.",
        stacklevel=3,
    )


def mean_response_nll(log_prob: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """``l_g = mean_t(-log_prob)`` over each response's valid tokens, ``[B, 1]``."""
    mask = response_mask.to(log_prob.dtype)
    return -(log_prob * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp_min(1.0)
