"""Process-wide singletons (the math pool, the sandbox), built lazily from the current config.

Lazy so that ``import reward`` is free (verl imports the module on every worker); locked so that
many threads calling ``compute_score`` at once build each only once.
"""

from __future__ import annotations

import atexit
import os
import threading

from reward.config import get_config

_lock = threading.Lock()
_math_pool = None
_sandbox = None
_sandbox_pid = None


def math_pool():
    global _math_pool
    with _lock:
        if _math_pool is None:
            from reward.math.pool import MathPool

            cfg = get_config()
            _math_pool = MathPool(cfg.resolved_math_workers(), cfg.math_worker_memory_bytes)
        return _math_pool


def sandbox():
    global _sandbox, _sandbox_pid
    with _lock:
        if _sandbox is not None and _sandbox_pid != os.getpid():
            # A forked child must not share the parent's slot uids: claim its own.
            _sandbox = None
        if _sandbox is None:
            from reward.code.sandbox import Limits, Sandbox

            cfg = get_config()
            limits = Limits(
                memory_bytes=cfg.code_memory_bytes, max_processes=cfg.code_max_processes,
                max_file_bytes=cfg.code_max_file_bytes, max_open_files=cfg.code_max_open_files,
                max_output_bytes=cfg.code_max_output_bytes, tmp_bytes=cfg.code_tmp_bytes,
            )
            _sandbox = Sandbox(cfg.resolved_code_slots(), limits, python=cfg.code_python,
                               uid_base=cfg.sandbox_uid_base, uid_span=cfg.sandbox_uid_range,
                               unsafe=cfg.sandbox_unsafe)
            _sandbox_pid = os.getpid()
        return _sandbox


def reset() -> None:
    """Shut the pools down; the next call builds them from the current config."""
    global _math_pool, _sandbox
    with _lock:
        pool, box = _math_pool, _sandbox
        _math_pool = _sandbox = None
    if pool is not None:
        pool.close()
    if box is not None and _sandbox_pid == os.getpid():
        box.close()


atexit.register(reset)
