"""Dispatch on data_source, verl's call signatures, the batch API and the settings."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

import reward
from reward.dispatch import UnknownDataSource


@pytest.mark.parametrize("source, kind", [
    ("math", "math"), ("MATH500", "math"), ("aime24", "math"), ("amc23", "math"), ("minerva", "math"),
    ("olympiadbench", "math"), ("deepscaler", "math"), ("HuggingFaceH4/MATH-500", "math"),
    ("code", "code"), ("livecodebench", "code"), ("lcb_v5", "code"), ("codeforces", "code"), ("taco", "code"),
    ("apps", "code"),
])
def test_resolve_known_sources(source, kind):
    assert reward.resolve(source) == kind


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(UnknownDataSource) as e:
        reward.compute_score("openai/webgpt", "x", "y")
    msg = str(e.value)
    assert "webgpt" in msg and "aime*" in msg and "livecodebench*" in msg


def test_verl_keyword_call_with_extra_kwargs():
    """verl's reward loop calls with keywords and may add its own (reward_router_address, ...)."""
    res = reward.compute_score(data_source="math", solution_str=r"\boxed{4}", ground_truth="4",
                               extra_info={"num_turns": 1}, reward_router_address=None, reward_model_tokenizer=None)
    assert res == {"score": 1.0, "acc": True, "pred": "4", "reason": "correct"}


def test_batch_mixed_sources_in_order():
    gt_code = json.dumps({"inputs": ["3\n", "4\n"], "outputs": ["9\n", "16\n"]})
    sources = ["math", "code", "aime", "code", "math"]
    responses = [r"\boxed{\frac12}", "```python\nn = int(input())\nprint(n * n)\n```",
                 r"\boxed{7}", "```python\nwhile True: pass\n```", "no box"]
    gts = ["0.5", gt_code, "8", gt_code, "1"]
    t0 = time.monotonic()
    out = reward.compute_score_batch(data_sources=sources, solution_strs=responses, ground_truths=gts,
                                     extra_infos=[{}] * 5, code_timeout_s=1.0)
    assert time.monotonic() - t0 < 30
    assert [r["score"] for r in out] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [r["reason"] for r in out] == ["correct", "correct", "wrong", "timeout", "no_answer"]
    assert all(set(r) == {"score", "acc", "pred", "reason"} for r in out)  # same keys: verl stacks them


def test_batch_rejects_unknown_source_and_bad_lengths():
    with pytest.raises(UnknownDataSource):
        reward.compute_score_batch(["math", "nope"], ["a", "b"], ["1", "2"])
    with pytest.raises(ValueError, match="lengths differ"):
        reward.compute_score_batch(["math"], ["a", "b"], ["1", "2"])


def test_configure_rejects_unknown_settings():
    with pytest.raises(TypeError, match="unknown reward setting"):
        reward.configure(math_timeout=3)


def test_env_settings_are_validated(monkeypatch):
    monkeypatch.setenv("ASPO_REWARD_MATH_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="ASPO_REWARD_MATH_TIMEOUT"):
        reward.RewardConfig.from_env()


def test_import_is_light():
    """reward must not import verl or torch (nor math-verify, until a worker needs it)."""
    code = ("import sys, reward\nbad = [m for m in ('verl', 'torch', 'math_verify', 'sympy') if m in sys.modules]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out
