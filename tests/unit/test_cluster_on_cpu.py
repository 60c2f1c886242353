"""aspo.cluster: what a run attached to a running Ray cluster needs on the driver side -- absolute
paths, the run's environment in Ray's runtime env, no local-cluster sizing in ray.init."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from aspo import cluster
from aspo.configs import compose as compose_config


def quickstart(*overrides: str):
    return compose_config("quickstart_tiny", "hardware=cpu", *overrides, resolve=True)


def test_output_paths_become_absolute_against_the_driver_cwd(tmp_path):
    cfg = quickstart("trainer.rollout_data_dir=dumps/rollouts", "trainer.default_local_dir=runs/x/y")
    changed = cluster.absolutize_paths(cfg, cwd=tmp_path)
    assert cfg.trainer.default_local_dir == str(tmp_path / "runs/x/y")
    assert cfg.aspo.run_dir == str(tmp_path / "runs/x/y")  # resolved from default_local_dir, then rewritten
    assert cfg.trainer.rollout_data_dir == str(tmp_path / "dumps/rollouts")
    assert cfg.trainer.validation_data_dir is None
    assert set(changed) == {"trainer.default_local_dir", "aspo.run_dir", "trainer.rollout_data_dir"}
    assert cluster.absolutize_paths(cfg, cwd="/elsewhere") == []  # idempotent


def test_home_and_remote_outputs(tmp_path):
    cfg = quickstart("trainer.default_local_dir='~/ckpt'", "trainer.rollout_data_dir='hdfs://nn/rollouts'")
    cluster.absolutize_paths(cfg, cwd=tmp_path)
    assert cfg.trainer.default_local_dir == str(Path.home() / "ckpt")
    assert cfg.trainer.rollout_data_dir == "hdfs://nn/rollouts"


def test_inputs_become_absolute_only_where_they_exist(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.parquet").write_text("x")
    (tmp_path / "data" / "a.parquet").write_text("x")
    cfg = quickstart("data.train_files=data/train.parquet", "data.val_files=[data/a.parquet,data/missing.parquet]",
                     "actor_rollout_ref.model.path=Qwen/Qwen2.5-Math-1.5B")
    changed = cluster.absolutize_paths(cfg, cwd=tmp_path)
    assert cfg.data.train_files == str(tmp_path / "data/train.parquet")
    assert list(cfg.data.val_files) == [str(tmp_path / "data/a.parquet"), "data/missing.parquet"]
    assert cfg.actor_rollout_ref.model.path == "Qwen/Qwen2.5-Math-1.5B"  # a hub id, not a local path
    assert cfg.reward.custom_reward_function.path == "pkg://aspo.fixtures.reward"
    assert {"data.train_files", "data.val_files"} <= set(changed) and "actor_rollout_ref.model.path" not in changed


def test_forwarded_environment_keeps_secrets_and_unrelated_variables_out():
    environ = {"WANDB_MODE": "offline", "WANDB_DIR": "/r", "VERL_FILE_LOGGER_PATH": "/r/metrics.jsonl",
               "TQ_NUM_THREADS": "2", "VERL_ENGINE_DEVICE": "cuda", "TOKENIZERS_PARALLELISM": "false",
               "ASPO_CPU_THREADS": "2", "WANDB_PROJECT": "p", "WANDB_API_KEY": "secret",
               "HOME": "/home/me", "PATH": "/bin", "NCCL_DEBUG": "INFO"}
    assert cluster.forwarded_environment(environ) == {
        k: environ[k] for k in ("ASPO_CPU_THREADS", "TOKENIZERS_PARALLELISM", "TQ_NUM_THREADS", "VERL_ENGINE_DEVICE",
                                "VERL_FILE_LOGGER_PATH", "WANDB_DIR", "WANDB_MODE", "WANDB_PROJECT")}
    # Keys verl's own runtime env sets stay verl's.
    assert "TOKENIZERS_PARALLELISM" not in cluster.forwarded_environment(environ, verl_keys={"TOKENIZERS_PARALLELISM"})


def test_forward_environment_merges_into_the_struct_config_and_the_user_wins():
    cfg = quickstart("+ray_kwargs.ray_init.runtime_env.env_vars.WANDB_MODE=online")
    added = cluster.forward_environment(cfg, {"WANDB_MODE": "offline", "WANDB_DIR": "/r"}, verl_keys=())
    assert added == {"WANDB_DIR": "/r"}
    assert dict(cfg.ray_kwargs.ray_init.runtime_env.env_vars) == {"WANDB_MODE": "online", "WANDB_DIR": "/r"}
    assert cfg.ray_kwargs.ray_init.runtime_env.py_executable is None  # verl's key untouched


def test_run_ppo_merges_our_env_vars_over_verl_defaults(monkeypatch):
    # run_ppo: runtime_env = OmegaConf.merge(get_ppo_ray_runtime_env(config), ray_init.runtime_env).
    from verl.trainer import main_ppo
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    assert "OmegaConf.merge(default_runtime_env, runtime_env_kwargs)" in inspect.getsource(main_ppo.run_ppo)
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    cfg = quickstart()
    cluster.forward_environment(cfg, {"TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "offline"})
    merged = OmegaConf.merge(get_ppo_ray_runtime_env(cfg), cfg.ray_kwargs.ray_init.runtime_env).env_vars
    assert merged.WANDB_MODE == "offline"
    assert merged.TOKENIZERS_PARALLELISM == "true"  # verl sets it when the driver has not: verl's entry stays
    assert merged.NCCL_DEBUG == "WARN" and merged.VERL_FULL_DETERMINISM == "0"


def test_local_cluster_settings_dropped_only_when_attaching():
    cfg = quickstart()
    assert cluster.attaching_to_cluster(cfg, {}) is None
    assert cluster.drop_local_cluster_settings(cfg, {}) == []
    assert cfg.ray_kwargs.ray_init.num_cpus == 16 and cfg.ray_kwargs.ray_init.num_gpus == 1
    assert cluster.drop_local_cluster_settings(cfg, {"RAY_ADDRESS": "local"}) == []

    removed = cluster.drop_local_cluster_settings(cfg, {"RAY_ADDRESS": "10.0.0.1:6379"})
    assert removed == ["num_cpus", "num_gpus", "_system_config"]
    ray_init = cfg.ray_kwargs.ray_init
    assert "num_cpus" not in ray_init and "num_gpus" not in ray_init and "_system_config" not in ray_init
    assert ray_init.include_dashboard is False and "runtime_env" in ray_init

    cfg = quickstart("+ray_kwargs.ray_init.address=auto")
    assert cluster.attaching_to_cluster(cfg, {}) == "auto"
    assert "num_cpus" in cluster.drop_local_cluster_settings(cfg, {})


def test_ray_still_refuses_the_dropped_keys_when_connecting():
    # If Ray starts accepting (or rejecting more of) these, LOCAL_CLUSTER_KEYS should follow.
    import ray._private.worker as worker

    src = inspect.getsource(worker.init)
    branch = src[src.index("# In this case, we are connecting to an existing cluster."):]
    branch = branch[: branch.index("ray_params = ")]
    for key in cluster.LOCAL_CLUSTER_KEYS:
        assert f"{key} is not None" in branch, key


def test_train_run_hands_verl_an_attachable_config(tmp_path, monkeypatch):
    """aspo.train.run on a driver attached to a cluster: what verl's run_ppo receives."""
    from verl.trainer import main_ppo

    from aspo import train

    seen = {}
    monkeypatch.setattr(main_ppo, "run_ppo", lambda cfg, task_runner_class: seen.update(cfg=cfg))
    for key in (*cluster.RUN_ENV_KEYS, "WANDB_API_KEY", "WANDB_PROJECT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.setenv("ASPO_CPU_THREADS", "2")
    monkeypatch.chdir(tmp_path)
    cfg = compose_config("quickstart_tiny", "hardware=cpu", "trainer.default_local_dir=runs/q/aspo")
    outputs = train.run(cfg)

    cfg = seen["cfg"]
    run_dir = str(tmp_path / "runs/q/aspo")
    assert cfg.trainer.default_local_dir == run_dir and outputs["checkpoints"] == run_dir
    env_vars = cfg.ray_kwargs.ray_init.runtime_env.env_vars
    assert env_vars.WANDB_MODE == "offline" and env_vars.WANDB_DIR == run_dir
    assert env_vars.VERL_FILE_LOGGER_PATH == os.path.join(run_dir, "metrics.jsonl") == outputs["metrics"]
    assert env_vars.VERL_ENGINE_DEVICE == "cuda" and env_vars.ASPO_CPU_THREADS == "2"
    assert env_vars.TOKENIZERS_PARALLELISM == "false"
    assert "num_cpus" not in cfg.ray_kwargs.ray_init and "num_gpus" not in cfg.ray_kwargs.ray_init


def test_every_variable_prepare_environment_sets_is_forwarded():
    import re

    from aspo import train

    src = inspect.getsource(train.prepare_environment) + inspect.getsource(train._wandb_offline_unless_logged_in)
    set_keys = set(re.findall(r'os\.environ\.setdefault\("(\w+)"', src)) | set(re.findall(r'os\.environ\["(\w+)"\] =', src))
    assert set_keys and set_keys <= set(cluster.RUN_ENV_KEYS), set_keys - set(cluster.RUN_ENV_KEYS)
