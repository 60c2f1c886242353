"""``checkpoint_engine.backend=gloo`` (aspo.cpu.checkpoint_engine): trainer -> rollout weight sync on CPU.

The engine's ranks are driven the way verl's ``CheckpointEngineManager`` drives them (prepare on all,
``build_topology``, ``init_process_group`` on all at once, send on the actor side while the rollout
side receives, finalize), each rank in its own thread with its own event loop; no Ray.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
import threading

import pytest
import torch

from aspo.cpu.checkpoint_engine import BACKEND, GlooCheckpointEngine


def _weights() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "embed.weight": torch.randn(50, 8, generator=g),  # 1600 bytes: split over buckets of 512
        "norm.weight": torch.randn(3, generator=g).to(torch.bfloat16),  # 6 bytes: misaligns what follows
        "layer.0.q.weight": torch.randn(8, 8, generator=g).t(),  # not contiguous
        "layer.0.q.bias": torch.randn(7, generator=g),
        "counts": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
    }


def _run_threads(targets: list) -> list:
    results, errors = [None] * len(targets), []

    def run(i, fn):
        try:
            results[i] = fn()
        except BaseException as err:  # surfaced in the main thread below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a rank hung"
    if errors:
        raise errors[0]
    return results


def _sync(weights: dict[str, torch.Tensor], n_actor: int, n_rollout: int, bucket_size: int) -> list[dict]:
    """One weight sync from ``n_actor`` actor ranks to ``n_rollout`` rollout workers; what each worker received."""
    actors = [GlooCheckpointEngine(bucket_size, is_master=(i == 0), timeout_s=60, host="127.0.0.1") for i in range(n_actor)]
    rollouts = [GlooCheckpointEngine(bucket_size, timeout_s=60) for _ in range(n_rollout)]
    metadata = [e.prepare() for e in actors + rollouts]
    actor_kwargs, rollout_kwargs = GlooCheckpointEngine.build_topology(n_actor, n_rollout, metadata)

    def init(engine, kwargs, i):
        return lambda: engine.init_process_group(**{k: v[i] for k, v in kwargs.items()})

    _run_threads([init(e, actor_kwargs, i) for i, e in enumerate(actors)] + [init(e, rollout_kwargs, i) for i, e in enumerate(rollouts)])

    def send(engine):
        return lambda: asyncio.run(engine.send_weights(iter(weights.items()), global_steps=3))

    def receive(engine):
        async def collect():
            # Keep copies: what the server adapter does with each tensor before asking for the next.
            return {name: t.clone() async for name, t in engine.receive_weights(global_steps=3)}

        return lambda: asyncio.run(collect())

    results = _run_threads([send(e) for e in actors] + [receive(e) for e in rollouts])
    for e in actors + rollouts:
        e.finalize()
    return results[n_actor:]


def _assert_same(received: dict, sent: dict) -> None:
    assert list(received) == list(sent)
    for name, tensor in sent.items():
        assert received[name].dtype == tensor.dtype and received[name].shape == tensor.shape, name
        assert torch.equal(received[name], tensor), name


def test_backend_is_registered_with_verl():
    from verl.checkpoint_engine import CheckpointEngineRegistry

    assert CheckpointEngineRegistry.get(BACKEND) is GlooCheckpointEngine


def test_one_sender_one_receiver_gets_every_tensor_bit_exact_across_several_buckets():
    sent = _weights()
    (received,) = _sync(sent, n_actor=1, n_rollout=1, bucket_size=512)
    _assert_same(received, sent)


def test_several_actor_ranks_and_rollout_workers_each_worker_gets_everything():
    sent = _weights()
    received = _sync(sent, n_actor=2, n_rollout=2, bucket_size=1 << 20)  # everything in one bucket
    assert len(received) == 2
    for got in received:
        _assert_same(got, sent)


def test_the_group_is_rebuilt_for_every_sync():
    first = {"w": torch.zeros(4)}
    second = {"w": torch.ones(4)}
    _assert_same(_sync(first, 1, 1, 64)[0], first)
    _assert_same(_sync(second, 1, 1, 64)[0], second)


def test_topology_makes_actor_rank_0_the_only_sender():
    meta = [{"master": "addr"}, {"master": None}, {"master": None}]
    actor, rollout = GlooCheckpointEngine.build_topology(2, 1, meta)
    assert actor["rank"] == [0, -1] and rollout["rank"] == [1]
    assert set(actor["world_size"] + rollout["world_size"]) == {2}
    with pytest.raises(RuntimeError, match="actor rank 0"):
        GlooCheckpointEngine.build_topology(1, 1, [{"master": None}, {"master": None}])


def test_engine_matches_the_calls_verl_makes():
    # verl's actor worker builds it with is_master= and bucket_size=, the rollout worker with bucket_size=,
    # and the manager calls prepare/build_topology/init_process_group/finalize plus send/receive.
    from verl.checkpoint_engine import base
    from verl.workers import engine_workers

    worker_src = inspect.getsource(engine_workers.ActorRolloutRefWorker)
    assert "is_master=(torch.distributed.get_rank() == 0), bucket_size=bucket_size" in worker_src
    assert "CheckpointEngineRegistry.new(\n            backend, bucket_size=bucket_size" in inspect.getsource(base.CheckpointEngineWorker)
    manager_src = inspect.getsource(base.CheckpointEngineManager)
    for call in ('["prepare"]', "build_topology(", '["init_process_group"]', '["finalize"]'):
        assert call in manager_src, call
    assert not getattr(GlooCheckpointEngine, "__abstractmethods__", set())


def test_plugin_registers_the_backend_in_every_process():
    # verl swallows plugin import errors; check the registry in a fresh interpreter after `import verl`.
    code = (
        "import verl\n"
        "from verl.checkpoint_engine import CheckpointEngineRegistry\n"
        "print('RESULT', CheckpointEngineRegistry.get('gloo').__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [line for line in out.splitlines() if line.startswith("RESULT")][-1] == "RESULT GlooCheckpointEngine"
