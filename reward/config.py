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
    math_workers: int = 0  # per process; 0: this process's share of math_node_workers
    math_node_workers: int = 0  # math processes per node, all reward processes together; 0: min(cores, 32)
    math_max_answer_chars: int = 2000  # longer boxed answers score 0 (answer_too_long) without parsing
    math_worker_memory_bytes: int = 4 << 30  # RLIMIT_AS of each math worker
    math_fast_path: bool = True  # decide plain-number answers in the caller (reward/math/fastpath.py)
    # --- code ---
    code_timeout_s: float = 5.0  # wall-clock limit per test (per program run)
    code_max_total_s: float = 120.0  # wall-clock budget for all tests of one response
    code_slots: int = 0  # concurrent sandboxes per process; 0: this process's share of code_node_slots
    code_node_slots: int = 0  # concurrent sandboxes per node, all reward processes together; 0: cores
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
    # --- sharing a node ---
    processes_per_node: int = 1  # processes on this node that call reward (aspo sets verl's reward workers)
    # --- batch API ---
    batch_threads: int = 0  # threads driving a batch; 0: enough to keep every worker and slot busy

    @classmethod
    def from_env(cls) -> "RewardConfig":
        d = cls()
        return cls(
            math_timeout_s=_env("ASPO_REWARD_MATH_TIMEOUT", d.math_timeout_s, float),
            math_workers=_env("ASPO_REWARD_MATH_WORKERS", d.math_workers, int),
            math_node_workers=_env("ASPO_REWARD_MATH_NODE_WORKERS", d.math_node_workers, int),
            math_max_answer_chars=_env("ASPO_REWARD_MATH_MAX_ANSWER_CHARS", d.math_max_answer_chars, int),
            code_timeout_s=_env("ASPO_REWARD_CODE_TIMEOUT", d.code_timeout_s, float),
            code_slots=_env("ASPO_REWARD_CODE_SLOTS", d.code_slots, int),
            code_node_slots=_env("ASPO_REWARD_CODE_NODE_SLOTS", d.code_node_slots, int),
            code_memory_bytes=_env("ASPO_REWARD_CODE_MEMORY_BYTES", d.code_memory_bytes, int),
            code_python=_env("ASPO_REWARD_CODE_PYTHON", d.code_python, str),
            sandbox_uid_base=_env("ASPO_SANDBOX_UID_BASE", d.sandbox_uid_base, int),
            sandbox_unsafe=_env("ASPO_SANDBOX_UNSAFE", d.sandbox_unsafe, _flag),
            processes_per_node=_env(PROCESSES_PER_NODE_ENV, d.processes_per_node, int),
        )

    # Every process that calls reward has its own math pool and sandbox slots, and verl runs several
    # such processes per node (reward.num_workers reward-loop actors, round-robin over the nodes).
    # A per-process default of one per core multiplied by them: 8 workers x 192 cores = 1,536 idle
    # math-verify processes (~100 GB) on one node. So the defaults are per-node budgets, split evenly.

    def resolved_math_workers(self) -> int:
        """Math worker processes of this process's pool."""
        budget = self.math_node_workers or min(_cores(), 32)  # math-verify is mostly fast: 32 keep up
        return self.math_workers or _share(budget, self.processes_per_node, "math_node_workers")

    def resolved_code_slots(self) -> int:
        """Concurrent sandboxes of this process."""
        budget = self.code_node_slots or _cores()  # each slot runs one CPU-bound program
        return self.code_slots or _share(budget, self.processes_per_node, "code_node_slots")


# Set by aspo.train on the driver (before ray.init, also in Ray's runtime_env) from verl's
# reward.num_workers; any launcher can set it the same way.
PROCESSES_PER_NODE_ENV = "ASPO_REWARD_PROCESSES_PER_NODE"


def _cores() -> int:
    """CPUs this process may run on (a Slurm or container cpuset, not the whole host)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _share(budget: int, processes: int, name: str) -> int:
    """One process's part of a node budget: at least 1, so the node total is at most max(budget, processes)."""
    if budget < 0 or processes < 1:
        raise ValueError(
            f"reward settings: {name}={budget} must be >= 0 and processes_per_node={processes} >= 1 "
            f"(environment ASPO_REWARD_{name.upper()} / {PROCESSES_PER_NODE_ENV})"
        )
    return max(1, budget // processes)


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
