"""A run's config and environment made fit for a Ray cluster that is already running.

``aspo-train`` (the driver) sets environment variables and resolves relative paths in its own
process. Started alone, Ray's workers inherit both: ``ray.init()`` starts a local cluster from the
driver's environment and working directory. Attached to a cluster started beforehand
(``scripts/submit.sh`` -> ``ray job submit``, ``scripts/slurm/aspo.sbatch``), every actor inherits
its raylet's environment and working directory instead, so on the driver side this module

- makes the run's paths absolute (``absolutize_paths``): outputs always, inputs when they exist
  relative to the driver's working directory (a relative ``runs/...`` would land in each raylet's
  working directory, a relative ``data/...`` would not be found);
- hands the variables the run needs to the actors through Ray's runtime environment
  (``forward_environment``: ``ray_kwargs.ray_init.runtime_env.env_vars``, which verl's ``run_ppo``
  merges over its own defaults);
- drops the ``ray_init`` keys that only size a local cluster (``drop_local_cluster_settings``):
  ``ray.init`` refuses ``num_cpus``/``num_gpus``/``_system_config``... when it connects to one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

# Where the run writes: made absolute on the driver side whatever they are.
OUTPUT_PATH_KEYS = (
    "trainer.default_local_dir",
    "aspo.run_dir",
    "trainer.rollout_data_dir",
    "trainer.validation_data_dir",
    "ray_kwargs.timeline_json_file",
)
# What the run reads: made absolute when the relative path exists here (a hub id such as
# ``Qwen/Qwen2.5-Math-1.5B`` is left alone).
INPUT_PATH_KEYS = (
    "data.train_files",
    "data.val_files",
    "actor_rollout_ref.model.path",
    "actor_rollout_ref.model.tokenizer_path",
    "reward.custom_reward_function.path",
)

# Set by aspo.train.prepare_environment for the whole run; forwarded when set.
RUN_ENV_KEYS = (
    "VERL_FILE_LOGGER_PATH",
    "WANDB_DIR",
    "WANDB_MODE",
    "TOKENIZERS_PARALLELISM",
    "TQ_NUM_THREADS",
    "VERL_ENGINE_DEVICE",
)
# The user's own knobs in the driver's environment (ASPO_CPU_THREADS, ASPO_REWARD_*, WANDB_PROJECT...).
FORWARD_PREFIXES = ("ASPO_", "WANDB_")
# Secrets stay out: verl prints the runtime env and Ray shows it in the dashboard. A W&B key
# belongs in the nodes' environment (exported before `ray start`) or ~/.netrc on a shared $HOME.
NEVER_FORWARD = frozenset({"WANDB_API_KEY"})

# ray.init(address=...) raises on these (ray/_private/worker.py): they size a new local cluster.
LOCAL_CLUSTER_KEYS = ("num_cpus", "num_gpus", "resources", "object_store_memory", "labels", "_system_config")


def _is_local_path(value: str) -> bool:
    return bool(value) and "://" not in value


def _absolute(value: str, cwd: Path, must_exist: bool) -> str:
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    full = cwd / path
    if must_exist and not full.exists():
        return value
    return os.path.normpath(full)


def absolutize_paths(cfg: DictConfig, cwd: str | Path | None = None) -> list[str]:
    """Rewrite the run's relative paths against ``cwd`` (the driver's); return the keys changed."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    changed = []
    with open_dict(cfg):
        for keys, must_exist in ((OUTPUT_PATH_KEYS, False), (INPUT_PATH_KEYS, True)):
            for key in keys:
                value = OmegaConf.select(cfg, key, default=None)
                if value is None:
                    continue
                if isinstance(value, str):
                    new = _absolute(value, base, must_exist) if _is_local_path(value) else value
                else:  # a list of files
                    new = [_absolute(v, base, must_exist) if isinstance(v, str) and _is_local_path(v) else v
                           for v in value]
                    value = list(value)
                if new != value:
                    OmegaConf.update(cfg, key, new, force_add=True)
                    changed.append(key)
    return changed


def forwarded_environment(environ: Mapping[str, str], verl_keys: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``environ`` the actors need: the run's own and the ASPO_*/WANDB_* knobs,
    minus secrets and the keys verl's own runtime env sets (``verl_keys``)."""
    skip = NEVER_FORWARD | set(verl_keys)
    keys = [k for k in environ if k in RUN_ENV_KEYS or k.startswith(FORWARD_PREFIXES)]
    return {k: str(environ[k]) for k in sorted(keys) if k not in skip}


def _verl_runtime_env_keys(cfg: DictConfig) -> set[str]:
    from verl.trainer.constants_ppo import get_ppo_ray_runtime_env

    return set(get_ppo_ray_runtime_env(cfg).get("env_vars", {}))


def forward_environment(cfg: DictConfig, environ: Mapping[str, str] | None = None,
                        verl_keys: Iterable[str] | None = None) -> dict[str, str]:
    """Add the run's variables to ``ray_kwargs.ray_init.runtime_env.env_vars``; return those added.

    What the user put there wins, and so do verl's own entries (``get_ppo_ray_runtime_env``).
    """
    environ = os.environ if environ is None else environ
    verl_keys = _verl_runtime_env_keys(cfg) if verl_keys is None else verl_keys
    wanted = forwarded_environment(environ, verl_keys)
    with open_dict(cfg):
        ray_init = cfg.ray_kwargs.setdefault("ray_init", {})
        if ray_init.get("runtime_env") is None:
            ray_init.runtime_env = {}
        runtime_env = ray_init.runtime_env
        if runtime_env.get("env_vars") is None:
            runtime_env.env_vars = {}
        env_vars = runtime_env.env_vars
        added = {k: v for k, v in wanted.items() if k not in env_vars}
        for key, value in added.items():
            env_vars[key] = value
    return added


def attaching_to_cluster(cfg: DictConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The address ``ray.init`` will connect to, or None when it starts a local cluster."""
    environ = os.environ if environ is None else environ
    address = OmegaConf.select(cfg, "ray_kwargs.ray_init.address", default=None) or environ.get("RAY_ADDRESS")
    if not address or str(address) == "local":
        return None
    return str(address)


def drop_local_cluster_settings(cfg: DictConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """When attaching, remove the ``ray_init`` keys ``ray.init`` refuses then; return those removed.

    The cluster's nodes bring their own resources (``ray start --num-cpus/--num-gpus``); a CPU run
    still places its trainer on a "GPU", so some node must offer one (``--num-gpus=1``).
    """
    if attaching_to_cluster(cfg, environ) is None:
        return []
    ray_init = OmegaConf.select(cfg, "ray_kwargs.ray_init", default=None)
    if ray_init is None:
        return []
    removed = [k for k in LOCAL_CLUSTER_KEYS if ray_init.get(k) is not None]
    with open_dict(cfg):
        for key in LOCAL_CLUSTER_KEYS:
            ray_init.pop(key, None)
    return removed
