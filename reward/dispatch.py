"""``compute_score``: verl's custom-reward entry point, dispatching on ``data_source``."""

from __future__ import annotations

from typing import Any

from reward import _runtime
from reward.config import get_config

# Matched against the lower-cased data_source and its last path component
# ("HuggingFaceH4/MATH-500" -> "math-500"). Exact names, then prefixes.
MATH_PREFIXES = ("math", "aime", "amc", "minerva", "olympiad", "deepscaler", "gsm8k")
CODE_PREFIXES = ("code", "livecodebench", "lcb", "codeforces", "taco", "apps")


class UnknownDataSource(ValueError):
    """No verifier is registered for this ``data_source``."""


def known_sources() -> dict[str, list[str]]:
    return {"math": [p + "*" for p in MATH_PREFIXES], "code": [p + "*" for p in CODE_PREFIXES]}


def resolve(data_source: Any) -> str:
    """``"math"`` or ``"code"`` for a data source name; ``UnknownDataSource`` otherwise."""
    name = str(data_source).strip().lower()
    for candidate in (name, name.rsplit("/", 1)[-1]):
        if candidate.startswith(MATH_PREFIXES):
            return "math"
        if candidate.startswith(CODE_PREFIXES):
            return "code"
    known = known_sources()
    raise UnknownDataSource(
        f"no reward verifier for data_source={data_source!r}. Known: math sources {known['math']}, "
        f"code sources {known['code']} (matched case-insensitively, also on the part after the last '/')."
    )


def score_one(kind: str, solution_str: str, ground_truth: Any, extra_info: Any, overrides: dict) -> dict:
    cfg = get_config()
    if kind == "math":
        from reward.math.verify import score_math

        timeout = float(overrides.get("math_timeout_s", cfg.math_timeout_s))
        return score_math(solution_str, ground_truth, _runtime.math_pool(), timeout, cfg.math_max_answer_chars,
                          cfg.math_fast_path)
    from reward.code.score import score_code

    sandbox = _runtime.sandbox()
    sandbox.warn_if_unsafe(every_s=30.0)
    timeout = float(overrides.get("code_timeout_s", cfg.code_timeout_s))
    return score_code(solution_str, ground_truth, extra_info, sandbox, timeout, cfg.code_max_total_s,
                      cfg.float_tolerance)


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> dict:
    """Score one response. verl calls this with keyword arguments (plus extras it adds, such as
    ``reward_router_address``, which are ignored); ``custom_reward_function.reward_kwargs`` may
    set ``math_timeout_s`` / ``code_timeout_s``.

    Returns ``{"score": 1.0|0.0, "acc": bool, "pred": str, "reason": str}``. Never raises for
    anything the response contains; raises ``UnknownDataSource`` for an unknown source and
    ``SandboxUnavailable`` if code must be run and the sandbox cannot start.
    """
    kind = resolve(data_source)
    return score_one(kind, solution_str, ground_truth, extra_info, kwargs)
