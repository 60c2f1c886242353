"""Entropy chunking/checkpointing: on in every shipped config, verl's engine still reads the flags the
way scripts/bench_update_memory.py mirrors, and the benchmark shows ASPO's extra memory gone."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aspo.train import register_resolvers

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["quickstart_tiny", "aspo_math_1p5b", "grpo_math_1p5b"])
def test_entropy_chunking_and_checkpointing_on_by_default(name):
    register_resolvers()
    where = ROOT / ("aspo/configs" if name.startswith("quickstart") else "recipes")
    with initialize_config_dir(str(where), version_base=None):
        cfg = compose(name, overrides=["hardware=cpu"])
    actor = cfg.actor_rollout_ref.actor
    assert actor.entropy_from_logits_with_chunking is True and actor.entropy_checkpointing is True
    fsdp = OmegaConf.to_container(actor.fsdp_config, resolve=True)
    assert fsdp["entropy_from_logits_with_chunking"] is True and fsdp["entropy_checkpointing"] is True


def test_verl_engine_computes_entropy_as_the_benchmark_mirrors():
    from verl.workers.engine.fsdp import transformer_impl

    src = inspect.getsource(transformer_impl)
    assert src.count("if not self.engine_config.entropy_checkpointing:") == 2
    assert "torch.utils.checkpoint.checkpoint(\n                            self.compute_entropy_from_logits, logits_rmpad" in src
    assert "entropy_from_logits = verl_F.entropy_from_logits_with_chunking" in src


def _saved_bytes_beyond(fn, logits) -> int:
    """Bytes autograd keeps for backward while ``fn(logits)`` is alive, the logits' own storage excluded."""
    import torch

    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = fn(logits)
    storages = {(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()) for t in saved}
    storages.discard((logits.untyped_storage().data_ptr(), logits.untyped_storage().nbytes()))
    del out
    return sum(nbytes for _, nbytes in storages)


def test_entropy_as_verl_computes_it_keeps_a_logits_sized_tensor_unless_checkpointed():
    """What scripts/bench_update_memory.py measures as peak RSS (noisy: allocator), counted exactly:
    plain entropy keeps [tokens, vocab] temporaries for backward; chunked + checkpointed keeps none."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("bench_update_memory", ROOT / "scripts" / "bench_update_memory.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    logits = torch.randn(256, 4096, requires_grad=True)
    logits_bytes = logits.numel() * logits.element_size()
    plain = _saved_bytes_beyond(lambda x: bench.entropy_like_verl_engine(x, False, False, 2048), logits)
    ckpt = _saved_bytes_beyond(lambda x: bench.entropy_like_verl_engine(x, True, True, 2048), logits)
    assert plain >= logits_bytes, (plain, logits_bytes)
    assert ckpt < 0.01 * logits_bytes, (ckpt, logits_bytes)


@pytest.mark.slow
def test_bench_update_memory_runs_and_prints_each_variant():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_update_memory.py"), "--tokens", "256", "--vocab", "8000"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    for name in ("grpo", "grpo+chunk/ckpt", "aspo", "aspo+chunk/ckpt"):
        assert any(line.split()[:1] == [name] for line in out.splitlines()), out
    assert "ASPO extra over GRPO" in out
