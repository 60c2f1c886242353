"""Pieces every policy loss here shares: settings, the ratio, aggregation and the metrics.

Notation follows ``shared/design/aspo.md``: per valid response token, ``r = exp(clamp(log_prob -
old_log_prob, -20, 20))``, ``A`` the advantage, ``eps_low/eps_high`` the hard-clip ranges, ``c``
the dual-clip bound, ``w`` the gradient weight (``d loss_t / d log_prob_t = -A * w``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from verl.trainer.ppo.core_algos import agg_loss

from aspo.config import DEFAULTS, ConfigError, _get

LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class ClipSettings:
    """The PPO-side numbers a loss reads from verl's actor config."""

    eps_low: float
    eps_high: float
    c: float

    @classmethod
    def from_config(cls, config: Any) -> "ClipSettings":
        clip_ratio = _get(config, "clip_ratio", 0.2)
        c = float(_get(config, "clip_ratio_c", 3.0))
        if c <= 1.0:
            raise ConfigError(
                f"actor_rollout_ref.actor.clip_ratio_c={c} is invalid: the dual-clip bound c must be > 1; "
                "e.g. actor_rollout_ref.actor.clip_ratio_c=3.0"
            )
        return cls(
            eps_low=float(_get(config, "clip_ratio_low", clip_ratio)),
            eps_high=float(_get(config, "clip_ratio_high", clip_ratio)),
            c=c,
        )


def policy_loss_setting(config: Any, key: str) -> Any:
    """A setting of ``config.policy_loss`` with aspo's default when verl's stock config lacks it."""
    return _get(_get(config, "policy_loss", None), key, DEFAULTS[key])


def log_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    """``clamp(log_prob - old_log_prob, -20, 20)``, as verl's vanilla computes it."""
    return torch.clamp(log_prob - old_log_prob, min=-LOG_RATIO_CLAMP, max=LOG_RATIO_CLAMP)


def aggregate(
    loss_mat: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str,
    config: Any,
    rollout_is_weights: Optional[torch.Tensor],
) -> torch.Tensor:
    """verl's ``agg_loss`` with the global batch info, after the rollout-correction weights.

    ``global_batch_info`` (dp size, global token / sequence counts) is what makes the sum of
    micro-batch gradients equal the full-batch gradient; verl's ``ppo_loss`` fills it in.
    """
    if rollout_is_weights is not None:
        loss_mat = loss_mat * rollout_is_weights
    global_batch_info = _get(config, "global_batch_info", None) or {}
    return agg_loss(loss_mat=loss_mat, loss_mask=response_mask, loss_agg_mode=loss_agg_mode, **global_batch_info)


def masked_fraction(condition: torch.Tensor, mask: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    return (condition & mask).sum() / n_valid


def contract_metrics(
    *,
    ratio: Optional[torch.Tensor],
    log_ratio_: Optional[torch.Tensor],
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    weight: torch.Tensor,
    eps_low: float | torch.Tensor,
    eps_high: float | torch.Tensor,
    c: float,
    clipped: bool = True,
) -> dict[str, float]:
    """The metrics of the contract, under verl's ``actor/`` prefix.

    Fractions are means over all valid response tokens (so upper + lower = ``pg_clipfrac``).
    ``is_weight_{pos,neg}_mean`` average the gradient weight ``w`` over the valid tokens of each
    advantage sign, clipped tokens (``w = 0``) included; ``is_weight_max`` is the largest ``w``.
    ``clipped=False`` (losses without ratio clipping) reports zero clip fractions.

    All values are stacked and moved to the host with one ``tolist()``: one device sync per
    micro-batch instead of one per metric.
    """
    with torch.no_grad():
        mask = response_mask.bool()
        n_valid = mask.sum().clamp_min(1)
        pos = (advantages > 0) & mask
        neg = (advantages < 0) & mask
        zero = torch.zeros((), device=advantages.device)
        if ratio is not None and clipped:
            upper = masked_fraction(pos & (ratio > 1 + eps_high), mask, n_valid)
            lower = masked_fraction(neg & (ratio < 1 - eps_low), mask, n_valid)
            dual_pos = masked_fraction(pos & (ratio < 1.0 / c), mask, n_valid)
            dual_neg = masked_fraction(neg & (ratio > c), mask, n_valid)
        else:
            upper = lower = dual_pos = dual_neg = zero
        ppo_kl = -(log_ratio_ * mask).sum() / n_valid if log_ratio_ is not None else zero
        w = weight.detach()
        w_pos = (w * pos).sum() / pos.sum().clamp_min(1)
        w_neg = (w * neg).sum() / neg.sum().clamp_min(1)
        w_max = torch.where(mask, w, torch.zeros_like(w)).max() if w.numel() else zero
        pos_frac = pos.sum() / n_valid
        values = torch.stack(
            [v.double() for v in (upper, lower, upper + lower, dual_pos, dual_neg, ppo_kl, w_pos, w_neg, w_max, pos_frac)]
        ).tolist()
    names = (
        "pg_clipfrac_upper",
        "pg_clipfrac_lower",
        "pg_clipfrac",
        "pg_dualclipfrac_pos",
        "pg_dualclipfrac_neg",
        "ppo_kl",
        "is_weight_pos_mean",
        "is_weight_neg_mean",
        "is_weight_max",
        "pos_token_frac",
    )
    return {f"actor/{name}": value for name, value in zip(names, values, strict=True)}
