"""Preemption: on SIGTERM or SIGUSR1, stop after the current step with a checkpoint, exit 75.

SLURM signals a job before its time limit (``--signal=B:USR1@<s>``, see scripts/slurm/aspo.sbatch),
schedulers and users send SIGTERM. The driver (``aspo-train``) catches the signal; the training
loop runs elsewhere (in verl's TaskRunner Ray actor, maybe on another node), so the driver tells it
through a **stop-request file** next to the checkpoints (``aspo.stop_file``). A file, rather than
Ray's internal KV or a named actor, because:

- a run that resumes needs a filesystem both sides see anyway (the driver reads the checkpoint
  tracker the trainer writes), so the file reaches the trainer wherever checkpoints do;
- the signal handler makes no Ray call: it interrupts the driver inside ``ray.get``, where calling
  back into Ray's core worker is not safe;
- anyone can stop a run gracefully without a signal (``touch <checkpoint dir>/aspo_stop_request``,
  e.g. under ``ray job submit``).

The trainer (``PreemptibleTrainer``, mixed into ``aspo.runner.AspoTrainer``) looks for the file once
per step, at the start of the next one, when the previous step is complete and logged. If it is
there, it saves a checkpoint of that step (unless it is already the latest), writes an
acknowledgement (``<stop_file>.ack``) and returns from ``fit``; the driver then exits with
``EXIT_PREEMPTED``. If no safe point comes within ``aspo.preempt_grace_s`` the driver exits anyway
(losing the steps since the last checkpoint); a second signal exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

# EX_TEMPFAIL (sysexits.h): "a temporary failure; the user is invited to retry". Distinct from a
# crash (1), a config error (2) and a death by signal (128 + n); aspo.sbatch requeues the job on it.
EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
STOP_FILE = "aspo_stop_request"
# After the grace period, or a second signal, the driver unwinds (Ray shuts its local processes down
# on the way out); if that itself hangs, it leaves with os._exit after this many more seconds.
HARD_EXIT_AFTER_S = 30.0


class Preempted(Exception):
    """The run stopped on request; rerunning the same command resumes it. Exit ``EXIT_PREEMPTED``."""


class _GiveUp(KeyboardInterrupt):
    """Raised by the signal handler to leave ``run_ppo`` now. A KeyboardInterrupt because that is
    the one exception ``ray.get`` lets a signal handler interrupt it with (it re-raises a plain
    KeyboardInterrupt; anything else surfaces only when the task ends, as a SystemError);
    ``PreemptionGuard.__exit__`` turns it into ``Preempted``."""


def stop_file_path(cfg: Any) -> Path:
    """``aspo.stop_file``, or ``<trainer.default_local_dir>/aspo_stop_request``, made absolute."""
    explicit = cfg.get("aspo", {}).get("stop_file")
    path = explicit or os.path.join(str(cfg.trainer.default_local_dir), STOP_FILE)
    return Path(os.path.expanduser(str(path))).resolve()


class StopRequest:
    """The stop-request file and its acknowledgement; both sides of the protocol."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.ack_path = self.path.with_name(self.path.name + ".ack")

    # driver side
    def clear(self) -> None:
        """Forget a request of an earlier run (a preempted run leaves its files behind)."""
        for path in (self.path, self.ack_path):
            path.unlink(missing_ok=True)

    def request(self, reason: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"reason": reason, "time": time.time()}) + "\n")

    def acknowledgement(self) -> Optional[dict]:
        try:
            return json.loads(self.ack_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # trainer side
    def requested(self) -> bool:
        return self.path.exists()

    def acknowledge(self, step: int, checkpoint: Optional[str]) -> None:
        from aspo.checkpoint import atomic_write_text

        atomic_write_text(self.ack_path, json.dumps({"step": int(step), "checkpoint": checkpoint}) + "\n")


# ---- the trainer: stop at a safe point ------------------------------------------------------------


class _StopAtSafePoint(Exception):
    """Raised from ``on_step_begin`` to leave verl's training loop; caught in ``fit``."""


class PreemptibleTrainer:
    """Mixin for verl's ``PPOTrainer`` (v1): honour a stop request between two steps.

    verl's ``fit`` loop calls ``on_step_begin`` first thing in each step; when it does, the previous
    step (``global_steps - 1``) has been trained, saved if due, validated if due and logged, and
    nothing of the new one has started (in sync mode its prompts are fetched inside ``step``). That
    is the safe point: a checkpoint taken there is the one a save at the end of the previous step
    would have written. Checked in ``tests/unit/test_preemption_on_cpu.py`` against verl's source.
    """

    _stop_request: Optional[StopRequest] = None

    def fit(self, agent_loop_manager):
        stop_file = self.config.get("aspo", {}).get("stop_file")
        self._stop_request = StopRequest(stop_file) if stop_file else None
        try:
            return super().fit(agent_loop_manager)
        except _StopAtSafePoint:
            self._shutdown_dump_executor()  # what verl's fit does on its way out
            return None

    def on_step_begin(self):
        if self._stop_request is not None and self._stop_request.requested():
            self._stop_at_safe_point()
        super().on_step_begin()

    def _stop_at_safe_point(self):
        from aspo import checkpoint

        done = self.global_steps - 1  # fit() has already counted the step about to begin
        root = os.path.abspath(os.path.expanduser(self.config.trainer.default_local_dir))
        saved = None
        if done > 0:
            if checkpoint.read_tracker(root) != done:
                # verl's _save_checkpoint names the folder after global_steps.
                self.global_steps = done
                try:
                    self._save_checkpoint()
                finally:
                    self.global_steps = done + 1
            latest = checkpoint.latest_checkpoint(root)
            saved = str(latest) if latest is not None else None
        print(f"[aspo] stop requested: stopping after step {done} (checkpoint: {saved or 'none'})", flush=True)
        self._stop_request.acknowledge(done, saved)
        raise _StopAtSafePoint


# ---- the driver: signals ----------------------------------------------------------------------------


class PreemptionGuard:
    """Driver-side signal handling around ``run_ppo`` (and its restarts).

    First SIGTERM/SIGUSR1: write the stop request, start the grace-period clock. Second signal, or
    the grace period over: interrupt the main thread (out of ``ray.get``), leave the ``with`` block
    with ``Preempted``, so the driver unwinds and exits ``EXIT_PREEMPTED``; if unwinding hangs,
    ``os._exit`` after ``HARD_EXIT_AFTER_S``.
    """

    def __init__(
        self,
        stop: StopRequest,
        grace_s: float,
        *,
        log: Callable[[str], None] | None = None,
        hard_exit: Callable[[int], None] = os._exit,
        hard_exit_after_s: float = HARD_EXIT_AFTER_S,
    ):
        self.stop = stop
        self.grace_s = float(grace_s)
        self.signal_name: Optional[str] = None
        self.forced: Optional[str] = None  # why the driver gave up waiting for the trainer
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._hard_exit = hard_exit
        self._hard_exit_after_s = hard_exit_after_s
        self._previous: dict[int, Any] = {}
        self._cancel = threading.Event()

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    # -- installation ----------------------------------------------------------------------------
    def install(self) -> None:
        """Take SIGTERM and SIGUSR1 (main thread only). Idempotent; re-take them after ``ray.init``."""
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current != self._on_signal:  # bound methods compare equal, never identical
                self._previous.setdefault(signum, current)
                signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        self._cancel.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def wrap(self, task_runner_class):
        """``task_runner_class`` for verl's ``run_ppo``, taking the signals back when it is used.

        ``ray.init`` (inside ``run_ppo``) installs Ray's own SIGTERM handler (``sys.exit``);
        ``run_ppo`` creates the TaskRunner right after it, from the main thread, so that is where
        ours goes back on. A SIGTERM during ``ray.init`` itself (a few seconds) still meets Ray's
        handler; SIGUSR1, which SLURM's warning uses, is never taken by Ray.
        """
        return _InstallOnUse(task_runner_class, self.install)

    def __enter__(self) -> "PreemptionGuard":
        self.stop.clear()
        self.install()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.uninstall()
        if not self.requested:
            return
        # On the way out with EXIT_PREEMPTED: a later signal (a scheduler signalling every process
        # at the time limit) must not turn that into a death by signal, which would not be requeued.
        for signum in SIGNALS:
            signal.signal(signum, _exit_preempted_now)
        if exc_type is None:
            return
        if issubclass(exc_type, KeyboardInterrupt) and self.forced:
            raise Preempted(f"{self.forced}: exited without waiting for the current step") from None
        from aspo.restarts import lost_process

        lost = lost_process(exc)
        if lost is not None:  # the signal reached the Ray workers too, and they died first
            raise Preempted(f"{self.signal_name}: Ray processes ended before a safe point ({lost})") from None

    # -- the handler --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is None:
            self.signal_name = name
            self.stop.request(name)
            self._log(
                f"[aspo] {name}: stopping after the current step with a checkpoint, then exit {EXIT_PREEMPTED}; "
                f"giving up after aspo.preempt_grace_s={self.grace_s:g} s; signal again to exit now"
            )
            threading.Thread(target=self._watchdog, args=(signum,), name="aspo-preempt-grace", daemon=True).start()
            return
        if self.forced is None:
            self.forced = f"second signal ({name})"
            self._log(f"[aspo] {self.forced}: exiting now")
        self._start_hard_exit_timer()
        raise _GiveUp(self.forced)

    def _watchdog(self, signum: int) -> None:
        if self._cancel.wait(self.grace_s):
            return
        if self.forced is None:
            self.forced = f"no safe point within aspo.preempt_grace_s={self.grace_s:g} s"
            self._log(f"[aspo] {self.forced}: exiting without a checkpoint of the current step")
        # Deliver the "second signal" to the main thread, which may be blocked in ray.get: Ray checks
        # for pending signals while it waits, so the handler runs there and raises Preempted.
        os.kill(os.getpid(), signum)

    def _start_hard_exit_timer(self) -> None:
        def hard_exit():
            self._log(f"[aspo] still here {self._hard_exit_after_s:g} s after giving up: exiting now")
            self._hard_exit(EXIT_PREEMPTED)

        timer = threading.Timer(self._hard_exit_after_s, hard_exit)
        timer.daemon = True
        timer.start()

    # -- after run_ppo returned -----------------------------------------------------------------------
    def raise_if_stopped(self) -> None:
        """``run_ppo`` returned: raise ``Preempted`` if the trainer stopped early on a request."""
        ack = self.stop.acknowledgement()
        if ack is None:
            return
        where = ack.get("checkpoint") or "no checkpoint"
        by = self.signal_name or f"stop file {self.stop.path}"
        raise Preempted(f"stopped on {by} after step {ack['step']} ({where}); rerun the same command to resume")


def _exit_preempted_now(signum, frame) -> None:
    os._exit(EXIT_PREEMPTED)


class _InstallOnUse:
    """A Ray actor class whose ``remote``/``options`` first (re)install the preemption handlers."""

    def __init__(self, actor_class, install: Callable[[], None]):
        self._actor_class = actor_class
        self._install = install

    def remote(self, *args, **kwargs):
        self._install()
        return self._actor_class.remote(*args, **kwargs)

    def options(self, *args, **kwargs):
        self._install()
        return self._actor_class.options(*args, **kwargs)


def guard_for(cfg: Any) -> PreemptionGuard:
    """The guard for a run; also writes the absolute stop-file path into ``cfg.aspo.stop_file``."""
    from omegaconf import open_dict

    path = stop_file_path(cfg)
    with open_dict(cfg):
        cfg.aspo.stop_file = str(path)
    return PreemptionGuard(StopRequest(path), check_grace(cfg.aspo.get("preempt_grace_s", 600)))


def check_grace(value) -> float:
    """``aspo.preempt_grace_s`` as seconds > 0, or a one-line ``PreflightError``."""
    from aspo.preflight import PreflightError

    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0:
        raise PreflightError(
            f"aspo.preempt_grace_s={value!r}: give the seconds a preempted run may take to finish its step "
            "and save (> 0), e.g. aspo.preempt_grace_s=600"
        )
    return seconds
