"""verl's partial-rollout client, keeping the ``hf`` rollout's per-token entropy across resumes.

In verl's asynchronous modes (``trainer.v1.trainer_mode=colocate_async``) a request cut off by a
weight sync is resubmitted with its partial tokens by ``FullyAsyncLLMServerClient``, which stitches
token ids and log-probs of the attempts together but rebuilds ``extra_fields`` from a few known
keys, dropping the ``rollout_entropy`` the CPU ``hf`` rollout sends (the old policy's entropy,
which lets the trainer skip its old-log-prob pass: ``aspo.reuse_rollout_log_probs``). This client
sits in front of verl's: ``_CollectRolloutEntropy`` is placed *under* ``FullyAsyncLLMServerClient``
in the MRO, so it sees every attempt's output, and the outer ``generate`` puts the concatenated
entropy back. Subclassing only; verl's class is not modified.
"""

from __future__ import annotations

from typing import Any

from aspo._verl_compat import check_verl_version

check_verl_version("aspo.cpu.async_client")

from verl.workers.rollout.llm_server import FullyAsyncLLMServerClient, LLMServerClient  # noqa: E402

ENTROPY_KEY = "rollout_entropy"


class _CollectRolloutEntropy(LLMServerClient):
    """Records the entropy of each attempt (``FullyAsyncLLMServerClient`` calls this per attempt)."""

    async def generate(self, request_id, **kwargs: Any):
        output = await super().generate(request_id, **kwargs)
        pieces = self._entropy_pieces.get(request_id)
        if pieces is not None:
            pieces.append((output.extra_fields or {}).get(ENTROPY_KEY) if output.token_ids else [])
        return output


class EntropyKeepingAsyncClient(FullyAsyncLLMServerClient, _CollectRolloutEntropy):
    """``FullyAsyncLLMServerClient`` whose stitched outputs keep ``extra_fields["rollout_entropy"]``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._entropy_pieces: dict[str, list] = {}

    async def generate(self, request_id, **kwargs: Any):
        self._entropy_pieces[request_id] = []
        try:
            output = await super().generate(request_id, **kwargs)
        finally:
            pieces = self._entropy_pieces.pop(request_id, [])
        if all(p is not None for p in pieces):
            entropy = [e for p in pieces for e in p]
            if len(entropy) == len(output.token_ids):
                output.extra_fields[ENTROPY_KEY] = entropy
        return output
