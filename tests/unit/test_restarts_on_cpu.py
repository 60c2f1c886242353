"""aspo.restarts: which failures are a lost Ray process (restarted) and which are not (raised)."""

from __future__ import annotations

import pytest
import ray.exceptions as rex

from aspo.preflight import PreflightError
from aspo.restarts import check_max_restarts, lost_process, run_with_restarts

OBJ = "ab" * 14  # an object ref id in hex


def _task_error(cause: BaseException, name: str = "AspoTaskRunner.run") -> BaseException:
    """What the driver's ray.get raises when the remote task raised ``cause``."""
    return rex.RayTaskError(name, f"Traceback (most recent call last):\n  ...\n{type(cause).__name__}", cause).as_instanceof_cause()


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer from err
    except BaseException as err:
        return err


def _raised_while_handling(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit __context__ is what is tested
    except BaseException as err:
        return err


LOST = {
    "actor died": rex.ActorDiedError(),
    "worker crashed": rex.WorkerCrashedError(),
    "node died": rex.NodeDiedError("node 10.0.0.2 died"),
    "owner died": rex.OwnerDiedError(OBJ, None, ""),
    "object lost": rex.ObjectLostError(OBJ, None, ""),
    "local raylet died": rex.LocalRayletDiedError(),
    "actor unavailable": rex.ActorUnavailableError("restarting", None),
    # verl's run_ppo: ray.get(TaskRunner.run) around the TaskRunner's ray.get(worker group call)
    "task error around actor died": _task_error(rex.ActorDiedError()),
    "task error around task error around actor died": _task_error(_task_error(rex.ActorDiedError(), "WorkerDict.update_actor")),
    "re-raised from": _raised_from(RuntimeError("update_actor failed"), _task_error(rex.ActorDiedError())),
    "raised while handling": _raised_while_handling(RuntimeError("teardown failed"), rex.NodeDiedError("gone")),
    "in an exception group": ExceptionGroup("rollouts", [ValueError("x"), rex.WorkerCrashedError()]),
}

NOT_LOST = {
    "python bug": ZeroDivisionError("division by zero"),
    "python bug in the trainer": _task_error(KeyError("actor/pg_loss")),
    "config error": PreflightError("data.train_batch_size=7 ..."),
    "out of memory": rex.OutOfMemoryError("Task was killed due to the node running low on memory."),
    "task error around out of memory": _task_error(rex.OutOfMemoryError("low memory")),
    "object freed (a bug)": rex.ObjectFreedError(OBJ, None, ""),
    "cancelled": rex.TaskCancelledError(),
    "timeout": rex.GetTimeoutError("timed out"),
    "ctrl-c": KeyboardInterrupt(),
    "exit": SystemExit(1),
}


@pytest.mark.parametrize("name", LOST)
def test_lost_processes_are_recognised_through_wrappers(name):
    reason = lost_process(LOST[name])
    assert reason is not None, name
    assert "\n" not in reason and len(reason) <= 300


@pytest.mark.parametrize("name", NOT_LOST)
def test_other_failures_are_not_a_lost_process(name):
    assert lost_process(NOT_LOST[name]) is None


def test_reason_names_ray_error_and_the_actor():
    # Ray's ActorDiedError text, as raised when a worker process is SIGKILLed (ray 2.60)
    text = (
        "The actor died unexpectedly before finishing this task.\n\tclass_name: create_colocated_worker_cls.<locals>.WorkerDict\n\tactor_id: 1f2e\n"
        "\tpid: 4242\n\tname: abcWorkerDict_0:0\n\tnamespace: 7d\n\tip: 10.0.0.7\n"
        "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR"
    )

    class _Died(rex.ActorDiedError):
        def __str__(self):
            return text

    reason = lost_process(_task_error(_Died()))
    assert reason == (
        "ActorDiedError: The actor died unexpectedly before finishing this task. "
        "(class_name: WorkerDict, pid: 4242, ip: 10.0.0.7)"
    )


class _Attempts:
    def __init__(self, *outcomes: BaseException | None):
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome


def _run(attempt, max_restarts, **kw):
    lines, shutdowns = [], []
    result = run_with_restarts(
        attempt, max_restarts, log=lines.append, before_restart=lambda: shutdowns.append(1),
        resume_point=lambda: "/ckpt/global_step_3", **kw,
    )
    return result, lines, shutdowns


def test_lost_process_is_restarted_with_one_line_per_restart():
    attempt = _Attempts(_task_error(rex.ActorDiedError()), rex.NodeDiedError("node died"), None)
    restarts, lines, shutdowns = _run(attempt, 3)
    assert (restarts, attempt.calls, len(shutdowns)) == (2, 3, 2)
    assert lines == [
        "[aspo] restart 1/3: ActorDiedError: The actor died unexpectedly before finishing this task.; "
        "resuming from /ckpt/global_step_3",
        "[aspo] restart 2/3: NodeDiedError: node died; resuming from /ckpt/global_step_3",
    ]


def test_other_failures_are_raised_at_once():
    attempt = _Attempts(_task_error(KeyError("bug")), None)
    with pytest.raises(KeyError):
        _run(attempt, 3)
    assert attempt.calls == 1


def test_restarts_stop_at_max_restarts():
    attempt = _Attempts(*[rex.WorkerCrashedError()] * 3)
    lines = []
    with pytest.raises(rex.WorkerCrashedError):
        run_with_restarts(attempt, 2, log=lines.append, before_restart=lambda: None)
    assert attempt.calls == 3
    assert lines[-1].startswith("[aspo] lost a Ray process again (WorkerCrashedError") and "max_restarts=2" in lines[-1]


def test_default_is_no_restart():
    attempt = _Attempts(rex.ActorDiedError(), None)
    with pytest.raises(rex.ActorDiedError):
        run_with_restarts(attempt, 0, log=lambda line: None, before_restart=lambda: None)
    assert attempt.calls == 1


def test_no_restart_after_a_stop_request():
    attempt = _Attempts(rex.ActorDiedError(), None)
    with pytest.raises(rex.ActorDiedError):
        _run(attempt, 3, stop_requested=lambda: True)
    assert attempt.calls == 1


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_max_restarts_must_be_a_whole_number(value):
    with pytest.raises(PreflightError, match=r"aspo.max_restarts=.*whole number >= 0"):
        check_max_restarts(value)


def test_restarts_are_off_by_default_and_on_in_the_paper_recipes():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    root = Path(__file__).resolve().parents[2]
    for config_dir, name, expected in ((root / "aspo" / "configs", "aspo", 0), (root / "recipes", "aspo_math_1p5b", 3)):
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            cfg = compose(config_name=name, overrides=["hardware=cuda"])
        assert check_max_restarts(cfg.aspo.max_restarts) == expected, name


def test_failure_after_a_node_died_mid_rollout_is_restarted():
    # A node lost mid-rollout: verl's replay buffer fails with its own error before Ray names the loss.
    bug_like = RuntimeError("Sync replay buffer selected terminal groups with no materializable trajectories.")
    asked = []

    def lost_nodes(start, wait):
        asked.append((start, wait))
        return ["10.0.0.7 (abcd1234)"]

    attempt = _Attempts(_task_error(bug_like), None)
    restarts, lines, shutdowns = _run(attempt, 1, lost_nodes=lost_nodes)
    assert (restarts, attempt.calls, len(shutdowns)) == (1, 2, 1)
    assert asked and asked[0][1] == 45.0
    assert lines[-1].startswith("[aspo] restart 1/1: Ray node(s) died during the run: 10.0.0.7 (abcd1234); then ")
    assert "no materializable trajectories" in lines[-1]


def test_failure_without_a_dead_node_is_raised_and_restarts_off_do_not_wait():
    calls = []
    attempt = _Attempts(_task_error(KeyError("bug")), None)
    with pytest.raises(KeyError):
        _run(attempt, 2, lost_nodes=lambda start, wait: calls.append(wait) or [])
    assert calls == [45.0] and attempt.calls == 1
    attempt = _Attempts(_task_error(KeyError("bug")), None)
    with pytest.raises(KeyError):
        _run(attempt, 0, lost_nodes=lambda start, wait: pytest.fail("restarts are off: nothing to wait for"))


def test_nodes_lost_since_without_ray_is_empty():
    from aspo.restarts import nodes_lost_since

    assert nodes_lost_since(0.0, wait_s=0.0) == []


def test_watchdog_interrupts_a_run_that_hangs_on_a_dead_node():
    # verl can wait forever for trajectories a dead node will never write: the watchdog breaks the wait.
    import time

    from aspo import restarts as r

    polls = []

    def lost_nodes(start, wait):
        polls.append(wait)
        return ["10.0.0.7 (abcd1234)"] if len(polls) >= 2 else []

    state = {"calls": 0}

    def attempt():
        state["calls"] += 1
        if state["calls"] == 1:
            time.sleep(30)  # a hang; the watchdog's KeyboardInterrupt ends it
            pytest.fail("the watchdog did not interrupt the hang")

    old = r.WATCHDOG_POLL_S
    r.WATCHDOG_POLL_S = 0.05
    try:
        t0 = time.time()
        lines = []
        n = run_with_restarts(attempt, 1, log=lines.append, before_restart=lambda: None, lost_nodes=lost_nodes)
    finally:
        r.WATCHDOG_POLL_S = old
    assert n == 1 and state["calls"] == 2 and time.time() - t0 < 10
    assert lines == ["[aspo] restart 1/1: Ray node(s) died during the run: 10.0.0.7 (abcd1234) "
                     "(the run was still waiting on them); resuming from the last checkpoint"]


def test_watchdog_interrupts_even_when_sigint_is_ignored():
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        test_watchdog_interrupts_a_run_that_hangs_on_a_dead_node()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # restored after the watch
    finally:
        signal.signal(signal.SIGINT, previous)
