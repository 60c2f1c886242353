"""``checkpoint_engine.backend=gloo``: trainer -> standalone rollout weight sync over gloo, for CPUs.

verl's ``separate_async`` trainer pushes the trainer's weights to rollout replicas that live in their
own processes (standalone resource pool) through a *checkpoint engine* (``verl.checkpoint_engine``).
verl's engines all need an accelerator (nccl, hccl, nixl, mooncake, kimi); ``naive`` only works
in-process (colocated). This one mirrors verl's NCCL engine with torch's gloo backend:

- actor rank 0 is the only sender (the other actor ranks walk the weight generator, which is
  collective over the actor group, and send nothing); every rollout worker receives;
- weights are cut into chunks (``split_weight_chunks``) and packed into buckets of at most
  ``update_weights_bucket_megabytes``; each bucket goes out as three broadcasts: its metadata's
  length, its metadata (pickled ``TensorMeta``), and its bytes;
- the process group is private (its own ``TCPStore`` served by the sender, a ``ProcessGroupGloo``
  built directly, not ``init_process_group``), so it never touches the workers' default group, and
  it is rebuilt for every sync (``prepare`` -> ``finalize``): a few milliseconds, nothing held
  between steps.

Unlike the NCCL engine there is no double buffering: on CPU the copy into the bucket and the
broadcast compete for the same cores. Buckets are sized by their content, not preallocated at
``update_weights_bucket_megabytes`` (verl's default is 2 GB). The blocking gloo calls run in a
thread so the worker's event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncGenerator, Optional

import torch

from aspo._verl_compat import check_verl_version

check_verl_version("aspo.cpu.checkpoint_engine")

from verl.checkpoint_engine.base import (  # noqa: E402
    CheckpointEngine,
    CheckpointEngineRegistry,
    TensorMeta,
    merge_weight_chunks,
    split_weight_chunks,
)
from verl.workers.rollout.utils import ensure_async_iterator  # noqa: E402

logger = logging.getLogger(__name__)

BACKEND = "gloo"
_STORE_PREFIX = "aspo_gloo_ckpt"
# Each chunk starts at a multiple of this many bytes in its bucket: the receiver views the bytes as
# the tensor's dtype, which needs an offset divisible by the element size.
_ALIGN = 16


@dataclass
class MasterAddress:
    """Where the sender's ``TCPStore`` listens (handed to every rank by ``build_topology``)."""

    host: str
    port: int


def _node_ip() -> str:
    import ray

    return ray.util.get_node_ip_address().strip("[]")


async def _full_tensors(weights: Any) -> AsyncGenerator[tuple[str, torch.Tensor], None]:
    """Plain contiguous CPU tensors from the trainer's (name, tensor) stream."""
    async for name, tensor in ensure_async_iterator(weights):
        if hasattr(tensor, "full_tensor"):  # an FSDP2 DTensor: gathering is collective, every rank does it
            tensor = tensor.full_tensor()
        yield name, tensor.detach().to("cpu").contiguous()


@CheckpointEngineRegistry.register(BACKEND)
class GlooCheckpointEngine(CheckpointEngine):
    """Broadcasts weight buckets from actor rank 0 to the rollout workers over a private gloo group.

    Args:
        bucket_size: most bytes per broadcast (``update_weights_bucket_megabytes`` << 20).
        is_master: set by verl on actor rank 0, which serves the group's ``TCPStore``.
        timeout_s: how long a rank waits for the others (rendezvous and each broadcast).
        host: address the sender's store listens on (default: this Ray node's IP).
    """

    def __init__(self, bucket_size: int, is_master: bool = False, timeout_s: float = 600.0, host: Optional[str] = None):
        self.bucket_size = int(bucket_size)
        self.is_master = is_master
        self.timeout = timedelta(seconds=float(timeout_s))
        self.host = host
        self.rank: Optional[int] = None
        self.world_size: Optional[int] = None
        self._store = None
        self._group = None

    # ---- topology (called by verl's CheckpointEngineManager before every sync) -------------------

    def prepare(self) -> dict[str, Any]:
        if not self.is_master:
            return {"master": None}
        from torch.distributed import TCPStore

        host = self.host or _node_ip()
        # Port 0: the OS picks a free port (no race with other runs on the machine).
        self._store = TCPStore(host, 0, is_master=True, wait_for_workers=False, timeout=self.timeout)
        return {"master": MasterAddress(host=host, port=self._store.port)}

    @classmethod
    def build_topology(cls, actor_wg_world_size: int, rollout_world_size: int, metadata: list[dict]):
        master = metadata[0]["master"]
        if master is None:
            raise RuntimeError("checkpoint_engine.backend=gloo: actor rank 0 must be the sender (is_master)")
        world_size = 1 + rollout_world_size
        actor_kwargs = {
            "rank": [0] + [-1] * (actor_wg_world_size - 1),
            "world_size": [world_size] * actor_wg_world_size,
            "master": [master] * actor_wg_world_size,
        }
        rollout_kwargs = {
            "rank": list(range(1, world_size)),
            "world_size": [world_size] * rollout_world_size,
            "master": [master] * rollout_world_size,
        }
        return actor_kwargs, rollout_kwargs

    def init_process_group(self, rank: int, world_size: int, master: MasterAddress) -> None:
        self.rank, self.world_size = rank, world_size
        if rank < 0:  # an actor rank that sits the broadcast out
            return
        from torch.distributed import PrefixStore, ProcessGroupGloo, TCPStore

        store = self._store if rank == 0 else TCPStore(master.host, master.port, is_master=False, timeout=self.timeout)
        # Blocks until every rank has joined (gloo connects the full mesh here).
        self._group = ProcessGroupGloo(PrefixStore(_STORE_PREFIX, store), rank, world_size, self.timeout)
        self._store = store

    def finalize(self) -> None:
        self._group = None
        self._store = None
        self.rank = self.world_size = None

    # ---- transfer ---------------------------------------------------------------------------------

    def _broadcast(self, tensor: torch.Tensor) -> None:
        from torch.distributed import BroadcastOptions

        opts = BroadcastOptions()
        opts.rootRank = 0
        opts.timeout = self.timeout
        self._group.broadcast([tensor], opts).wait()

    def _send_bucket(self, chunks: list[torch.Tensor], bucket_meta: dict[str, TensorMeta], is_last: bool) -> int:
        payload = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.uint8)
        header = pickle.dumps({"bucket_meta": bucket_meta, "is_last": is_last, "length": payload.numel()})
        self._broadcast(torch.tensor([len(header)], dtype=torch.int64))
        self._broadcast(torch.frombuffer(bytearray(header), dtype=torch.uint8))
        if payload.numel():
            self._broadcast(payload)
        return payload.numel()

    def _receive_bucket(self) -> tuple[dict, torch.Tensor]:
        size = torch.zeros(1, dtype=torch.int64)
        self._broadcast(size)
        header = torch.empty(int(size.item()), dtype=torch.uint8)
        self._broadcast(header)
        meta = pickle.loads(header.numpy().tobytes())
        # A fresh buffer per bucket: the tensors yielded from it stay valid after the next one arrives.
        payload = torch.empty(meta["length"], dtype=torch.uint8)
        if meta["length"]:
            self._broadcast(payload)
        return meta, payload

    @torch.no_grad()
    async def send_weights(self, weights, global_steps: Optional[int] = None):
        if self.rank is None:
            raise RuntimeError("checkpoint_engine.backend=gloo: send_weights before init_process_group")
        if self.rank > 0:
            raise RuntimeError("checkpoint_engine.backend=gloo: rollout workers do not send weights")
        if self.rank < 0:  # not in the group, but producing each weight is collective over the actor ranks
            async for _ in _full_tensors(weights):
                pass
            return {}

        start, sent, buckets = time.time(), 0, 0
        chunks: list[torch.Tensor] = []
        bucket_meta: dict[str, TensorMeta] = {}
        offset = 0
        async for meta, chunk in split_weight_chunks(_full_tensors(weights), self.bucket_size):
            pad = -offset % _ALIGN
            if offset + pad + meta.chunk_size > self.bucket_size:
                sent += await asyncio.to_thread(self._send_bucket, chunks, bucket_meta, False)
                buckets += 1
                chunks, bucket_meta, offset, pad = [], {}, 0, 0
            if pad:
                chunks.append(torch.zeros(pad, dtype=torch.uint8))
                offset += pad
            meta.offset = offset
            bucket_meta[meta.name] = meta
            chunks.append(chunk)
            offset += meta.chunk_size
        sent += await asyncio.to_thread(self._send_bucket, chunks, bucket_meta, True)
        buckets += 1
        logger.info("gloo checkpoint engine: sent %d bytes in %d bucket(s) in %.2f s", sent, buckets, time.time() - start)
        return {}

    async def _receive_chunks(self) -> AsyncGenerator[tuple[TensorMeta, torch.Tensor], None]:
        while True:
            meta, payload = await asyncio.to_thread(self._receive_bucket)
            for tensor_meta in meta["bucket_meta"].values():
                yield tensor_meta, payload[tensor_meta.offset : tensor_meta.offset + tensor_meta.chunk_size]
            if meta["is_last"]:
                return

    @torch.no_grad()
    async def receive_weights(self, global_steps: Optional[int] = None) -> AsyncGenerator[tuple[str, torch.Tensor], None]:
        if self.rank is None or self.rank <= 0:
            raise RuntimeError("checkpoint_engine.backend=gloo: only rollout workers (rank > 0) receive weights")
        async for name, tensor in merge_weight_chunks(self._receive_chunks(), self.bucket_size):
            yield name, tensor
