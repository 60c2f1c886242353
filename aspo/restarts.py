"""Restart a run from its last checkpoint when a Ray worker, actor or node died (``aspo.max_restarts``).

A lost process (a preempted or crashed node, a worker killed by the OS) ends verl's ``run_ppo`` with
one of Ray's "something died" errors, often wrapped: the TaskRunner actor calls the worker groups,
so the driver sees ``RayTaskError`` around ``ActorDiedError``, and verl code may re-raise with
``raise ... from err``. ``lost_process`` follows those causes. Anything else (a config error, a bug
in the trainer, out of memory) fails the same way on every attempt and is not retried.

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
) -> int:
    """Call ``attempt`` until it returns; after a lost process, again, up to ``max_restarts`` times.

    Returns how many restarts it took. One line per restart says why. A stop request (preemption)
    is never answered by a restart.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    restarts = 0
    while True:
        try:
            attempt()
            return restarts
        except BaseException as err:
            reason = lost_process(err)
            if reason is None or stop_requested():
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
