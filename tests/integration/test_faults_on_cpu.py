"""Cluster faults on a real run (quickstart_tiny, Ray, verl's main_ppo, real signals and kills).

- ``preempted`` / ``after_preemption``: SIGTERM to ``aspo-train`` once step 1 is logged; it stops
  after the step in progress with a checkpoint and exits 75; the same command then resumes it.
- ``restarted``: with ``aspo.max_restarts=1``, SIGKILL of the actor worker process (verl's
  ``WorkerDict``, found among the driver's descendants) once step 1 is logged; the driver restarts
  from the last checkpoint and finishes.

Three runs of ~1 min each (the restart costs a second Ray start-up). Timings are printed as
``[figure] ...`` lines (``pytest -s``); the README's "Reliability" section quotes them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXIT_PREEMPTED = 75
GRACE_S = 120


def _command(run_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, "-m", "aspo.train", "--config-name", "quickstart_tiny",
        f"trainer.default_local_dir={run_dir}",
        "data.train_max_samples=16", "trainer.test_freq=-1",
        *overrides,
    ]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_FILE_LOGGER", "WANDB_"))}
    env.update({"WANDB_MODE": "offline", "ASPO_CPU_THREADS": env.get("ASPO_CPU_THREADS", "2")})
    return env


def _start(run_dir: Path, name: str, *overrides: str) -> tuple[subprocess.Popen, Path]:
    log = run_dir.parent / f"{run_dir.name}.{name}.log"
    proc = subprocess.Popen(
        _command(run_dir, *overrides), cwd=run_dir.parent, env=_env(),
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc, log


def _steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            pass  # a line being written
    return out


def _wait_for_step(proc: subprocess.Popen, run_dir: Path, log: Path, step: int, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while step not in _steps(run_dir):
        if proc.poll() is not None:
            raise AssertionError(f"aspo-train ended ({proc.returncode}) before step {step}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            _kill_tree(proc)
            raise AssertionError(f"no step {step} within {timeout} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def _kill_tree(proc: subprocess.Popen) -> None:
    for child in psutil.Process(proc.pid).children(recursive=True):
        child.kill()
    proc.kill()


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        raise
    return log.read_text()


def _snapshot(run_dir: Path, proc: subprocess.Popen, output: str, **extra) -> dict:
    tracker = run_dir / "latest_checkpointed_iteration.txt"
    return {
        "dir": run_dir,
        "returncode": proc.returncode,
        "output": output,
        "steps": _steps(run_dir),
        "tracker": int(tracker.read_text()) if tracker.exists() else None,
        "wandb_id": json.loads((run_dir / "aspo_run.json").read_text())["wandb_run_id"],
        "wandb_runs": sorted(p.name for p in (run_dir / "wandb").glob("offline-run-*")),
        **extra,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


PREEMPT_ARGS = ("trainer.total_training_steps=4", "trainer.save_freq=3", f"aspo.preempt_grace_s={GRACE_S}")


@pytest.fixture(scope="module")
def preempted(workdir) -> dict:
    run_dir = workdir / "preempted"
    proc, log = _start(run_dir, "1", *PREEMPT_ARGS)
    _wait_for_step(proc, run_dir, log, 1)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output = _finish(proc, log, timeout=GRACE_S + 60)
    seconds = time.monotonic() - sent
    print(f"\n[figure] SIGTERM -> exit {proc.returncode}: {seconds:.1f} s", flush=True)
    return _snapshot(run_dir, proc, output, seconds=seconds)


@pytest.fixture(scope="module")
def after_preemption(preempted) -> dict:
    run_dir = preempted["dir"]
    proc, log = _start(run_dir, "2", *PREEMPT_ARGS)
    return _snapshot(run_dir, proc, _finish(proc, log))


def test_sigterm_stops_after_the_step_with_a_checkpoint_and_exits_75(preempted):
    out = preempted["output"]
    assert preempted["returncode"] == EXIT_PREEMPTED, out[-3000:]
    assert preempted["seconds"] < GRACE_S, "the trainer reached a safe point within the grace period"
    last = preempted["steps"][-1]
    assert preempted["steps"] == list(range(1, last + 1)) and 1 <= last < 4, "stopped early, after a complete step"
    # save_freq=3: unless the stop came after step 3, that checkpoint was written for the stop.
    assert preempted["tracker"] == last, "latest = the last completed (logged) step"
    step_dir = preempted["dir"] / f"global_step_{last}"
    assert (step_dir / "actor").is_dir() and (step_dir / "data.pt").is_file() and (step_dir / "aspo_fingerprint.json").is_file()
    assert "[aspo] SIGTERM: stopping after the current step" in out
    assert f"[aspo] stop requested: stopping after step {last} (checkpoint: {step_dir})" in out
    assert f"[aspo] preempted: stopped on SIGTERM after step {last}" in out and "exit 75" in out
    assert "training finished" not in out and "Traceback" not in out


def test_rerun_after_preemption_logs_every_step_once_in_the_same_wandb_run(preempted, after_preemption):
    assert after_preemption["returncode"] == 0, after_preemption["output"][-3000:]
    assert f"resuming from {preempted['dir'] / ('global_step_%d' % preempted['tracker'])}" in after_preemption["output"]
    assert after_preemption["steps"] == [1, 2, 3, 4]
    assert after_preemption["tracker"] == 4
    assert after_preemption["wandb_id"] == preempted["wandb_id"]
    # offline W&B: one directory per attempt, both with the run's id (`wandb sync` merges them)
    assert len(after_preemption["wandb_runs"]) == 2
    assert all(name.endswith(preempted["wandb_id"]) for name in after_preemption["wandb_runs"])
    assert not (preempted["dir"] / "aspo_stop_request").exists(), "the stale request was cleared"


def _actor_workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """verl's colocated actor/rollout/ref worker processes of this run (proctitle ray::WorkerDict...)."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if child.cmdline()[:1] and child.cmdline()[0].startswith("ray::WorkerDict"):
                found.append(child)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def restarted(workdir) -> dict:
    run_dir = workdir / "restarted"
    proc, log = _start(run_dir, "1", "trainer.total_training_steps=3", "trainer.save_freq=1", "aspo.max_restarts=1")
    _wait_for_step(proc, run_dir, log, 1)
    workers = _actor_workers(proc)
    assert len(workers) == 1, [w.cmdline() for w in workers]
    killed = time.monotonic()
    workers[0].send_signal(signal.SIGKILL)
    output = _finish(proc, log)
    seconds = time.monotonic() - killed
    restart_at = next((i for i, line in enumerate(output.splitlines()) if line.startswith("[aspo] restart 1/1")), None)
    print(f"\n[figure] worker SIGKILL -> run finished after one restart: {seconds:.1f} s", flush=True)
    return _snapshot(run_dir, proc, output, seconds=seconds, worker_pid=workers[0].pid, restart_line=restart_at)


def test_lost_worker_restarts_once_from_the_checkpoint_and_finishes(restarted):
    out = restarted["output"]
    assert restarted["returncode"] == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("[aspo] restart")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("[aspo] restart 1/1: ActorDiedError: ") and "resuming from " in lines[0]
    assert f"pid: {restarted['worker_pid']}" in lines[0], "the reason names the process that died"
    assert "training finished" in out
    assert restarted["steps"] == [1, 2, 3], "each step logged exactly once"
    assert restarted["tracker"] == 3
    # The restarted attempt continues the same W&B run: one offline directory per attempt, one id.
    assert len(restarted["wandb_runs"]) == 2 and all(n.endswith(restarted["wandb_id"]) for n in restarted["wandb_runs"])


# ---- the grace period, with a real ray.get that never returns ------------------------------------------

NEVER_DONE = r"""
import sys, time, ray
from aspo.preemption import EXIT_PREEMPTED, Preempted, PreemptionGuard, StopRequest

@ray.remote(num_cpus=0)
class Runner:
    def run(self):
        time.sleep(600)  # a step that never ends

guard = PreemptionGuard(StopRequest(sys.argv[1]), float(sys.argv[2]))
try:
    with guard:
        ray.init(num_cpus=1, include_dashboard=False)  # sets Ray's own SIGTERM handler (sys.exit)
        runner = guard.wrap(Runner).remote()  # as verl's run_ppo creates its TaskRunner
        ref = runner.run.remote()
        print("ready", flush=True)
        ray.get(ref)
except Preempted as stop:
    print(f"preempted: {stop}", flush=True)
    sys.exit(EXIT_PREEMPTED)
"""


def test_no_safe_point_within_the_grace_period_exits_75_out_of_ray_get(tmp_path):
    grace = 2.0
    proc = subprocess.Popen(
        [sys.executable, "-c", NEVER_DONE, str(tmp_path / "aspo_stop_request"), str(grace)],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        started = []
        for line in proc.stdout:  # Ray's start-up lines, then ours
            started.append(line)
            if line.strip() == "ready":
                break
        assert started and started[-1].strip() == "ready", "".join(started)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output = "".join(started) + proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            _kill_tree(proc)
    seconds = time.monotonic() - sent
    print(f"\n[figure] SIGTERM, no safe point, grace {grace:g} s -> exit {proc.returncode}: {seconds:.1f} s", flush=True)
    assert proc.returncode == EXIT_PREEMPTED, output
    assert grace <= seconds < grace + 20, "gave up after the grace period, not before, and not much after"
    assert (tmp_path / "aspo_stop_request").exists()
    assert f"no safe point within aspo.preempt_grace_s={grace:g} s" in output and "preempted: " in output
