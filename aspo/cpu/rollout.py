"""``hf`` rollout backend: transformers ``generate`` in a Ray actor, for machines without vLLM.

verl 0.9.1 generates through *replicas* (``RolloutReplicaRegistry``): each replica launches a server
Ray actor whose ``generate(request_id=, prompt_ids=, sampling_params=, ...)`` returns verl's
``TokenOutput``; the agent loop fires one such request per response, concurrently. The FSDP worker
owns a *rollout adapter* (``verl.workers.rollout.base._ROLLOUT_REGISTRY``) that verl calls to push
new weights every step: ``resume(tags=["weights"])``, ``update_weights(named tensors)``,
``resume(tags=["kv_cache"])``.

This module provides the three pieces for ``actor_rollout_ref.rollout.name=hf``:

- ``HFGenerationServer``: holds an fp32 copy of the policy and answers ``generate``. Requests that
  arrive together are batched into one ``model.generate`` call (one request at a time was ~6x
  slower on CPU). Each row samples with its own generator, seeded from (weights version, prompt,
  how many times this prompt was already asked for under these weights): which requests happen to
  share a batch (timing, machine load) does not change what is sampled, so a resumed run replays
  the samples of an uninterrupted one.
- ``HFServerAdapter``: the worker side; sends the trainer's full tensors to the server.
- ``HFReplica``: launches one server per trainer rank (tensor parallel size 1), or one per
  standalone rollout slot (``separate_async``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Generator, Optional

import ray
import torch

from aspo._verl_compat import check_verl_version

check_verl_version("aspo.cpu.rollout")

from verl.workers.rollout import base as _rollout_base  # noqa: E402
from verl.workers.rollout.base import BaseRollout  # noqa: E402
from verl.workers.rollout.replica import (  # noqa: E402
    RolloutMode,
    RolloutReplica,
    RolloutReplicaRegistry,
    TokenOutput,
)

logger = logging.getLogger(__name__)

ROLLOUT_NAME = "hf"
# How long the server waits for more concurrent requests before starting a batch. verl's agent
# loop workers send a whole step's requests within a few milliseconds of each other.
BATCH_WINDOW_S = float(os.environ.get("ASPO_HF_BATCH_WINDOW_S", "0.05"))
# Most requests per ``generate`` call (0: no limit). 1 reproduces one-request-at-a-time serving,
# ~6x slower on CPU; scripts/bench_cpu_step.py uses it as the "before" of its comparison. Samples do
# not depend on it (each row has its own seeded generator).
MAX_BATCH = int(os.environ.get("ASPO_HF_MAX_BATCH", "0"))


def _chunks(reqs: list, size: int) -> list[list]:
    if size <= 0:
        return [reqs]
    return [reqs[i : i + size] for i in range(0, len(reqs), size)]


def server_actor_name(replica_rank: int) -> str:
    return f"{ROLLOUT_NAME}_server_{replica_rank}_0"


@dataclass
class _Request:
    prompt_ids: list[int]
    params: dict[str, Any]
    future: asyncio.Future = field(repr=False)


def _sampling_key(params: dict[str, Any]) -> tuple:
    """Requests with equal keys can share one ``generate`` call."""
    return (
        float(params.get("temperature", 1.0) or 0.0),
        float(params.get("top_p", 1.0) or 1.0),
        int(params.get("top_k", -1) or -1),
        float(params.get("repetition_penalty", 1.0) or 1.0),
        bool(params.get("logprobs", False)),
        int(params.get("max_tokens", 0) or 0),
    )


def _row_seed(base_seed: int, global_steps: Optional[int], prompt: list[int], occurrence: int, key: tuple) -> int:
    digest = hashlib.sha256(repr((base_seed, global_steps, prompt, occurrence, key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def set_sampling_stream(name: str) -> int:
    """Point every ``hf`` generation server of this Ray job at sample stream ``name``; returns how many."""
    from ray.util import list_named_actors

    prefix = f"{ROLLOUT_NAME}_server_"
    actors = [ray.get_actor(a["name"], namespace=a["namespace"]) for a in list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
    ray.get([a.set_sampling_stream.remote(name) for a in actors])
    return len(actors)


class _PerRowSampler:
    """A logits processor that turns greedy decoding into sampling with one generator per row.

    Gumbel-max: ``argmax(warped_logits + Gumbel noise)`` is an exact sample from
    ``softmax(warped_logits)``. Temperature, top-k and top-p are applied here (generate runs with
    ``do_sample=False``), and each row's noise comes from its own seeded generator, so a row's
    sample does not depend on the other rows of the batch.
    """

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float):
        from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.warpers = []
        if top_k > 0:
            self.warpers.append(TopKLogitsWarper(top_k=top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p=top_p))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float() / self.temperature
        for warper in self.warpers:
            scores = warper(input_ids, scores)
        vocab = scores.shape[-1]
        uniform = torch.stack([torch.rand(vocab, generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp_(min=1e-20, max=1.0 - 1e-7)))
        return scores + gumbel


class _StopOnAbort:
    """transformers stopping criterion: every row stops once the server is told to abort."""

    def __init__(self, abort: threading.Event):
        self.abort = abort

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.abort.is_set(), dtype=torch.bool, device=input_ids.device)


class HFGenerationServer:
    """Ray actor: batched ``transformers`` generation answering verl's token-in/token-out calls."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0):
        from transformers import AutoModelForCausalLM

        from aspo.cpu.distributed import set_torch_threads
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig, RolloutConfig

        self.threads = set_torch_threads()
        self.config = omega_conf_to_dataclass(config, dataclass_type=RolloutConfig)
        self.model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.global_steps: Optional[int] = None

        attn = (self.model_config.override_config or {}).get("attn_implementation", "sdpa")
        # fp32: bf16 matmuls ran ~140x slower than fp32 on the AVX2-only CPUs we measured.
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_config.local_path,
            torch_dtype=torch.float32,
            attn_implementation=attn if attn != "flash_attention_2" else "sdpa",
            trust_remote_code=self.model_config.trust_remote_code,
        )
        self.model.eval()
        tokenizer = self.model_config.tokenizer
        gen_cfg = self.model_config.generation_config
        eos = getattr(gen_cfg, "eos_token_id", None) if gen_cfg is not None else None
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)

        self._pending: list[_Request] = []
        # (stream, prompt, sampling key) -> samples drawn for it under the current weights. Validation
        # draws from its own stream, so validating between two steps (same weights as the next
        # rollout) does not shift the training samples: a resumed run, which skips that validation,
        # samples what the uninterrupted one did.
        self._occurrences: dict[tuple, int] = {}
        self._stream = "train"
        self._drainer: Optional[asyncio.Task] = None
        self.batches_run = 0
        # Asynchronous trainer modes (verl's colocate_async): abort_all_requests stops the batch being
        # generated after its current token (a partial rollout the client resumes later) and parks new
        # requests until resume_generation; the weights change only while nothing generates.
        self._abort = threading.Event()
        self._gate: Optional[asyncio.Event] = None  # created on the actor's event loop
        self._rejecting = False
        self.aborted_requests = 0

    # ---- generation ---------------------------------------------------------------------------

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: Any = None,
        video_data: Any = None,
        audio_data: Any = None,
        mm_processor_kwargs: Any = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> TokenOutput:
        if image_data is not None or video_data is not None or audio_data is not None:
            raise ValueError("rollout.name=hf is text-only; use rollout.name=vllm on a GPU for multimodal data")
        gate = self._submission_gate()
        while not gate.is_set():  # paused for a weight sync: park, or turn away when rejecting
            if self._rejecting:
                return self._aborted_output([])
            await gate.wait()
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(list(map(int, prompt_ids)), dict(sampling_params), future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            # Debounce: wait until requests stop arriving (or the window passes) so one step's
            # requests land in one batch, whatever order Ray delivers them in.
            seen = -1
            while seen != len(self._pending):
                seen = len(self._pending)
                await asyncio.sleep(BATCH_WINDOW_S)
            batch, self._pending = self._pending, []
            groups: dict[tuple, list[_Request]] = {}
            for req in batch:
                groups.setdefault(_sampling_key(req.params), []).append(req)
            chunks = [
                (key, chunk)
                for key, reqs in sorted(groups.items(), key=lambda kv: repr(kv[0]))
                for chunk in _chunks(reqs, MAX_BATCH)
            ]
            for key, reqs in chunks:
                try:
                    outputs = await asyncio.to_thread(self._generate_batch, key, reqs)
                except Exception as exc:  # surface the error to every waiting request
                    for req in reqs:
                        if not req.future.done():
                            req.future.set_exception(exc)
                    continue
                for req, out in zip(reqs, outputs, strict=True):
                    if not req.future.done():
                        req.future.set_result(out)

    def _submission_gate(self) -> asyncio.Event:
        if self._gate is None:
            self._gate = asyncio.Event()
            self._gate.set()
        return self._gate

    def _aborted_output(self, tokens: list[int], log_probs: Optional[list[float]] = None, extra: Optional[dict] = None) -> TokenOutput:
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs if log_probs is not None else ([] if tokens == [] else None),
            stop_reason="aborted",
            extra_fields={"global_steps": self.global_steps} | (extra or {}),
        )

    def _max_new_tokens(self, prompt_len: int, params: dict[str, Any]) -> int:
        limit = params.get("max_tokens") or params.get("max_new_tokens")
        budget = min(self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len)
        if limit:
            budget = min(budget, int(limit))
        return max(1, budget)

    @torch.no_grad()
    def _generate_batch(self, key: tuple, reqs: list[_Request]) -> list[TokenOutput]:
        temperature, top_p, top_k, repetition_penalty, want_logprobs, _ = key
        # Sort by content so the batch layout (and with it the sampled tokens) does not depend on
        # the order requests arrived in.
        order = sorted(range(len(reqs)), key=lambda i: reqs[i].prompt_ids)
        prompts = [reqs[i].prompt_ids for i in order]
        max_len = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), max_len), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), max_len), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: generation continues from the right edge
            input_ids[row, max_len - len(p) :] = torch.tensor(p, dtype=torch.long)
            attention_mask[row, max_len - len(p) :] = 1
        limits = [self._max_new_tokens(len(p), reqs[i].params) for p, i in zip(prompts, order, strict=True)]

        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=max(limits),
            do_sample=False,  # sampling, when asked for, is done per row by _PerRowSampler
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
            output_logits=want_logprobs,
            use_cache=True,
        )
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        if repetition_penalty != 1.0:
            gen_kwargs["repetition_penalty"] = repetition_penalty
        from transformers import StoppingCriteriaList

        gen_kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnAbort(self._abort)])
        if temperature > 0:
            seeds = []
            for p in prompts:
                slot = (self._stream, tuple(p), key)
                occurrence = self._occurrences.get(slot, 0)
                self._occurrences[slot] = occurrence + 1
                seeds.append(_row_seed(self.config.seed + self.replica_rank, self.global_steps, p, occurrence, key))
            from transformers import LogitsProcessorList

            gen_kwargs["logits_processor"] = LogitsProcessorList([_PerRowSampler(seeds, temperature, top_k, top_p)])
        out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **gen_kwargs)
        self.batches_run += 1

        new_tokens = out.sequences[:, max_len:]
        logprobs = None
        if want_logprobs:
            # Same quantity the actor computes: log-softmax of logits / temperature.
            logits = torch.stack(out.logits, dim=1).float()
            if temperature > 0:
                logits = logits / temperature
            log_softmax = torch.log_softmax(logits, dim=-1)
            logprobs = log_softmax.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
            # The actor's entropy too (of the same distribution), so the trainer can skip its
            # old-log-prob forward pass (aspo.reuse_rollout_log_probs).
            entropy = -(log_softmax.exp() * log_softmax).sum(-1)

        aborted = self._abort.is_set()
        results: list[Optional[TokenOutput]] = [None] * len(reqs)
        for row, i in enumerate(order):
            tokens = new_tokens[row].tolist()[: limits[row]]
            stop = "aborted" if aborted and len(tokens) < limits[row] else "length"
            for t, tok in enumerate(tokens):
                if tok in self.eos_ids:  # keep the stop token, like vLLM's token_ids
                    tokens = tokens[: t + 1]
                    stop = "completed"
                    break
            if stop == "aborted":
                self.aborted_requests += 1
            results[i] = TokenOutput(
                token_ids=tokens,
                log_probs=logprobs[row, : len(tokens)].tolist() if logprobs is not None else None,
                stop_reason=stop,
                extra_fields={"global_steps": self.global_steps}
                | ({"rollout_entropy": entropy[row, : len(tokens)].tolist()} if logprobs is not None else {}),
            )
        return results  # type: ignore[return-value]

    # ---- weights and lifecycle (called by HFServerAdapter and RolloutReplica) ------------------

    def load_weights(self, state_dict: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        own = self.model.state_dict()
        unknown = sorted(set(state_dict) - set(own))
        if unknown:
            raise RuntimeError(
                f"rollout hf: trainer sent weights this model does not have ({unknown[:3]}...); "
                "the rollout and actor must load the same actor_rollout_ref.model.path"
            )
        with torch.no_grad():
            for name, tensor in state_dict.items():
                own[name].copy_(tensor.to(own[name].dtype))
        if self.model.config.tie_word_embeddings:
            self.model.tie_weights()
        if global_steps is not None:
            self.global_steps = global_steps
        self._occurrences.clear()  # new weights: sample streams start over
        return len(state_dict)

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps
        self._occurrences.clear()

    async def set_sampling_stream(self, name: str) -> None:
        """``"train"`` or ``"val"``: which sample stream the next requests draw from."""
        self._stream = name

    def stats(self) -> dict[str, Any]:
        return {"batches_run": self.batches_run, "threads": self.threads, "global_steps": self.global_steps}

    # CPU memory is not freed between phases; these keep verl's replica protocol.
    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        """Pause generation (verl's async modes, before a weight sync): queued requests come back
        aborted with no tokens, the batch being generated stops after its current token and its
        unfinished rows come back aborted with their partial tokens (verl's client resubmits them,
        prompt + partial tokens, after ``resume_generation``); new requests park until then, or are
        turned away (aborted, no tokens) with ``reject_request``."""
        self._submission_gate().clear()
        self._rejecting = reject_request
        queued, self._pending = self._pending, []
        for req in queued:
            if not req.future.done():
                req.future.set_result(self._aborted_output([]))
        self._abort.set()
        try:
            while self._drainer is not None and not self._drainer.done():
                await asyncio.sleep(0.01)
        finally:
            self._abort.clear()
        self.aborted_requests += len(queued)
        return {"aborted_count": len(queued), "request_ids": []}

    async def resume_generation(self) -> None:
        self._rejecting = False
        self._submission_gate().set()

    async def wait_for_requests_to_drain(self) -> None:
        while self._pending or (self._drainer is not None and not self._drainer.done()):
            await asyncio.sleep(0.01)

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFServerAdapter(BaseRollout):
    """Worker-side rollout adapter: pushes the trainer's weights to this rank's ``HFGenerationServer``."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1, **kwargs: Any):
        super().__init__(config, model_config, device_mesh)
        if self.config.tensor_model_parallel_size != 1 or self.config.pipeline_model_parallel_size != 1:
            raise ValueError(
                "rollout.name=hf runs one model copy per trainer rank: set "
                "actor_rollout_ref.rollout.tensor_model_parallel_size=1 and pipeline_model_parallel_size=1"
            )
        rank = int(os.environ.get("RANK", "0"))
        self.replica_rank = rank if replica_rank == -1 else replica_rank
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        global_steps: Optional[int] = None,
        wire_format: str = "named_tensors",
        peft_config: Any = None,
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise ValueError(f"rollout.name=hf only takes full tensors (wire_format='named_tensors'), got {wire_format!r}")
        if peft_config is not None:
            raise ValueError("rollout.name=hf does not serve LoRA adapters; set actor_rollout_ref.model.lora.merge=True")
        from verl.workers.rollout.utils import ensure_async_iterator

        state_dict = {}
        # A plain generator from the colocated trainer, an async one from a checkpoint engine (standalone).
        async for name, tensor in ensure_async_iterator(weights):
            if hasattr(tensor, "full_tensor"):  # DTensor from FSDP2
                tensor = tensor.full_tensor()
            state_dict[name] = tensor.detach().to("cpu", copy=True)
        await self._server_handle().load_weights.remote(state_dict, global_steps)


class HFReplica(RolloutReplica):
    """One ``HFGenerationServer`` per replica.

    Hybrid (colocated): one per trainer rank, next to it; the trainer pushes weights in-process
    (``checkpoint_engine.backend=naive``). Standalone (``trainer.v1.trainer_mode=separate_async``):
    verl starts this replica's worker (a ``CheckpointEngineWorker`` holding an ``HFServerAdapter``) on
    its own resource pool; the server goes on the same node, and the trainer's weights reach it
    through a checkpoint engine (``backend=gloo`` on CPU, aspo.cpu.checkpoint_engine).
    """

    async def launch_servers(self) -> None:
        if self.rollout_mode not in (RolloutMode.HYBRID, RolloutMode.STANDALONE) or not self.workers:
            raise ValueError(
                f"rollout.name=hf runs colocated with the trainer or as a standalone rollout, not in "
                f"{self.rollout_mode} mode (reward-model or teacher servers): use rollout.name=vllm on a GPU"
            )
        if self.world_size != 1:
            raise ValueError("rollout.name=hf needs tensor/data/pipeline parallel size 1 per replica")
        node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        server_cls = ray.remote(HFGenerationServer)
        server = server_cls.options(
            name=server_actor_name(self.replica_rank),
            # Shares the cores with the trainer (hybrid: the two never compute at once; standalone: they
            # do, which is the point of separate_async, and the OS splits the cores between them).
            num_cpus=0,
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            max_concurrency=self.max_concurrency,
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.set_global_steps.remote(0)
        self.servers = [server]
        self._server_handle = server
        # No HTTP endpoint: verl only uses the address as the load balancer's server id.
        self._server_address = f"hf-replica-{self.replica_rank}"


def register() -> None:
    """Make ``rollout.name=hf`` resolvable in verl's two rollout registries (idempotent)."""
    _rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{__name__}.HFServerAdapter"
    RolloutReplicaRegistry.register(ROLLOUT_NAME, lambda: HFReplica)


register()
