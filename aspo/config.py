"""Settings of our policy losses, carried through verl's own config objects.

verl 0.9.1's ``PolicyLossConfig`` is a dataclass and rejects keys it does not know, so the loss
settings live in a subclass that Hydra instantiates through ``_target_``::

    actor_rollout_ref.actor.policy_loss._target_=aspo.config.AspoPolicyLossConfig
    actor_rollout_ref.actor.policy_loss.loss_mode=spo
    +actor_rollout_ref.actor.policy_loss.spo_lambda=0.5     # '+' only when composing on bare verl

(``configs/`` sets the ``_target_`` and the defaults, so with ``aspo-train`` no ``+`` is needed.)
With verl's stock ``PolicyLossConfig`` every loss still runs, using the defaults below.

The PPO numbers (``clip_ratio_low/high``, ``clip_ratio_c``, ``loss_agg_mode``) stay where verl
keeps them, on the actor config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from verl.workers.config import PolicyLossConfig


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the fix."""


# Defaults read by the losses when the config is verl's stock PolicyLossConfig.
DEFAULTS: dict[str, Any] = {
    "spo_lambda": 0.5,
    "entropy_clip": False,
    "entropy_quantile": 0.8,
    "high_entropy_clip_ratio_low": 0.4,
    "high_entropy_clip_ratio_high": 0.4,
    "diagnostics": True,
}

_POLICY_LOSS_KEY = "actor_rollout_ref.actor.policy_loss"
_ACTOR_KEY = "actor_rollout_ref.actor"


@dataclass
class AspoPolicyLossConfig(PolicyLossConfig):
    """verl's ``PolicyLossConfig`` plus the settings of aspo's losses.

    Args:
        spo_lambda: SPO's weight on negative-advantage responses, in (0, 1].
        entropy_clip: ASPO's entropy-aware clip (Archer2.0 training scripts): tokens whose entropy
            is above their response's ``entropy_quantile`` use the ``high_entropy_*`` clip ranges,
            the others keep ``clip_ratio_low/high``. Needs the per-token entropy in the loss.
        entropy_quantile: per-response quantile that separates high- from low-entropy tokens.
        high_entropy_clip_ratio_low / high_entropy_clip_ratio_high: eps for high-entropy tokens.
        diagnostics: per-micro-batch NLL-by-sign, gradient-share and credit-allocation metrics of
            whatever loss runs (``aspo.loss_diagnostics``); cheap, on by default.
    """

    spo_lambda: float = DEFAULTS["spo_lambda"]
    entropy_clip: bool = DEFAULTS["entropy_clip"]
    entropy_quantile: float = DEFAULTS["entropy_quantile"]
    high_entropy_clip_ratio_low: float = DEFAULTS["high_entropy_clip_ratio_low"]
    high_entropy_clip_ratio_high: float = DEFAULTS["high_entropy_clip_ratio_high"]
    diagnostics: bool = DEFAULTS["diagnostics"]

    def __post_init__(self):
        super_post_init = getattr(super(), "__post_init__", None)
        if super_post_init is not None:
            super_post_init()
        validate_policy_loss_settings(self)


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if isinstance(cfg, Mapping) or hasattr(cfg, "get"):
        value = cfg.get(key, default)
    else:
        value = getattr(cfg, key, default)
    return default if value is None else value


def _check_open_unit(value: float, key: str, example: float) -> None:
    if not 0.0 < float(value) < 1.0:
        raise ConfigError(f"{key}={value} is invalid: a clip range eps must lie in (0, 1); e.g. {key}={example}")


def validate_policy_loss_settings(policy_loss: Any) -> None:
    """Check the settings that live on the ``policy_loss`` node (``AspoPolicyLossConfig``)."""
    lam = float(_get(policy_loss, "spo_lambda", DEFAULTS["spo_lambda"]))
    if not 0.0 < lam <= 1.0:
        raise ConfigError(
            f"{_POLICY_LOSS_KEY}.spo_lambda={lam} is invalid: SPO's negative-sample weight must lie in (0, 1]; "
            f"e.g. {_POLICY_LOSS_KEY}.spo_lambda=0.5"
        )
    q = float(_get(policy_loss, "entropy_quantile", DEFAULTS["entropy_quantile"]))
    if not 0.0 < q < 1.0:
        raise ConfigError(
            f"{_POLICY_LOSS_KEY}.entropy_quantile={q} is invalid: must lie in (0, 1); "
            f"e.g. {_POLICY_LOSS_KEY}.entropy_quantile=0.8"
        )
    for key in ("high_entropy_clip_ratio_low", "high_entropy_clip_ratio_high"):
        _check_open_unit(_get(policy_loss, key, DEFAULTS[key]), f"{_POLICY_LOSS_KEY}.{key}", DEFAULTS[key])


def registered_loss_names() -> list[str]:
    from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY

    import aspo.losses  # noqa: F401  make sure ours are in, even if verl's plugin loading was skipped

    return sorted(POLICY_LOSS_REGISTRY)


def validate_actor_config(actor: Any) -> None:
    """Start-up check of everything our losses read from ``actor_rollout_ref.actor``.

    Raises ``ConfigError`` with one line naming the key, the bad value and a working example.
    """
    policy_loss = _get(actor, "policy_loss", None)
    loss_mode = _get(policy_loss, "loss_mode", "vanilla")
    names = registered_loss_names()
    if loss_mode not in names:
        raise ConfigError(
            f"{_POLICY_LOSS_KEY}.loss_mode={loss_mode!r} is not a registered policy loss; "
            f"allowed values: {', '.join(names)}"
        )
    c = float(_get(actor, "clip_ratio_c", 3.0))
    if c <= 1.0:
        raise ConfigError(
            f"{_ACTOR_KEY}.clip_ratio_c={c} is invalid: the dual-clip bound c must be > 1; "
            f"e.g. {_ACTOR_KEY}.clip_ratio_c=3.0"
        )
    clip_ratio = _get(actor, "clip_ratio", 0.2)
    for key in ("clip_ratio_low", "clip_ratio_high"):
        _check_open_unit(_get(actor, key, clip_ratio), f"{_ACTOR_KEY}.{key}", 0.2)
    validate_policy_loss_settings(policy_loss)
