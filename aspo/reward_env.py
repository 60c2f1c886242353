"""Tell the ``reward`` package, in every Ray worker, how many reward processes share a node.

``reward`` splits per-node budgets (math-verify processes, code sandboxes) evenly among the
processes of a node that call it (reward/config.py); it cannot see verl's config, so the driver
passes the count as an environment variable, both in its own environment (a local Ray cluster
inherits it) and in Ray's job ``runtime_env`` (workers of a cluster started with ``ray start``).
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf, open_dict

from reward.config import PROCESSES_PER_NODE_ENV


def reward_processes_per_node(cfg: DictConfig) -> int:
    """Most processes calling ``reward`` on one node under verl 0.9.1's placement."""
    workers = int(cfg.reward.num_workers)
    # RewardLoopManager places reward.num_workers reward-loop actors round-robin over the nodes.
    per_node = -(-workers // max(1, int(cfg.trainer.nnodes)))
    if cfg.reward.reward_manager.get("name") == "remote":
        # The remote manager scores in reward.num_workers more actors per reward-loop actor, on its node.
        per_node *= workers
    return max(1, per_node)


def export_reward_env(cfg: DictConfig) -> None:
    """Set ``ASPO_REWARD_PROCESSES_PER_NODE`` (a value already in the environment wins)."""
    value = os.environ.setdefault(PROCESSES_PER_NODE_ENV, str(reward_processes_per_node(cfg)))
    # verl's run_ppo merges ray_kwargs.ray_init.runtime_env over its own defaults for ray.init.
    env = OmegaConf.select(cfg, "ray_kwargs.ray_init.runtime_env.env_vars") or {}
    with open_dict(cfg):
        OmegaConf.update(cfg, "ray_kwargs.ray_init.runtime_env.env_vars", {**env, PROCESSES_PER_NODE_ENV: value},
                         force_add=True)
