"""Every paper recipe composes on verl 0.9.1's config and carries the official Archer2.0 values;
baselines differ from ASPO by the loss only; launch scripts are pinned and call aspo-train."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))
REQUIRED = {"aspo_math_1p5b", "aspo_code_1p5b", "grpo_math_1p5b", "dapo_math_1p5b"}

# The official Archer2.0 values every recipe must carry (dotted key -> value).
COMMON = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": False,
    "algorithm.filter_groups.enable": True,       # drop groups whose rewards are all equal
    "algorithm.filter_groups.metric": "reward",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.optim.lr_warmup_steps": 10,
    "actor_rollout_ref.actor.optim.weight_decay": 0.1,
    "actor_rollout_ref.actor.optim.clip_grad": 1.0,
    "actor_rollout_ref.actor.grad_clip": 1.0,
    "data.train_batch_size": 64,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 16,
    "actor_rollout_ref.actor.ppo_epochs": 3,
    "actor_rollout_ref.rollout.n": 16,
    "actor_rollout_ref.rollout.temperature": 1.0,
    "actor_rollout_ref.rollout.top_p": 1.0,
    "data.max_prompt_length": 2048,
    "data.max_response_length": 32768,
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_c": 3.0,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.policy_loss._target_": "aspo.config.AspoPolicyLossConfig",
    "reward.reward_manager.name": "dapo",
    "reward.reward_kwargs.overlong_buffer_cfg.enable": True,
    "reward.reward_kwargs.overlong_buffer_cfg.len": 16,
    "reward.reward_kwargs.overlong_buffer_cfg.penalty_factor": 1.0,
    "reward.reward_kwargs.max_resp_len": 32768,
    "reward.custom_reward_function.path": "pkg://reward",
    "actor_rollout_ref.rollout.val_kwargs.n": 4,
    "actor_rollout_ref.rollout.val_kwargs.temperature": 0.6,
    "actor_rollout_ref.rollout.val_kwargs.top_p": 0.95,
    "actor_rollout_ref.rollout.val_kwargs.do_sample": True,
    "trainer.n_gpus_per_node": 8,
    "trainer.save_freq": 10,
    "trainer.resume_mode": "auto",
    "actor_rollout_ref.rollout.name": "vllm",
}
LOSS = {
    "aspo": {"actor_rollout_ref.actor.policy_loss.loss_mode": "aspo",
             "actor_rollout_ref.actor.policy_loss.entropy_clip": True,
             "actor_rollout_ref.actor.policy_loss.entropy_quantile": 0.8,
             "actor_rollout_ref.actor.policy_loss.high_entropy_clip_ratio_low": 0.4,
             "actor_rollout_ref.actor.policy_loss.high_entropy_clip_ratio_high": 0.4,
             "actor_rollout_ref.actor.clip_ratio_high": 0.2},
    "grpo": {"actor_rollout_ref.actor.policy_loss.loss_mode": "vanilla",
             "actor_rollout_ref.actor.policy_loss.entropy_clip": False,
             "actor_rollout_ref.actor.clip_ratio_high": 0.2},
    "dapo": {"actor_rollout_ref.actor.policy_loss.loss_mode": "vanilla",
             "actor_rollout_ref.actor.policy_loss.entropy_clip": False,
             "actor_rollout_ref.actor.clip_ratio_high": 0.28},
}


def _compose(name: str, overrides: list[str] = ()):
    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        cfg = compose(config_name=name, overrides=["hardware=cuda", *overrides])
    return cfg


def _flat(cfg) -> dict:
    out = {}

    def walk(node, prefix):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                out[key] = v

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return out


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    os.environ.setdefault("ASPO_DATA_DIR", "data")
    return {name: _compose(name) for name in NAMES}


def test_required_recipes_exist():
    assert REQUIRED <= set(NAMES)
    assert any("qwen3" in n for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_carries_the_paper_values(composed, name):
    cfg = composed[name]
    loss = name.split("_")[0]
    for key, want in {**COMMON, **LOSS[loss]}.items():
        assert OmegaConf.select(cfg, key) == want, f"{name}: {key}={OmegaConf.select(cfg, key)!r}, want {want!r}"
    assert cfg.trainer.experiment_name == name
    task = "math" if "_math_" in name else "code"
    assert f"/{task}/" in str(cfg.data.train_files)
    model = str(cfg.actor_rollout_ref.model.path)
    assert ("DeepSeek-R1-Distill-Qwen-1.5B" in model) == name.endswith("1p5b")
    assert ("Qwen3" in model) == ("qwen3" in name)


def test_baselines_differ_from_aspo_by_the_loss_only(composed):
    for task in ("math", "code"):
        aspo = _flat(composed[f"aspo_{task}_1p5b"])
        for base in ("grpo", "dapo"):
            other = _flat(composed[f"{base}_{task}_1p5b"])
            diff = {k for k in aspo.keys() | other.keys() if aspo.get(k) != other.get(k)}
            allowed = set(LOSS["aspo"]) | set(LOSS[base]) | {"trainer.experiment_name"}
            assert diff <= allowed, f"{base}_{task}_1p5b differs from aspo_{task}_1p5b in {sorted(diff - allowed)}"
            assert "actor_rollout_ref.actor.policy_loss.loss_mode" in diff


def test_recipe_resolves_and_validates_as_aspo_config(composed, monkeypatch):
    """The ASPO loss settings build aspo's config dataclass; data paths follow ASPO_DATA_DIR."""
    monkeypatch.setenv("ASPO_DATA_DIR", "/datasets/aspo")
    cfg = _compose("aspo_math_1p5b")
    OmegaConf.resolve(cfg)
    assert cfg.data.train_files == "/datasets/aspo/math/math_train.parquet"
    assert list(cfg.data.val_files) == ["/datasets/aspo/math/aime2024.parquet", "/datasets/aspo/math/aime2025.parquet"]
    from verl.utils.config import omega_conf_to_dataclass

    loss_cfg = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.policy_loss)
    assert type(loss_cfg).__name__ == "AspoPolicyLossConfig" and loss_cfg.entropy_clip is True
    assert cfg.reward.reward_kwargs.max_resp_len == 32768


@pytest.mark.parametrize("name", NAMES)
def test_launch_script_pins_verl_and_calls_aspo_train(name):
    script = (RECIPES / f"{name}.sh").read_text()
    assert "verl==0.9.1" in script.splitlines()[2] and f"_launch.sh\" {name}" in script
    dry = subprocess.run(["bash", str(RECIPES / f"{name}.sh"), "trainer.total_training_steps=5"],
                         env={**os.environ, "DRY_RUN": "1", "NNODES": "2"}, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split() == ["aspo-train", "--config-dir", str(RECIPES), "--config-name", name,
                                  "trainer.nnodes=2", "trainer.total_training_steps=5"]


def test_aspo_train_cli_composes_a_recipe():
    exe = Path(sys.executable).with_name("aspo-train")
    done = subprocess.run([str(exe), "--config-dir", str(RECIPES), "--config-name", "dapo_math_1p5b", "--cfg", "job",
                           "hardware=cuda"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "clip_ratio_high: 0.28" in done.stdout and "experiment_name: dapo_math_1p5b" in done.stdout
