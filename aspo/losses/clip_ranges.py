"""Per-token clip ranges: uniform, or ASPO's entropy-aware clip (Archer2.0 training scripts)."""

from __future__ import annotations

from typing import Any, Optional

import torch

from aspo.config import ConfigError
from aspo.losses.common import ClipSettings, policy_loss_setting


def high_entropy_tokens(entropy: torch.Tensor, response_mask: torch.Tensor, quantile: float) -> torch.Tensor:
    """Valid tokens whose entropy is above their own response's ``quantile`` (bool ``[B, T]``)."""
    mask = response_mask.bool()
    masked = torch.where(mask, entropy.detach().float(), torch.full_like(entropy, float("nan"), dtype=torch.float32))
    threshold = torch.nanquantile(masked, quantile, dim=-1, keepdim=True)  # [B, 1]; NaN for empty rows
    return (masked > threshold) & mask  # NaN compares False


def clip_ranges(
    config: Any,
    settings: ClipSettings,
    response_mask: torch.Tensor,
    entropy: Optional[torch.Tensor],
) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """``(eps_low, eps_high)``: floats, or ``[B, T]`` tensors when the entropy-aware clip is on.

    Entropy-aware: tokens above the response's ``entropy_quantile`` get the ``high_entropy_*``
    ranges on both sides (0.4 in the official runs), the rest keep ``clip_ratio_low/high`` (0.2).
    """
    if not policy_loss_setting(config, "entropy_clip"):
        return settings.eps_low, settings.eps_high
    if entropy is None:
        raise ConfigError(
            "actor_rollout_ref.actor.policy_loss.entropy_clip=true needs the per-token entropy inside the loss, "
            "but none was passed: launch with aspo-train (it installs aspo.patches.entropy_to_loss) "
            "or set entropy_clip=false"
        )
    high = high_entropy_tokens(entropy, response_mask, float(policy_loss_setting(config, "entropy_quantile")))
    he_low = float(policy_loss_setting(config, "high_entropy_clip_ratio_low"))
    he_high = float(policy_loss_setting(config, "high_entropy_clip_ratio_high"))
    eps_low = torch.where(high, he_low, settings.eps_low).to(entropy.dtype)
    eps_high = torch.where(high, he_high, settings.eps_high).to(entropy.dtype)
    return eps_low, eps_high
