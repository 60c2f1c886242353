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


@pytest.mark.slow
def test_bench_update_memory_shows_aspo_extra_memory_removed():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_update_memory.py"), "--tokens", "1024", "--vocab", "32000"],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("grpo", "grpo+chunk/ckpt", "aspo", "aspo+chunk/ckpt"):
            rows[parts[0]] = float(parts[1])
    assert set(rows) == {"grpo", "grpo+chunk/ckpt", "aspo", "aspo+chunk/ckpt"}, out
    logits_gib = 1024 * 32000 * 4 / 2**30
    # Plain entropy keeps about one more logits-sized tensor through backward; chunked+checkpointed does
    # not. RSS peaks carry allocator noise (the two GRPO variants compute the same thing and differed
    # by up to 8% in CI), so ASPO+chunk/ckpt is compared with the larger of the two GRPO peaks.
    grpo = max(rows["grpo"], rows["grpo+chunk/ckpt"])
    assert rows["aspo"] - grpo > 0.5 * logits_gib, out
    assert rows["aspo+chunk/ckpt"] - grpo < 0.25 * logits_gib, out
