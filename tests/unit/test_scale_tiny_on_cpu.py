"""``scale=tiny``: every paper recipe accepts it, and it changes sizes only.

Each recipe is composed twice with Hydra (its own sizes and ``scale=tiny``) and the two flattened
configs are diffed: every key that differs must be a size key (model, lengths, prompts per step,
n, batch sizes, GPUs, data). So the loss, KL loss, entropy-aware clip, dynamic sampling, overlong
penalty, validation settings and checkpointing of a tiny run are the recipe's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aspo.configs import flatten

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))

# Keys scale=tiny may change: sizes only.
SIZE_KEYS = {
    "actor_rollout_ref.model.path",
    "data.train_files",
    "data.val_files",
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu",
    "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.rollout.max_num_batched_tokens",
    "actor_rollout_ref.rollout.max_model_len",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
    "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu",
    "actor_rollout_ref.actor.tensor_model_parallel_size",
    "actor_rollout_ref.rollout.tensor_model_parallel_size",
    "actor_rollout_ref.actor.ulysses_sequence_parallel_size",
    "actor_rollout_ref.ref.ulysses_sequence_parallel_size",
    "trainer.n_gpus_per_node",
    "trainer.nnodes",
}
# Algorithmic settings that must be present and identical (a regression guard on top of the diff).
KEPT = (
    "actor_rollout_ref.actor.policy_loss.loss_mode",
    "actor_rollout_ref.actor.policy_loss.entropy_clip",
    "actor_rollout_ref.actor.use_kl_loss",
    "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.actor.clip_ratio_c",
    "actor_rollout_ref.actor.ppo_epochs",
    "algorithm.filter_groups.enable",
    "reward.reward_manager.name",
    "reward.reward_kwargs.overlong_buffer_cfg.enable",
    "reward.reward_kwargs.overlong_buffer_cfg.len",
    "actor_rollout_ref.rollout.val_kwargs.n",
    "actor_rollout_ref.rollout.val_kwargs.temperature",
    "trainer.save_freq",
    "trainer.test_freq",
)


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        return compose(config_name=name, overrides=overrides)




@pytest.fixture(autouse=True)
def _data_dir(monkeypatch):
    monkeypatch.setenv("ASPO_DATA_DIR", "data")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hardware", ["cuda", "cpu_vllm"])
def test_tiny_changes_sizes_only(name, hardware):
    full = flatten(_compose(name, [f"hardware={hardware}"]))
    tiny = flatten(_compose(name, [f"hardware={hardware}", "scale=tiny"]))
    diff = {k for k in full.keys() | tiny.keys() if full.get(k) != tiny.get(k)}
    assert diff, f"{name}: scale=tiny changed nothing"
    assert diff <= SIZE_KEYS, f"{name}: scale=tiny changes non-size keys {sorted(diff - SIZE_KEYS)}"
    for key in KEPT:
        assert key in tiny and tiny[key] == full[key], f"{name}: {key} differs or is missing"


@pytest.mark.parametrize("name", ["aspo_math_1p5b", "aspo_code_1p5b"])
def test_tiny_resolves_to_shipped_fixtures(name, tmp_path, monkeypatch):
    """The tiny run's model (head_dim >= 32 for vLLM's CPU attention) and task data exist and load."""
    import pandas as pd

    from aspo.train import register_resolvers

    monkeypatch.setenv("ASPO_FIXTURES_DIR", str(tmp_path))
    register_resolvers()
    cfg = _compose(name, ["hardware=cpu_vllm", "scale=tiny"])
    OmegaConf.resolve(cfg)
    model = Path(cfg.actor_rollout_ref.model.path)
    arch = json.loads((model / "config.json").read_text())
    assert arch["hidden_size"] // arch["num_attention_heads"] >= 32
    task = "code" if "_code_" in name else "math"
    for split in ("train_files", "val_files"):
        frame = pd.read_parquet(str(cfg.data[split]))
        assert len(frame) > 0 and set(frame.data_source) == {task}
    assert cfg.trainer.n_gpus_per_node == 1 and cfg.trainer.nnodes == 1
    assert cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.actor_rollout_ref.model.use_remove_padding is False  # the hardware group wins on CPU
    assert cfg.reward.reward_kwargs.max_resp_len == cfg.data.max_response_length


def test_recipes_keep_verl_gpu_defaults_that_cpu_turns_off():
    """archer2_paper no longer repeats use_remove_padding/gradient checkpointing: GPU runs keep verl's
    defaults (on), CPU runs get the hardware group's (off)."""
    gpu = _compose("aspo_math_1p5b", ["hardware=cuda"]).actor_rollout_ref.model
    cpu = _compose("aspo_math_1p5b", ["hardware=cpu"]).actor_rollout_ref.model
    assert gpu.use_remove_padding is True and gpu.enable_gradient_checkpointing is True
    assert cpu.use_remove_padding is False and cpu.enable_gradient_checkpointing is False


def test_tiny_code_fixture_is_solvable_by_the_real_verifier():
    """The code fixture's tests run in the sandbox: a right program scores 1, a wrong one 0."""
    import shutil

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap (bwrap) is not installed: the code sandbox cannot run")
    from aspo.fixtures import code_data
    from reward import compute_score

    row = code_data.rows("train")[0]
    statement = row["prompt"][0]["content"]
    op = {"a+b": "a + b", "a-b": "a - b", "a*b": "a * b", "max(a,b)": "max(a, b)", "min(a,b)": "min(a, b)"}
    expr = next(v for k, v in op.items() if k in statement)
    good = f"```python\na, b = map(int, input().split())\nprint({expr})\n```"
    bad = "```python\nprint(12345)\n```"
    truth = row["reward_model"]["ground_truth"]
    score = lambda text: compute_score("code", text, truth, row["extra_info"])  # noqa: E731
    as_float = lambda r: r["score"] if isinstance(r, dict) else float(r)  # noqa: E731
    assert as_float(score(good)) == 1.0
    assert as_float(score(bad)) == 0.0


def test_code_fixture_parquet_matches_its_generator(tmp_path):
    from aspo.fixtures import code_data

    for split, path in zip(("train", "val"), code_data.write_dataset(tmp_path), strict=True):
        shipped = (code_data.TRAIN_FILE if split == "train" else code_data.VAL_FILE).read_bytes()
        assert path.read_bytes() == shipped, f"{split}: rerun python -m aspo.fixtures --rewrite-data"
