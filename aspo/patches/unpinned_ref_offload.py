"""Let the KL reference model (``actor.use_kl_loss=true``) build on machines without an accelerator.

verl 0.9.1's FSDP2 engine gives every forward-only model (the reference policy) a hard-coded
``CPUOffloadPolicy(pin_memory=True)`` (``verl/workers/engine/fsdp/transformer_impl.py``). Pinning
page-locks host memory for fast copies to a GPU; with no accelerator torch refuses it, so on CPU
the reference worker crashed while being built and no KL-regularised run (the paper recipes use
``low_var_kl`` 0.001) could start. On CPU the "offload" is a no-op anyway (the parameters already
live in host memory), so the policy is kept and only the pinning is dropped.

``install()`` swaps the name the engine module looks up for a subclass that forces
``pin_memory=False``; it is called by the trainer worker only when no accelerator is present, so
GPU runs keep verl's pinned policy untouched.
"""

from __future__ import annotations

from aspo._verl_compat import check_verl_version


def _unpinned_policy_class(base: type) -> type:
    class UnpinnedCPUOffloadPolicy(base):  # type: ignore[misc, valid-type]
        """``CPUOffloadPolicy`` that never pins (no accelerator to copy to)."""

        def __init__(self, pin_memory: bool = True):
            super().__init__(pin_memory=False)

    return UnpinnedCPUOffloadPolicy


def install() -> None:
    """Make verl's FSDP2 engine build unpinned offload policies (idempotent; CPU-only callers)."""
    check_verl_version("aspo.patches.unpinned_ref_offload", strict=True)
    from verl.workers.engine.fsdp import transformer_impl

    current = transformer_impl.CPUOffloadPolicy
    if getattr(current, "__name__", "") == "UnpinnedCPUOffloadPolicy":
        return
    transformer_impl.CPUOffloadPolicy = _unpinned_policy_class(current)
