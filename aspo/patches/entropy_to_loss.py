"""Pass the per-token entropy to the policy loss (ASPO's entropy-aware clip).

verl 0.9.1's ``verl.workers.utils.losses.ppo_loss`` has the entropy in ``model_output["entropy"]``
(computed from the logits the forward pass already made, when ``calculate_entropy`` is on) but
calls the registered policy loss without it. Rather than copy ``ppo_loss``, this module

1. wraps it (``ppo_loss_with_entropy``): the padded ``[batch, response_len]`` entropy, detached,
   goes into a context variable for the duration of the call; the worker installs the wrapper as
   its loss function only when ``policy_loss.entropy_clip`` is on (``loss_fn_for``);
2. replaces the one name ``ppo_loss`` looks up, ``losses.get_policy_loss_fn``, with a version that
   binds ``entropy=`` from that context variable, and is a plain pass-through otherwise.

No new ``[tokens, vocab]`` tensor is created: the entropy is the one verl computes anyway.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable, Optional

from aspo._verl_compat import check_verl_version

_ENTROPY: ContextVar[Any] = ContextVar("aspo_loss_entropy", default=None)
_ORIGINAL_LOOKUP: Optional[Callable] = None


def entropy_clip_enabled(actor_config: Any) -> bool:
    policy_loss = actor_config.get("policy_loss", None) if hasattr(actor_config, "get") else None
    if policy_loss is None:
        policy_loss = getattr(actor_config, "policy_loss", None)
    if policy_loss is None:
        return False
    value = policy_loss.get("entropy_clip", False) if hasattr(policy_loss, "get") else getattr(policy_loss, "entropy_clip", False)
    return bool(value)


def _lookup_passing_entropy(name: str) -> Callable:
    fn = _ORIGINAL_LOOKUP(name)  # type: ignore[misc]
    entropy = _ENTROPY.get()
    return fn if entropy is None else functools.partial(fn, entropy=entropy)


def install() -> None:
    """Swap ``verl.workers.utils.losses.get_policy_loss_fn`` for the entropy-binding lookup (idempotent)."""
    global _ORIGINAL_LOOKUP
    check_verl_version("aspo.patches.entropy_to_loss", strict=True)
    from verl.workers.utils import losses

    if losses.get_policy_loss_fn is _lookup_passing_entropy:
        return
    _ORIGINAL_LOOKUP = losses.get_policy_loss_fn
    losses.get_policy_loss_fn = _lookup_passing_entropy


def ppo_loss_with_entropy(config: Any, model_output: dict, data: Any, dp_group: Any = None):
    """verl's ``ppo_loss``, with ``entropy=`` reaching the registered policy loss."""
    from verl.workers.utils import losses
    from verl.workers.utils.padding import no_padding_2_padding

    entropy = model_output.get("entropy", None)
    if entropy is None:
        raise RuntimeError(
            "policy_loss.entropy_clip=True needs the per-token entropy in the loss; "
            "set actor_rollout_ref.actor.calculate_entropy=True (aspo-train does this for you)"
        )
    token = _ENTROPY.set(no_padding_2_padding(entropy, data).detach())
    try:
        return losses.ppo_loss(config, model_output, data, dp_group)
    finally:
        _ENTROPY.reset(token)


def loss_fn_for(current_loss_fn: Any) -> Optional[Callable]:
    """The loss function a worker should use instead of ``current_loss_fn`` (``partial(ppo_loss, config=...)``),
    or ``None`` to keep it (entropy clip off)."""
    config = getattr(current_loss_fn, "keywords", {}).get("config")
    if config is None or not entropy_clip_enabled(config):
        return None
    install()
    return functools.partial(ppo_loss_with_entropy, config=config)
