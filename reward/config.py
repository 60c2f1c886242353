"""Settings of the verifiers, with defaults overridable from the environment or ``configure()``.

One frozen dataclass so a trainer can log exactly what scored its rollouts. Environment variables
make the settings reach Ray workers (which import ``reward`` fresh) without code changes; verl's
``custom_reward_function.reward_kwargs`` reach ``compute_score`` as keyword arguments and override
the per-call timeouts (see ``reward.dispatch``).
"""

from __future__ import annotations

import dataclasses
import os
import threading


def _env(name: str, default, cast):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as e:
        raise ValueError(f"environment variable {name}={raw!r} is not a valid {cast.__name__}: {e}") from None


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0/true/false/yes/no/on/off")


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    # --- math ---
    math_timeout_s: float = 5.0  # hard wall-clock limit per response, enforced by killing the worker
    math_workers: int = 0  # 0: one per CPU core
    math_max_answer_chars: int = 2000  # longer boxed answers score 0 (answer_too_long) without parsing
    math_worker_memory_bytes: int = 4 << 30  # RLIMIT_AS of each math worker
    math_fast_path: bool = True  # decide plain-number answers in the caller (reward/math/fastpath.py)
    # --- code ---
    code_timeout_s: float = 5.0  # wall-clock limit per test (per program run)
    code_max_total_s: float = 120.0  # wall-clock budget for all tests of one response
    code_slots: int = 0  # concurrent sandboxes; 0: one per CPU core
    code_memory_bytes: int = 1 << 30  # RLIMIT_AS of the program
    code_max_processes: int = 32  # RLIMIT_NPROC of the program's uid (processes + threads)
    code_max_file_bytes: int = 16 << 20  # RLIMIT_FSIZE
    code_max_open_files: int = 64  # RLIMIT_NOFILE
    code_max_output_bytes: int = 16 << 20  # stdout cap per run; over it the run fails (output_limit)
    code_tmp_bytes: int = 64 << 20  # size of the sandbox's private /tmp (tmpfs)
    code_python: str = "/usr/bin/python3"  # interpreter inside the sandbox (see docs/reward.md)
    sandbox_uid_base: int = 61000  # slot uids are taken from [base, base + range)
    sandbox_uid_range: int = 1000
    sandbox_unsafe: bool = False  # rlimits only, no namespaces: NOT safe, warns on every batch
    float_tolerance: float = 1e-6  # abs and rel tolerance when both outputs parse as floats
    # --- batch API ---
    batch_threads: int = 0  # threads driving a batch; 0: enough to keep every worker and slot busy

    @classmethod
    def from_env(cls) -> "RewardConfig":
        d = cls()
        return cls(
            math_timeout_s=_env("ASPO_REWARD_MATH_TIMEOUT", d.math_timeout_s, float),
            math_workers=_env("ASPO_REWARD_MATH_WORKERS", d.math_workers, int),
            math_max_answer_chars=_env("ASPO_REWARD_MATH_MAX_ANSWER_CHARS", d.math_max_answer_chars, int),
            code_timeout_s=_env("ASPO_REWARD_CODE_TIMEOUT", d.code_timeout_s, float),
            code_slots=_env("ASPO_REWARD_CODE_SLOTS", d.code_slots, int),
            code_memory_bytes=_env("ASPO_REWARD_CODE_MEMORY_BYTES", d.code_memory_bytes, int),
            code_python=_env("ASPO_REWARD_CODE_PYTHON", d.code_python, str),
            sandbox_uid_base=_env("ASPO_SANDBOX_UID_BASE", d.sandbox_uid_base, int),
            sandbox_unsafe=_env("ASPO_SANDBOX_UNSAFE", d.sandbox_unsafe, _flag),
        )

    def resolved_math_workers(self) -> int:
        return self.math_workers or max(1, os.cpu_count() or 1)

    def resolved_code_slots(self) -> int:
        return self.code_slots or max(1, os.cpu_count() or 1)


_lock = threading.Lock()
_config: RewardConfig | None = None


def get_config() -> RewardConfig:
    global _config
    with _lock:
        if _config is None:
            _config = RewardConfig.from_env()
        return _config


def configure(**overrides) -> RewardConfig:
    """Replace settings (e.g. ``configure(math_timeout_s=3)``). Pools built with the old settings
    are shut down so the next call uses the new ones."""
    global _config
    base = get_config()
    unknown = set(overrides) - {f.name for f in dataclasses.fields(RewardConfig)}
    if unknown:
        raise TypeError(f"unknown reward setting(s) {sorted(unknown)}; known: {[f.name for f in dataclasses.fields(RewardConfig)]}")
    new = dataclasses.replace(base, **overrides)
    with _lock:
        _config = new
    from reward import _runtime

    _runtime.reset()
    return new
