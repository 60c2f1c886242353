"""Restart a run from its last checkpoint when a Ray worker, actor or node died (``aspo.max_restarts``).

A lost process (a preempted or crashed node, a worker killed by the OS) ends verl's ``run_ppo`` with
one of Ray's "something died" errors, often wrapped: the TaskRunner actor calls the worker groups,
so the driver sees ``RayTaskError`` around ``ActorDiedError``, and verl code may re-raise with
``raise ... from err``. ``lost_process`` follows those causes. A node lost mid-rollout can also end
the run with verl's own error (the requests it served failed): then Ray's node table decides
(``nodes_lost_since``). Anything else (a config error, a bug in the trainer, out of memory) fails
the same way on every attempt and is not retried.

Each restart shuts the driver's Ray down (``ray.shutdown()``: a local cluster is stopped, an
attached one is left and reattached by the next ``ray.init``) and calls ``run_ppo`` again, which
resumes from the latest complete checkpoint (``trainer.resume_mode=auto``); the trainer truncates
the metrics JSONL after that step and continues the W&B run (``aspo.runner.AspoTrainer.fit``), so
no step is logged twice.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterator, Optional

# Ray's errors that mean "a process or its objects are gone", not "the code failed".
_LOST_NAMES = (
    "RayActorError",  # ActorDiedError, ActorUnavailableError
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",  # OwnerDiedError, ObjectReconstructionFailedError, ObjectFetchTimedOutError
)
# Subclasses of the above that mean a bug or a resource limit: retrying repeats them.
_NOT_LOST_NAMES = (
    "ObjectFreedError",  # the program freed an object it still used
    "ReferenceCountingAssertionError",
)


def _ray_types(names: tuple[str, ...]) -> tuple[type, ...]:
    import ray.exceptions

    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


def causes(err: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """``err`` and what it wraps: ``RayTaskError.cause``, ``__cause__``, ``__context__``, exception groups."""
    seen: set[int] = set()
    queue: list[Optional[BaseException]] = [err]
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "cause", None)  # RayTaskError: the exception raised in the task
        queue.extend([wrapped if isinstance(wrapped, BaseException) else None, current.__cause__, current.__context__])
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)


def lost_process(err: BaseException) -> Optional[str]:
    """A one-line reason if ``err`` means a Ray worker, actor or node died; ``None`` otherwise."""
    if isinstance(err, (KeyboardInterrupt, SystemExit)):
        return None
    lost, not_lost = _ray_types(_LOST_NAMES), _ray_types(_NOT_LOST_NAMES)
    found = [c for c in causes(err) if isinstance(c, lost) and not isinstance(c, not_lost)]
    if not found:
        return None
    # The innermost one is Ray's own error object, whose message is about the process, not the task.
    return f"{_ray_name(found[-1])}: {_summary(found[-1])}"


def _ray_name(err: BaseException) -> str:
    """The Ray error's own class name (``RayTaskError(ActorDiedError)`` instances report the cause's)."""
    lost = _ray_types(_LOST_NAMES)
    for cls in type(err).__mro__:
        if cls.__module__ == "ray.exceptions" and issubclass(cls, lost):
            return cls.__name__
    return type(err).__name__


_DETAILS = ("class_name", "pid", "ip")  # of the "\tkey: value" lines in Ray's ActorDiedError text


def _summary(err: BaseException, width: int = 240) -> str:
    """One line: the message's first line plus which actor/process it was, when Ray says."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    head = lines[0] if lines else type(err).__name__
    details = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key in _DETAILS:
            # verl's colocated class is "create_colocated_worker_cls.<locals>.WorkerDict"
            details.append(f"{key}: {value.strip().rsplit('.', 1)[-1] if key == 'class_name' else value.strip()}")
    text = head + (f" ({', '.join(details)})" if details else "")
    return text if len(text) <= width else text[: width - 3] + "..."


def nodes_lost_since(start_s: float, wait_s: float = 0.0, poll_s: float = 3.0) -> list[str]:
    """Ray nodes that died at or after ``start_s`` (epoch seconds), waiting up to ``wait_s`` for Ray to notice.

    A node lost in the middle of a rollout does not always surface as one of Ray's "died" errors:
    the requests it was serving fail, and verl's replay buffer then stops with its own RuntimeError
    ("no materializable trajectories"), often before Ray's health checks (a few seconds apart) mark
    the node dead. So after a failure that names no lost process, the node table decides. Only nodes
    whose end time falls in this attempt count, so an old dead node of a long-lived cluster does not
    turn every later bug into a restart.
    """
    import time

    import ray

    if not ray.is_initialized():
        return []
    deadline = time.time() + wait_s
    while True:
        try:
            from ray.util.state import list_nodes

            dead = list_nodes(filters=[("state", "=", "DEAD")], detail=True, raise_on_missing_output=False)
            lost = [f"{n.node_ip} ({n.node_id[:8]})" for n in dead if (n.end_time_ms or 0) >= start_s * 1000]
        except Exception:  # no state API (dashboard off): any dead node counts
            lost = [f"{n.get('NodeManagerAddress')} ({str(n.get('NodeID'))[:8]})" for n in ray.nodes() if not n.get("Alive")]
        if lost or time.time() >= deadline:
            return lost
        time.sleep(poll_s)


# How long a failure that names no lost process waits for Ray to report a dead node (restarts on only).
NODE_DEATH_WAIT_S = 45.0
# How often the watchdog looks at Ray's node table while a run with restarts on is going.
WATCHDOG_POLL_S = 5.0


class NodeWatchdog:
    """Interrupts the driver when a Ray node dies during the attempt (restarts on only).

    A node lost mid-rollout can leave verl's trainer waiting forever for trajectories that the dead
    node's agent loop will never write: no error reaches the driver. The watchdog polls the node
    table from a thread and, on a death, interrupts the main thread (a KeyboardInterrupt is the one
    exception that breaks a blocked ``ray.get``; sent as a real SIGINT); ``run_with_restarts`` then
    restarts the run.
    """

    def __init__(self, started: float, lost_nodes: Callable[[float, float], list[str]], poll_s: Optional[float] = None):
        import threading

        self.started, self.lost_nodes, self.poll_s = started, lost_nodes, poll_s or WATCHDOG_POLL_S
        self.lost: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="aspo-node-watchdog", daemon=True)

    def __enter__(self) -> "NodeWatchdog":
        import signal
        import threading

        # Our own SIGINT handler while watching: the process's may be SIG_IGN or a library's.
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._thread.start()
        return self

    def _on_sigint(self, signum, frame):
        if self.lost:
            raise KeyboardInterrupt(f"Ray node(s) died during the run: {', '.join(self.lost)}")
        previous = self._previous
        if callable(previous):
            return previous(signum, frame)
        import signal

        if previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        import signal

        self._stop.set()
        self._thread.join(timeout=self.poll_s + 5)
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _watch(self) -> None:
        import os
        import signal

        while not self._stop.wait(self.poll_s):
            try:
                lost = self.lost_nodes(self.started, 0.0)
            except Exception:
                continue
            if lost and not self._stop.is_set():
                self.lost = lost
                # A real SIGINT (Python's handler raises KeyboardInterrupt in the main thread): unlike
                # _thread.interrupt_main() it also wakes a main thread blocked in a system call.
                os.kill(os.getpid(), signal.SIGINT)
                return


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def run_with_restarts(
    attempt: Callable[[], None],
    max_restarts: int,
    *,
    resume_point: Callable[[], str] = lambda: "the last checkpoint",
    stop_requested: Callable[[], bool] = lambda: False,
    before_restart: Callable[[], None] = shutdown_ray,
    log: Callable[[str], None] | None = None,
    lost_nodes: Callable[[float, float], list[str]] = nodes_lost_since,
) -> int:
    """Call ``attempt`` until it returns; after a lost process, again, up to ``max_restarts`` times.

    Returns how many restarts it took. One line per restart says why. A stop request (preemption)
    is never answered by a restart.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    import time

    restarts = 0
    while True:
        started = time.time()
        watchdog = NodeWatchdog(started, lost_nodes) if restarts < max_restarts else None
        try:
            if watchdog is None:
                attempt()
            else:
                with watchdog:
                    attempt()
            return restarts
        except BaseException as err:
            if stop_requested():
                raise
            reason = lost_process(err)
            if reason is None and watchdog is not None and watchdog.lost:
                reason = f"Ray node(s) died during the run: {', '.join(watchdog.lost)} (the run was still waiting on them)"
            if reason is None and restarts < max_restarts and not isinstance(err, (KeyboardInterrupt, SystemExit)):
                log(f"[aspo] the run failed ({type(err).__name__}); checking whether a Ray node died "
                    f"(up to {NODE_DEATH_WAIT_S:.0f} s) before giving up")
                nodes = lost_nodes(started, NODE_DEATH_WAIT_S)
                if nodes:
                    import ray.exceptions

                    inner = next((c for c in causes(err) if not isinstance(c, ray.exceptions.RayError)), err)
                    first = (str(inner).strip().splitlines() or [""])[0][:160]
                    reason = f"Ray node(s) died during the run: {', '.join(nodes)}; then {type(inner).__name__}: {first}"
            if reason is None:
                raise
            if restarts >= max_restarts:
                if max_restarts > 0:
                    log(f"[aspo] lost a Ray process again ({reason}); no restarts left (aspo.max_restarts={max_restarts})")
                raise
            restarts += 1
            log(f"[aspo] restart {restarts}/{max_restarts}: {reason}; resuming from {resume_point()}")
            before_restart()


def check_max_restarts(value) -> int:
    """``aspo.max_restarts`` as an int >= 0, or a one-line ``PreflightError``."""
    from aspo.preflight import PreflightError

    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PreflightError(f"aspo.max_restarts={value!r}: give a whole number >= 0 (0 turns restarts off)")
    return value
