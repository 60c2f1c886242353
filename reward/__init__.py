"""Outcome rewards for math and code, safe to run at RL scale on untrusted model output.

``compute_score`` is verl's custom reward function (``custom_reward_function.path=pkg://reward``,
``name=compute_score``); ``compute_score_batch`` scores many responses concurrently (verl's
``batch`` reward manager, ``name=compute_score_batch``). Math answers are checked by math-verify in
killable worker processes; code runs in a bubblewrap sandbox. See docs/reward.md and
shared/design/verifiers.md. This package imports neither verl nor torch.
"""

from reward.batch import compute_score_batch
from reward.config import RewardConfig, configure, get_config
from reward.dispatch import UnknownDataSource, compute_score, known_sources, resolve
from reward.result import REASONS


def check_code_sandbox() -> dict:
    """Start the code sandbox now and return what its isolation probe saw.

    Call it at trainer start-up to fail fast (``SandboxUnavailable`` says how to fix the machine)
    instead of at the first code batch.
    """
    from reward import _runtime

    box = _runtime.sandbox()
    return {"unsafe": True} if box.unsafe else box.self_check()


__all__ = [
    "compute_score", "compute_score_batch", "configure", "get_config", "RewardConfig", "UnknownDataSource",
    "known_sources", "resolve", "REASONS", "check_code_sandbox",
]
