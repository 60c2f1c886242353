"""Add ``aspo.loss_diagnostics`` metrics to whatever policy loss verl runs in the update.

verl 0.9.1's ``verl.workers.utils.losses.ppo_loss`` looks the policy loss up with
``get_policy_loss_fn(loss_mode)`` (a module global) and calls it with keyword arguments only,
then merges the metrics it returns into the step's. ``install()`` replaces that one lookup with a
version whose function calls the loss, then computes the diagnostics from the loss's own gradient
with respect to ``log_prob`` (``autograd.grad(..., retain_graph=True)``: the real backward still
runs afterwards). It composes with ``aspo.patches.entropy_to_loss``, which wraps the same lookup.
Switched off with ``actor_rollout_ref.actor.policy_loss.diagnostics=false``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from aspo._verl_compat import check_verl_version

_ORIGINAL_LOOKUP: Optional[Callable] = None


def _call_with_diagnostics(policy_loss_fn: Callable, **kwargs: Any):
    import torch

    from aspo.loss_diagnostics import aggregation_weights, loss_diagnostics

    pg_loss, metrics = policy_loss_fn(**kwargs)
    log_prob = kwargs["log_prob"]
    if not (torch.is_grad_enabled() and pg_loss.requires_grad and log_prob.requires_grad):
        return pg_loss, metrics
    (grad,) = torch.autograd.grad(pg_loss, log_prob, retain_graph=True, allow_unused=True)
    if grad is None:
        return pg_loss, metrics
    extra = loss_diagnostics(
        grad_log_prob=grad,
        log_prob=log_prob,
        old_log_prob=kwargs.get("old_log_prob"),
        advantages=kwargs["advantages"],
        response_mask=kwargs["response_mask"],
        agg_weights=aggregation_weights(kwargs["response_mask"], kwargs["loss_agg_mode"], kwargs.get("config")),
    )
    return pg_loss, {**metrics, **extra}


def _lookup_with_diagnostics(name: str) -> Callable:
    return functools.partial(_call_with_diagnostics, _ORIGINAL_LOOKUP(name))  # type: ignore[misc]


def diagnostics_enabled(actor_config: Any) -> bool:
    from aspo.config import DEFAULTS, _get

    return bool(_get(_get(actor_config, "policy_loss", None), "diagnostics", DEFAULTS["diagnostics"]))


def install() -> None:
    """Wrap ``verl.workers.utils.losses.get_policy_loss_fn`` (idempotent)."""
    global _ORIGINAL_LOOKUP
    check_verl_version("aspo.patches.loss_diagnostics", strict=True)
    from verl.workers.utils import losses

    if getattr(losses.get_policy_loss_fn, "_aspo_diagnostics", False) or _ORIGINAL_LOOKUP is not None:
        return
    _ORIGINAL_LOOKUP = losses.get_policy_loss_fn
    losses.get_policy_loss_fn = _lookup_with_diagnostics


_lookup_with_diagnostics._aspo_diagnostics = True  # type: ignore[attr-defined]
