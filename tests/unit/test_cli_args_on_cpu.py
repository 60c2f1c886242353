"""aspo-train's command-line defaults: hardware, the recipes dir, and options mixed with overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aspo.cli_args import split_options, with_defaults

ROOT = Path(__file__).resolve().parents[2]


def cpu() -> str:
    return "cpu"


def test_options_are_moved_before_overrides_keeping_their_values():
    argv = ["a=1", "--cfg", "job", "b=2", "--resolve", "-cn", "quickstart", "c=3"]
    assert split_options(argv) == (["--cfg", "job", "--resolve", "-cn", "quickstart"], ["a=1", "b=2", "c=3"])


def test_info_takes_a_value_only_when_it_is_one_of_its_choices():
    assert split_options(["--info", "searchpath", "a=1"]) == (["--info", "searchpath"], ["a=1"])
    assert split_options(["--info", "a=1"]) == (["--info"], ["a=1"])


def test_equals_form_and_multirun_flag_stay_single_tokens():
    assert split_options(["--config-name=x", "-m", "a=1,2"]) == (["--config-name=x", "-m"], ["a=1,2"])


def test_hardware_is_added_once_and_a_given_one_wins():
    assert with_defaults(["a=1"], cpu)[-1] == "hardware=cpu"
    assert with_defaults(["hardware=cuda", "a=1"], cpu).count("hardware=cuda") == 1
    assert not any(a == "hardware=cpu" for a in with_defaults(["hardware=cuda"], cpu))


def test_recipes_dir_is_the_default_config_dir_unless_given(monkeypatch):
    monkeypatch.delenv("ASPO_RECIPES_DIR", raising=False)
    argv = with_defaults(["--config-name", "aspo_math_1p5b"], cpu)
    assert argv[argv.index("--config-dir") + 1] == str(ROOT / "recipes")
    mine = with_defaults(["-cd", "/elsewhere", "--config-name", "x"], cpu)
    assert "--config-dir" not in mine and mine[:2] == ["-cd", "/elsewhere"]
    monkeypatch.setenv("ASPO_RECIPES_DIR", "/my/recipes")
    argv = with_defaults([], cpu)
    assert argv[argv.index("--config-dir") + 1] == "/my/recipes"


@pytest.mark.parametrize("name", ["grpo_math_1p5b", "quickstart"])
def test_aspo_train_finds_recipes_and_accepts_options_after_overrides(name):
    done = subprocess.run(
        [sys.executable, "-m", "aspo.train", "--config-name", name, "trainer.total_training_steps=3", "--cfg", "job"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "total_training_steps: 3" in done.stdout
