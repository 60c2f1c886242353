"""Start-up checks of an ``aspo-train`` config: one clear line per problem, naming the fix.

They run in the driver before Ray starts, so a typo costs a second rather than a ~100 s start-up
and a traceback from deep inside a Ray actor. ``preflight`` raises ``PreflightError`` for what
cannot work and returns warnings for what works but is probably not meant (ASPO on-policy).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, ListConfig


class PreflightError(ValueError):
    """A config that cannot train; the message says which key and how to fix it."""


# verl's RL parquet layout (what RLHFDataset and the reward loop read).
REQUIRED_COLUMNS = ("data_source", "prompt", "reward_model")
LAYOUT_HINT = (
    "verl's RL layout is data_source, prompt (chat list), ability, reward_model{style, ground_truth}, "
    "extra_info{split, index}; see aspo/fixtures/data.py"
)
GPU_ONLY_ROLLOUTS = ("vllm", "sglang", "trtllm")
# Losses that equal GRPO when every update is on-policy (importance ratio r = 1).
RATIO_DEPENDENT_LOSSES = ("aspo", "no_is")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _files(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [str(value)]


def check_dataset(key: str, files: Iterable[str], prompt_key: str, reward_fn_key: str) -> None:
    import pyarrow.parquet as pq

    files = list(files)
    if not files:
        raise PreflightError(f"{key} is empty; give parquet file(s) in {LAYOUT_HINT.split(';')[0]}")
    for path in files:
        local = Path(os.path.expanduser(path))
        if not local.exists():
            raise PreflightError(f"{key}: {path} does not exist; give a parquet file ({LAYOUT_HINT})")
        try:
            names = set(pq.read_schema(local).names)
        except Exception as err:  # not parquet, truncated file, ...
            raise PreflightError(f"{key}: {path} is not a readable parquet file ({err})") from err
        needed = [{"prompt": prompt_key, "data_source": reward_fn_key}.get(c, c) for c in REQUIRED_COLUMNS]
        missing = [c for c in needed if c not in names]
        if missing:
            raise PreflightError(f"{key}: {path} lacks column(s) {', '.join(missing)}; {LAYOUT_HINT}")


def check_rows(cfg: DictConfig) -> list[str]:
    """Every row of the train and val files (ground truth, empty or overlong prompt, data_source): aspo.data.validate."""
    from aspo.data.validate import DataError, check_datasets

    try:
        return check_datasets(cfg, {"data.train_files": _files(cfg.data.train_files), "data.val_files": _files(cfg.data.val_files)})
    except DataError as err:
        raise PreflightError(str(err)) from err


def check_model_path(path: str) -> None:
    local = Path(os.path.expanduser(path))
    if local.exists():
        if local.is_dir() and not (local / "config.json").exists():
            raise PreflightError(
                f"actor_rollout_ref.model.path={path} has no config.json; point it at a Hugging Face model "
                "directory (config.json, weights, tokenizer) or a hub id such as Qwen/Qwen2.5-Math-1.5B"
            )
        return
    if path.startswith(("/", ".", "~")) or not _HUB_ID.match(path):
        raise PreflightError(
            f"actor_rollout_ref.model.path={path} does not exist; give a local Hugging Face model directory "
            "or a hub id such as Qwen/Qwen2.5-Math-1.5B"
        )


def check_hardware(cfg: DictConfig) -> None:
    import torch

    hardware = cfg.aspo.hardware
    rollout = cfg.actor_rollout_ref.rollout.name
    if hardware == "cuda" and not torch.cuda.is_available():
        raise PreflightError("hardware=cuda but torch sees no CUDA GPU; drop the override (or pass hardware=cpu)")
    if hardware != "cpu":
        return
    if rollout == "vllm" and cfg.aspo.get("cpu_rollout") == "vllm":  # hardware=cpu_vllm
        from aspo.cpu.vllm_env import vllm_cpu_problem

        problem = vllm_cpu_problem()
        if problem:
            raise PreflightError(problem)
    elif rollout in GPU_ONLY_ROLLOUTS:
        raise PreflightError(
            f"actor_rollout_ref.rollout.name={rollout} needs a CUDA GPU; on CPU use "
            "actor_rollout_ref.rollout.name=hf (the hardware=cpu default) or hardware=cpu_vllm"
        )
    actor = cfg.actor_rollout_ref.actor
    if actor.strategy not in ("fsdp", "fsdp2"):
        raise PreflightError(f"actor_rollout_ref.actor.strategy={actor.strategy} needs GPUs; on CPU use fsdp2")
    if cfg.actor_rollout_ref.model.get("use_remove_padding", False):
        raise PreflightError(
            "actor_rollout_ref.model.use_remove_padding=true needs flash-attn on a GPU; "
            "on CPU set actor_rollout_ref.model.use_remove_padding=false"
        )
    if cfg.actor_rollout_ref.model.get("use_fused_kernels", False):
        raise PreflightError("actor_rollout_ref.model.use_fused_kernels=true needs a GPU; set it to false on CPU")
    if cfg.actor_rollout_ref.actor.fsdp_config.get("param_offload", False):
        raise PreflightError("actor_rollout_ref.actor.fsdp_config.param_offload=true is a GPU option; set it to false on CPU")


FLASH_ATTN_PIN = "flash-attn==2.8.3"  # what verl 0.9.1's fsdp extra pins


def attention_implementation(cfg: DictConfig) -> str:
    """The attention the actor loads with: verl's model config defaults to flash_attention_2."""
    override = cfg.actor_rollout_ref.model.get("override_config", None) or {}
    return str(override.get("attn_implementation", "flash_attention_2"))


def _flash_attn_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def check_attention(cfg: DictConfig) -> None:
    """On GPUs the trainer's attention kernel must be installed, and Ulysses needs flash attention.

    verl 0.9.1 loads every model with ``flash_attention_2`` unless told otherwise; without the
    flash-attn package that load fails on every rank after a few minutes of start-up.
    """
    if cfg.aspo.hardware == "cpu":
        return  # hardware/cpu.yaml sets sdpa; check_hardware refuses the GPU-only options there
    attn = attention_implementation(cfg)
    if attn == "flash_attention_2" and not _flash_attn_installed():
        raise PreflightError(
            "actor_rollout_ref.model.override_config.attn_implementation=flash_attention_2 (verl's default) needs "
            f"the flash-attn package, which is not installed: `pip install --no-build-isolation {FLASH_ATTN_PIN}` "
            "(scripts/setup_env.sh does it on a GPU machine), or train with "
            "actor_rollout_ref.model.override_config.attn_implementation=sdpa"
        )
    actor = cfg.actor_rollout_ref.actor
    ulysses = max(
        int(actor.get("ulysses_sequence_parallel_size", 1) or 1),
        int(actor.get("fsdp_config", {}).get("ulysses_sequence_parallel_size", 1) or 1),
    )
    if ulysses > 1 and attn != "flash_attention_2":
        raise PreflightError(
            f"Ulysses sequence parallelism (ulysses_sequence_parallel_size={ulysses}) needs "
            f"attn_implementation=flash_attention_2, not {attn}: verl splits attention by patching flash attention; "
            "install flash-attn or set actor_rollout_ref.actor.ulysses_sequence_parallel_size=1"
        )


def check_old_policy_source(cfg: DictConfig) -> None:
    """``aspo.reuse_rollout_log_probs`` needs a rollout that returns the actor's log-probs and entropy."""
    if not cfg.get("aspo", {}).get("reuse_rollout_log_probs", False):
        return
    rollout = cfg.actor_rollout_ref.rollout
    if rollout.name != "hf":
        raise PreflightError(
            f"aspo.reuse_rollout_log_probs=true needs the CPU hf rollout (it returns the actor's own log-probs "
            f"and entropy), not actor_rollout_ref.rollout.name={rollout.name}; set aspo.reuse_rollout_log_probs=false"
        )
    if not rollout.get("calculate_log_probs", False):
        raise PreflightError(
            "aspo.reuse_rollout_log_probs=true needs actor_rollout_ref.rollout.calculate_log_probs=true "
            "(or set aspo.reuse_rollout_log_probs=false)"
        )


# Losses whose gradient needs no behaviour log-probs (ASymPO, SPO: made for asynchronous RL).
BEHAVIOUR_FREE_LOSSES = ("asympo", "spo")


def check_behaviour_log_probs(cfg: DictConfig) -> list[str]:
    """Asynchronous modes: ratio-based losses must be anchored to the policy that sampled the data.

    In ``colocate_async``/``separate_async`` a step trains on responses sampled by older policies.
    verl's default old-log-prob pass recomputes ``old_log_prob`` under the current (or the cycle's
    first) policy, which never sampled them: the clip and the importance ratio then measure the
    wrong distance, silently. Behaviour log-probs come from the rollout (``bypass_mode``), or the
    gap is corrected by rollout importance weights (decoupled PPO, ``rollout_is``). ASymPO and SPO
    need none; for them the pass is only wasted work (warning).
    """
    mode = cfg.trainer.get("v1", {}).get("trainer_mode", "sync")
    if mode == "sync":
        return []
    loss_mode = cfg.actor_rollout_ref.actor.policy_loss.loss_mode
    corr = cfg.algorithm.get("rollout_correction", None) or {}
    bypass, rollout_is = bool(corr.get("bypass_mode", False)), corr.get("rollout_is", None)
    if loss_mode in BEHAVIOUR_FREE_LOSSES:
        if bypass:
            return []
        return [
            f"loss_mode={loss_mode} uses no behaviour log-probs, but trainer.v1.trainer_mode={mode} still runs the "
            "old-log-prob pass for it; algorithm.rollout_correction.bypass_mode=true skips that work"
        ]
    if not (bypass or rollout_is):
        raise PreflightError(
            f"trainer.v1.trainer_mode={mode} trains on responses sampled by older policies, but loss_mode={loss_mode} "
            "would anchor its ratio to old log-probs recomputed under a policy that never sampled them: set "
            "algorithm.rollout_correction.bypass_mode=true (old_log_prob = the rollout's behaviour log-probs), or "
            "algorithm.rollout_correction.rollout_is=token (decoupled PPO), or use loss_mode=asympo|spo (need none)"
        )
    if not cfg.actor_rollout_ref.rollout.get("calculate_log_probs", False):
        raise PreflightError(
            f"trainer.v1.trainer_mode={mode} with loss_mode={loss_mode} needs the rollout's behaviour log-probs: "
            "set actor_rollout_ref.rollout.calculate_log_probs=true"
        )
    return []


def check_separate_async(cfg: DictConfig) -> None:
    """verl's ``separate_async``: a standalone rollout fed by a checkpoint engine (on CPU: ``async_mode=separate_cpu``).

    Caught here rather than by verl's asserts or not at all: with too few (fake) GPUs in Ray the
    standalone rollout's placement group waits forever.
    """
    v1 = cfg.trainer.get("v1", {}) or {}
    if v1.get("trainer_mode", "sync") != "separate_async":
        return
    rollout = cfg.actor_rollout_ref.rollout
    backend = rollout.checkpoint_engine.backend
    cpu = cfg.aspo.hardware == "cpu"
    fix = "add async_mode=separate_cpu (CPU settings: aspo/configs/async_mode/separate_cpu.yaml)" if cpu else (
        "set actor_rollout_ref.rollout.checkpoint_engine.backend=nccl")
    if backend == "naive":
        raise PreflightError(
            "trainer.v1.trainer_mode=separate_async sends the trainer's weights to a standalone rollout through a "
            f"checkpoint engine, and actor_rollout_ref.rollout.checkpoint_engine.backend=naive only works in-process: {fix}"
        )
    if cpu and backend != "gloo":
        raise PreflightError(
            f"actor_rollout_ref.rollout.checkpoint_engine.backend={backend} needs an accelerator; on CPU set "
            "actor_rollout_ref.rollout.checkpoint_engine.backend=gloo (async_mode=separate_cpu does)"
        )
    rollout_gpus = int(rollout.get("nnodes", 0) or 0) * int(rollout.get("n_gpus_per_node", 0) or 0)
    if rollout_gpus <= 0:
        raise PreflightError(
            "trainer.v1.trainer_mode=separate_async needs a standalone rollout: set actor_rollout_ref.rollout.nnodes=1 "
            f"and actor_rollout_ref.rollout.n_gpus_per_node=1 or more{' (async_mode=separate_cpu does)' if cpu else ''}"
        )
    sync = int(v1.get("separate_async", {}).get("parameter_sync_step", 1))
    prompts, mini = int(cfg.data.train_batch_size), int(cfg.actor_rollout_ref.actor.ppo_mini_batch_size)
    if prompts != sync * mini:
        raise PreflightError(
            f"trainer.v1.separate_async.parameter_sync_step={sync} x actor_rollout_ref.actor.ppo_mini_batch_size={mini} "
            f"must equal data.train_batch_size={prompts} (a step is parameter_sync_step mini-batch updates): "
            f"set trainer.v1.separate_async.parameter_sync_step={max(1, prompts // mini)}"
        )
    gpus = (cfg.get("ray_kwargs", {}) or {}).get("ray_init", {}).get("num_gpus", None)
    trainer_gpus = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    if cpu and gpus is not None and int(gpus) < trainer_gpus + rollout_gpus:
        raise PreflightError(
            f"ray_kwargs.ray_init.num_gpus={gpus} fake GPUs cannot hold the trainer ({trainer_gpus}) and the standalone "
            f"rollout ({rollout_gpus}); Ray would wait forever: set ray_kwargs.ray_init.num_gpus={trainer_gpus + rollout_gpus}"
        )


def check_batch_sizes(cfg: DictConfig) -> None:
    data, actor, rollout = cfg.data, cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    prompts, mini, n = int(data.train_batch_size), int(actor.ppo_mini_batch_size), int(rollout.n)
    if prompts % mini:
        raise PreflightError(
            f"data.train_batch_size={prompts} is not a multiple of actor_rollout_ref.actor.ppo_mini_batch_size={mini} "
            f"(both count prompts); e.g. ppo_mini_batch_size={_divisor_near(prompts, mini)}"
        )
    micro = actor.get("ppo_micro_batch_size_per_gpu")
    world = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    responses_per_mini = mini * n
    if responses_per_mini % world:
        raise PreflightError(
            f"a mini-batch of {mini} prompts x rollout.n={n} = {responses_per_mini} responses cannot be split over "
            f"{world} trainer ranks; make ppo_mini_batch_size * rollout.n a multiple of {world}"
        )
    if micro and not actor.get("use_dynamic_bsz", False) and (responses_per_mini // world) % int(micro):
        raise PreflightError(
            f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro} does not divide the "
            f"{responses_per_mini // world} responses per rank of a mini-batch (ppo_mini_batch_size={mini} x rollout.n={n}); "
            f"e.g. ppo_micro_batch_size_per_gpu={_divisor_near(responses_per_mini // world, int(micro))}"
        )
    if (prompts * n) % world:
        raise PreflightError(
            f"data.train_batch_size={prompts} x rollout.n={n} responses cannot be split over {world} trainer ranks"
        )
    # The old-policy (and reference) log-prob pass splits a whole step's responses per rank.
    per_rank = prompts * n // world
    sections = [("rollout", rollout)]
    if actor.get("use_kl_loss", False):
        sections.append(("ref", cfg.actor_rollout_ref.ref))
    for name, section in sections:
        lp_micro = section.get("log_prob_micro_batch_size_per_gpu")
        if lp_micro and not section.get("log_prob_use_dynamic_bsz", False) and per_rank % int(lp_micro):
            raise PreflightError(
                f"actor_rollout_ref.{name}.log_prob_micro_batch_size_per_gpu={lp_micro} does not divide the "
                f"{per_rank} responses per rank of a step (data.train_batch_size={prompts} x rollout.n={n}); "
                f"e.g. log_prob_micro_batch_size_per_gpu={_divisor_near(per_rank, int(lp_micro))}"
            )


def _divisor_near(total: int, wanted: int) -> int:
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))


def updates_per_batch(cfg: DictConfig) -> int:
    actor = cfg.actor_rollout_ref.actor
    return int(actor.ppo_epochs) * max(1, int(cfg.data.train_batch_size) // int(actor.ppo_mini_batch_size))


def on_policy_warning(cfg: DictConfig) -> str | None:
    loss_mode = cfg.actor_rollout_ref.actor.policy_loss.loss_mode
    if loss_mode in RATIO_DEPENDENT_LOSSES and updates_per_batch(cfg) == 1:
        return (
            f"loss_mode={loss_mode} with one optimizer update per batch is exactly GRPO (the importance ratio is 1): "
            "make data.train_batch_size a multiple (>1) of actor_rollout_ref.actor.ppo_mini_batch_size "
            "or raise actor_rollout_ref.actor.ppo_epochs"
        )
    return None


def preflight(cfg: DictConfig) -> list[str]:
    """Raise ``PreflightError`` for a config that cannot train; return warnings otherwise."""
    from aspo.config import ConfigError, validate_actor_config

    try:
        validate_actor_config(cfg.actor_rollout_ref.actor)
    except ConfigError as err:
        raise PreflightError(str(err)) from err
    check_hardware(cfg)
    check_attention(cfg)
    check_old_policy_source(cfg)
    check_model_path(str(cfg.actor_rollout_ref.model.path))
    prompt_key = cfg.data.get("prompt_key", "prompt")
    reward_fn_key = cfg.data.get("reward_fn_key", "data_source")
    check_dataset("data.train_files", _files(cfg.data.train_files), prompt_key, reward_fn_key)
    check_dataset("data.val_files", _files(cfg.data.val_files), prompt_key, reward_fn_key)
    check_batch_sizes(cfg)
    check_separate_async(cfg)
    warnings = check_rows(cfg) + check_behaviour_log_probs(cfg)
    on_policy = on_policy_warning(cfg)
    if on_policy:
        warnings.append(on_policy)
    return warnings
