"""A process pool for math-verify with a hard timeout the parent enforces.

math-verify guards itself with ``signal.alarm``, which raises off the main thread (Ray workers,
thread pools, verl's reward loop executor) and can clobber an alarm the caller set. So it runs in
worker processes (pebble ``ProcessPool``): the parent starts a clock when a worker picks a task and
kills and replaces that worker when the clock runs out. Nothing here uses signals in the calling
process, so it works from any thread.

Workers are started with ``spawn``: forking a multi-threaded trainer (Ray, torch) can deadlock the
child. Spawn re-imports the caller's ``__main__`` as ``__mp_main__``; a script that calls the
reward directly needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from concurrent.futures import Future

from pebble import ProcessPool


def _init_worker(memory_bytes: int) -> None:
    """Per-worker set-up: cap memory (a sympy blow-up must not take the host down), import
    math-verify once, and ignore SIGINT so Ctrl-C in the trainer is handled by the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_bytes > 0:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        except (ValueError, OSError):
            pass
    from reward.math._worker import warm_up

    warm_up()


class MathPool:
    """Owns the pebble pool; thread-safe; re-created after ``fork`` or if pebble gave up."""

    def __init__(self, workers: int, memory_bytes: int) -> None:
        self.workers = workers
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._pid = os.getpid()

    def _get(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid() or not self._pool.active:
                # After a fork the pool's manager threads do not exist in the child: start afresh.
                self._pid = os.getpid()
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    max_tasks=0,
                    initializer=_init_worker,
                    initargs=(self.memory_bytes,),
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def submit(self, answer: str, ground_truth: str, timeout_s: float) -> Future:
        """Schedule one comparison; the future raises ``TimeoutError`` after ``timeout_s`` of work."""
        from reward.math._worker import verify_answer

        inner = max(1, int(timeout_s * 0.6))  # math-verify's own alarms: cheaper than a kill
        return self._get().schedule(verify_answer, args=(answer, ground_truth, inner), timeout=timeout_s)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.stop()
            pool.join(timeout=10)
