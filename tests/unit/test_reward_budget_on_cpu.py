"""Per-node budgets of reward processes: math-verify workers and code sandboxes are split among the
reward processes of a node (reward/config.py), whose count the trainer passes on (aspo.reward_env)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
from hydra import compose, initialize_config_dir, initialize_config_module
from omegaconf import OmegaConf

import reward
from aspo.reward_env import export_reward_env, reward_processes_per_node
from aspo.train import register_resolvers
from reward import _runtime
from reward import config as reward_config
from reward.config import PROCESSES_PER_NODE_ENV, RewardConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture
def cores(monkeypatch):
    def set_cores(n: int) -> None:
        monkeypatch.setattr(reward_config, "_cores", lambda: n)

    return set_cores


def test_defaults_on_a_big_node_bound_the_node_total(cores):
    """192 cores, verl's 8 reward workers: 32 math processes on the node (was 8 x 192 = 1,536)."""
    cores(192)
    cfg = RewardConfig(processes_per_node=8)
    assert cfg.resolved_math_workers() == 4
    assert cfg.resolved_code_slots() == 24
    assert 8 * cfg.resolved_math_workers() == 32 and 8 * cfg.resolved_code_slots() == 192


def test_a_lone_process_gets_the_whole_budget(cores):
    cores(192)
    assert RewardConfig().resolved_math_workers() == 32
    assert RewardConfig().resolved_code_slots() == 192
    cores(2)
    assert RewardConfig().resolved_math_workers() == 2
    assert RewardConfig().resolved_code_slots() == 2


def test_budgets_and_explicit_counts(cores):
    cores(64)
    assert RewardConfig(math_node_workers=12, code_node_slots=10, processes_per_node=4).resolved_math_workers() == 3
    assert RewardConfig(math_node_workers=12, code_node_slots=10, processes_per_node=4).resolved_code_slots() == 2
    # More processes than budget: each still gets one.
    assert RewardConfig(math_node_workers=4, processes_per_node=8).resolved_math_workers() == 1
    # An explicit per-process count wins over the budget (the setting before budgets existed).
    assert RewardConfig(math_workers=5, code_slots=7, processes_per_node=8).resolved_math_workers() == 5
    assert RewardConfig(math_workers=5, code_slots=7, processes_per_node=8).resolved_code_slots() == 7


def test_bad_budgets_name_the_setting(cores):
    cores(8)
    with pytest.raises(ValueError, match="math_node_workers=-1 .*ASPO_REWARD_MATH_NODE_WORKERS"):
        RewardConfig(math_node_workers=-1).resolved_math_workers()
    with pytest.raises(ValueError, match="processes_per_node=0 .*ASPO_REWARD_PROCESSES_PER_NODE"):
        RewardConfig(processes_per_node=0).resolved_code_slots()


def test_budget_settings_come_from_the_environment(monkeypatch, cores):
    cores(192)
    monkeypatch.setenv("ASPO_REWARD_MATH_NODE_WORKERS", "16")
    monkeypatch.setenv("ASPO_REWARD_CODE_NODE_SLOTS", "40")
    monkeypatch.setenv(PROCESSES_PER_NODE_ENV, "8")
    cfg = RewardConfig.from_env()
    assert (cfg.math_node_workers, cfg.code_node_slots, cfg.processes_per_node) == (16, 40, 8)
    assert (cfg.resolved_math_workers(), cfg.resolved_code_slots()) == (2, 5)
    monkeypatch.setenv(PROCESSES_PER_NODE_ENV, "eight")
    with pytest.raises(ValueError, match=PROCESSES_PER_NODE_ENV):
        RewardConfig.from_env()


def test_real_pool_has_the_budgeted_processes():
    """A budget of 9 math processes shared by 3 reward processes: this one's pool runs 3 (not one per core)."""
    me = psutil.Process()

    def workers() -> list[psutil.Process]:
        # pebble's spawned workers (not multiprocessing's resource tracker, also a child).
        return [p for p in me.children() if any("spawn_main" in a for a in p.cmdline())]

    def wait_for(count: int) -> int:
        deadline = time.monotonic() + 30  # a worker may be starting, or shutting down
        while len(workers()) != count and time.monotonic() < deadline:
            time.sleep(0.2)
        return len(workers())

    # configure() also shuts down a pool an earlier test may have left.
    reward.configure(math_workers=0, math_node_workers=9, processes_per_node=3, math_fast_path=False)
    try:
        assert wait_for(0) == 0
        pool = _runtime.math_pool()
        assert pool.workers == 3
        out = reward.compute_score_batch(["math"] * 8, [rf"\boxed{{\frac{{{i}}}{{2}}}}" for i in range(8)],
                                         [str(i / 2) for i in range(8)])
        assert [r["score"] for r in out] == [1.0] * 8
        assert wait_for(3) == 3
    finally:
        reward.configure(math_node_workers=0, processes_per_node=1, math_fast_path=True)
    assert wait_for(0) == 0  # configure() shut the pool down


# ---- the trainer side: how many reward processes verl puts on a node -----------------------


def _recipe(*overrides: str):
    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        return compose(config_name="aspo_math_1p5b", overrides=["hardware=cuda", *overrides])


def test_processes_per_node_follow_verl_placement():
    assert reward_processes_per_node(_recipe()) == 8  # verl's reward.num_workers, one node
    assert reward_processes_per_node(_recipe("trainer.nnodes=2")) == 4  # round-robin over the nodes
    assert reward_processes_per_node(_recipe("trainer.nnodes=3")) == 3
    assert reward_processes_per_node(_recipe("trainer.nnodes=16")) == 1
    # The remote manager starts reward.num_workers scoring actors beside each reward-loop actor.
    assert reward_processes_per_node(_recipe("reward.reward_manager.name=remote")) == 64


def test_export_reaches_the_driver_env_and_rays_runtime_env(monkeypatch):
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    monkeypatch.delenv(PROCESSES_PER_NODE_ENV, raising=False)
    register_resolvers()
    with initialize_config_module("aspo.configs", version_base=None):
        cfg = compose("quickstart_tiny", overrides=["hardware=cpu"])
    export_reward_env(cfg)
    assert os.environ[PROCESSES_PER_NODE_ENV] == "1"  # the CPU config runs one reward worker
    # What verl's run_ppo passes to ray.init: its defaults merged with ray_kwargs.ray_init.runtime_env.
    merged = OmegaConf.merge(get_ppo_ray_runtime_env(cfg), cfg.ray_kwargs.ray_init.runtime_env)
    assert merged.env_vars[PROCESSES_PER_NODE_ENV] == "1"

    # A value the user exported wins, in both places.
    monkeypatch.setenv(PROCESSES_PER_NODE_ENV, "3")
    cfg = _recipe()
    export_reward_env(cfg)
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars[PROCESSES_PER_NODE_ENV] == "3"
    assert cfg.ray_kwargs.ray_init.runtime_env.py_executable is None  # verl's other keys kept
