"""scripts/gpu_check.sh on CPU: argument handling, the dry run's commands (they compose into the tiny
recipe on hardware=cuda), the refusal without a GPU, and the result table (scripts/run_table.py).
The script itself has never run on a GPU."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"
RECIPES = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)


def test_dry_run_lists_every_recipe_at_tiny_scale_on_cuda():
    done = _run(DRY_RUN="1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "source scripts/setup_env.sh"
    commands = [shlex.split(line) for line in lines[1:]]
    assert [c[c.index("--config-name") + 1] for c in commands] == RECIPES
    for c in commands:
        assert c[0] == "aspo-train" and {"scale=tiny", "hardware=cuda", "trainer.total_training_steps=2"} <= set(c)


def test_dry_run_commands_compose(monkeypatch):
    monkeypatch.setenv("ASPO_DATA_DIR", "data")
    done = _run("aspo_code_qwen3_8b", "dapo_math_1p5b", "--", "trainer.test_freq=1", DRY_RUN="1", STEPS="3")
    commands = [shlex.split(line) for line in done.stdout.strip().splitlines()[1:]]
    assert len(commands) == 2
    for c in commands:
        name = c[c.index("--config-name") + 1]
        overrides = c[c.index("--config-name") + 2:]
        assert overrides[-1] == "trainer.test_freq=1" and "trainer.total_training_steps=3" in overrides
        with initialize_config_dir(config_dir=str(ROOT / "recipes"), version_base=None):
            cfg = compose(config_name=name, overrides=overrides)
        assert cfg.trainer.n_gpus_per_node == 1 and cfg.trainer.nnodes == 1
        assert cfg.actor_rollout_ref.rollout.tensor_model_parallel_size == 1  # the 8B recipe's TP 2 is a size
        assert cfg.actor_rollout_ref.rollout.name == "vllm" and cfg.trainer.experiment_name == name


@pytest.mark.parametrize("args, env, message", [
    (["nope"], {"DRY_RUN": "1"}, "unknown recipe 'nope'; choose from: aspo_code_1p5b"),
    ([], {"DRY_RUN": "1", "STEPS": "two"}, "STEPS must be a positive integer"),
    ([], {"PATH": "/usr/bin:/bin"}, "no CUDA GPU found"),
])
def test_bad_arguments_get_one_line(args, env, message):
    if "PATH" in env and Path("/usr/bin/nvidia-smi").exists():
        pytest.skip("this machine has nvidia-smi")
    done = _run(*args, **env)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_table_reports_each_run(tmp_path):
    ok = tmp_path / "aspo_math_1p5b"
    ok.mkdir()
    (tmp_path / "aspo_math_1p5b.status").write_text("0 95\n")
    records = [{"step": 1, "data": {"timing_s/step": 10.0, "critic/score/mean": 0.1, "rollout_corr/log_ppl_diff_max": 2e-3}},
               {"step": 2, "data": {"timing_s/step": 4.0, "critic/score/mean": 0.25, "rollout_corr/log_ppl_diff_max": 1e-3}}]
    (ok / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "grpo_math_1p5b.status").write_text("1 30\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_table.py"), str(tmp_path), "aspo_math_1p5b",
                           "grpo_math_1p5b"], capture_output=True, text=True)
    assert done.returncode == 1  # one run failed
    header, first, second = done.stdout.strip().splitlines()
    assert header.split() == ["recipe", "exit", "wall_s", "steps", "s/step", "score", "log_ppl_diff_max"]
    assert first.split() == ["aspo_math_1p5b", "0", "95", "2", "7", "0.25", "0.001"]
    assert second.split() == ["grpo_math_1p5b", "1", "30", "0", "-", "-", "-"]
