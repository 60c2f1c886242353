"""aspo.preemption: the signal handler, the stop request, the trainer's safe point, the exit code,
and the SLURM requeue wrapper (scripts/slurm/requeue.sh). Real signals, sent to this process."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aspo import checkpoint
from aspo.preemption import (
    EXIT_PREEMPTED,
    SIGNALS,
    Preempted,
    PreemptibleTrainer,
    PreemptionGuard,
    StopRequest,
    check_grace,
    stop_file_path,
)
from aspo.preflight import PreflightError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    saved = {s: signal.getsignal(s) for s in SIGNALS}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _guard(tmp_path, grace_s=60.0, **kw):
    lines = []
    guard = PreemptionGuard(StopRequest(tmp_path / "aspo_stop_request"), grace_s, log=lines.append, **kw)
    return guard, lines


def test_exit_code_is_ex_tempfail():
    assert EXIT_PREEMPTED == 75  # sysexits.h EX_TEMPFAIL; scripts/slurm/requeue.sh and the README say 75
    assert "ASPO_EXIT_PREEMPTED=75" in (ROOT / "scripts" / "slurm" / "requeue.sh").read_text()


@pytest.mark.parametrize("signum", SIGNALS)
def test_first_signal_requests_a_stop_and_returns(tmp_path, signum):
    guard, lines = _guard(tmp_path)
    with guard:
        os.kill(os.getpid(), signum)
        assert _wait_for(lambda: guard.requested)
        assert guard.stop.requested() and guard.forced is None
    assert json.loads(guard.stop.path.read_text())["reason"] == signal.Signals(signum).name
    assert len(lines) == 1 and f"exit {EXIT_PREEMPTED}" in lines[0] and "signal again to exit now" in lines[0]


def test_entering_clears_an_earlier_request(tmp_path):
    stop = StopRequest(tmp_path / "aspo_stop_request")
    stop.request("SIGTERM")
    stop.acknowledge(3, None)
    with PreemptionGuard(stop, 60, log=lambda line: None):
        assert not stop.requested() and stop.acknowledgement() is None


def test_second_signal_exits_at_once_with_preempted(tmp_path):
    exits = []
    guard, lines = _guard(tmp_path, hard_exit=exits.append, hard_exit_after_s=0.2)
    started = time.monotonic()
    with pytest.raises(Preempted, match=r"second signal \(SIGUSR1\)"):
        with guard:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for(lambda: guard.requested)
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(5)  # interrupted by the handler
    assert time.monotonic() - started < 2
    # If unwinding hangs, a timer leaves with the same code.
    assert _wait_for(lambda: exits == [EXIT_PREEMPTED], timeout=3)


def test_grace_period_over_exits_without_the_trainer(tmp_path):
    guard, lines = _guard(tmp_path, grace_s=0.3, hard_exit=lambda code: None)
    started = time.monotonic()
    with pytest.raises(Preempted, match=r"no safe point within aspo.preempt_grace_s=0.3 s"):
        with guard:
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(5)  # the trainer never acknowledges
    assert 0.3 <= time.monotonic() - started < 2
    assert any("exiting without a checkpoint of the current step" in line for line in lines)


def test_stop_acknowledged_by_the_trainer_is_preempted_with_its_step(tmp_path):
    guard, _ = _guard(tmp_path)
    with pytest.raises(Preempted, match=r"stopped on SIGTERM after step 2 \(/ckpt/global_step_2\); rerun the same command"):
        with guard:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for(lambda: guard.requested)
            guard.stop.acknowledge(2, "/ckpt/global_step_2")  # what the trainer does
            guard.raise_if_stopped()
    # The grace clock stopped with the guard, and a late signal exits 75, not by the signal.
    assert signal.getsignal(signal.SIGTERM).__name__ == "_exit_preempted_now"


def test_a_touched_stop_file_stops_the_run_without_a_signal(tmp_path):
    guard, _ = _guard(tmp_path)
    with guard:
        guard.stop.path.touch()  # the user; the trainer then stops and acknowledges
        guard.stop.acknowledge(5, "/ckpt/global_step_5")
        with pytest.raises(Preempted, match=r"stopped on stop file .*aspo_stop_request after step 5"):
            guard.raise_if_stopped()


def test_a_finished_run_is_not_preempted(tmp_path):
    guard, _ = _guard(tmp_path)
    previous = signal.getsignal(signal.SIGUSR1)
    with guard:
        guard.raise_if_stopped()  # no signal, no acknowledgement
    assert signal.getsignal(signal.SIGUSR1) is previous


def test_workers_dying_of_the_same_signal_is_still_preempted(tmp_path):
    import ray.exceptions as rex

    guard, _ = _guard(tmp_path)
    with pytest.raises(Preempted, match="Ray processes ended before a safe point"):
        with guard:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for(lambda: guard.requested)
            raise rex.ActorDiedError()


def test_other_failures_pass_through(tmp_path):
    guard, _ = _guard(tmp_path)
    with pytest.raises(KeyError):
        with guard:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for(lambda: guard.requested)
            raise KeyError("a bug")


def test_handlers_come_back_after_ray_init_replaces_them(tmp_path):
    guard, _ = _guard(tmp_path)
    created = []

    class _ActorClass:
        def remote(self, *args):
            created.append(args)
            return "handle"

    with guard:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(15))  # what ray.init does
        assert guard.wrap(_ActorClass()).remote(1) == "handle"
        assert created == [(1,)]
        assert signal.getsignal(signal.SIGTERM) == guard._on_signal


def test_stop_file_and_grace_settings(tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"trainer": {"default_local_dir": str(tmp_path / "run")}, "aspo": {"stop_file": None}})
    assert stop_file_path(cfg) == tmp_path / "run" / "aspo_stop_request"
    cfg.aspo.stop_file = "~/stop"
    assert stop_file_path(cfg) == Path.home() / "stop"
    assert check_grace(600) == 600.0
    for bad in (0, -5, "soon", None):
        with pytest.raises(PreflightError, match="aspo.preempt_grace_s=.*> 0"):
            check_grace(bad)


# ---- the trainer's side: verl's loop and the safe point ---------------------------------------------


def test_verl_fit_calls_on_step_begin_first_in_each_step():
    """The safe point: in verl's loop, on_step_begin comes after the previous step was logged and
    counted, and before anything of the new step (prompts are fetched in self.step)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    src = inspect.getsource(PPOTrainer.fit)
    loop = src[src.index("while current_epoch < self.config.trainer.total_epochs"):]
    body = loop[: loop.index("self.on_train_end()")]
    order = [body.index(s) for s in (
        "metrics = {}", "self.on_step_begin()", "batch = self.step(metrics", "self._save_checkpoint()",
        "self.logger.log(data=metrics, step=self.global_steps)", "self.global_steps += 1",
    )]
    assert order == sorted(order)
    assert "self.train_dataloader" not in body and "prepare_step" not in body
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    assert "prepare_step()" in inspect.getsource(PPOTrainer.step)
    assert "on_step_begin" not in PPOTrainerSync.__dict__
    assert callable(PPOTrainer._shutdown_dump_executor)


class _Config(dict):
    def __getattr__(self, name):
        return self[name]


class _FakeLoop:
    """verl's fit loop in miniature: on_step_begin, step, save every save_freq, log, count."""

    def __init__(self, root: Path, total: int, save_freq: int, stop_after: int | None, stop: StopRequest):
        self.config = _Config(
            trainer=_Config(default_local_dir=str(root), total_training_steps=total, save_freq=save_freq),
            aspo=_Config(stop_file=str(stop.path)),
        )
        self.root, self.stop, self.stop_after = root, stop, stop_after
        self.global_steps, self.trained, self.saved, self.shut_down = 0, [], [], False

    def fit(self, agent_loop_manager):
        self.global_steps += 1
        while self.global_steps <= self.config.trainer.total_training_steps:
            self.on_step_begin()
            self.trained.append(self.global_steps)
            if self.global_steps % self.config.trainer.save_freq == 0:
                self._save_checkpoint()
            if self.global_steps == self.stop_after:
                self.stop.request("SIGTERM")  # arrives during this step
            self.global_steps += 1
        return "done"

    def on_step_begin(self):
        pass

    def _save_checkpoint(self):
        self.saved.append(self.global_steps)
        (self.root / f"global_step_{self.global_steps}").mkdir(parents=True)
        checkpoint.write_tracker(self.root, self.global_steps)

    def _shutdown_dump_executor(self):
        self.shut_down = True


class _Trainer(PreemptibleTrainer, _FakeLoop):
    pass


@pytest.mark.parametrize(
    "save_freq, stop_after, saved, latest",
    [
        (10, 3, [3], 3),  # step 3 not saved by the schedule: saved at the safe point
        (3, 3, [3], 3),  # step 3 just saved: not saved twice
        (2, 3, [2, 3], 3),
    ],
)
def test_trainer_saves_the_last_completed_step_and_returns(tmp_path, save_freq, stop_after, saved, latest):
    stop = StopRequest(tmp_path / "aspo_stop_request")
    trainer = _Trainer(tmp_path, total=6, save_freq=save_freq, stop_after=stop_after, stop=stop)
    assert trainer.fit(None) is None
    assert trainer.trained == [1, 2, 3] and trainer.saved == saved and trainer.shut_down
    assert checkpoint.read_tracker(tmp_path) == latest
    assert stop.acknowledgement() == {"step": 3, "checkpoint": str(tmp_path / "global_step_3")}


def test_trainer_stopping_before_its_first_step_saves_nothing(tmp_path):
    stop = StopRequest(tmp_path / "aspo_stop_request")
    stop.request("SIGUSR1")  # during start-up
    trainer = _Trainer(tmp_path, total=4, save_freq=10, stop_after=None, stop=stop)
    trainer.fit(None)
    assert trainer.trained == [] and trainer.saved == []
    assert stop.acknowledgement() == {"step": 0, "checkpoint": None}


def test_trainer_without_request_runs_to_the_end(tmp_path):
    stop = StopRequest(tmp_path / "aspo_stop_request")
    trainer = _Trainer(tmp_path, total=4, save_freq=2, stop_after=None, stop=stop)
    assert trainer.fit(None) == "done" and trainer.trained == [1, 2, 3, 4] and stop.acknowledgement() is None


def test_aspo_trainer_is_preemptible():
    from aspo.runner import AspoTrainer

    mro = AspoTrainer.__mro__
    assert mro.index(PreemptibleTrainer) < [c.__name__ for c in mro].index("PPOTrainerSync")


# ---- SLURM: forward the signal, requeue on exit 75 ---------------------------------------------------

FAKE_DRIVER = r"""
import signal, sys, time, pathlib
out = pathlib.Path(sys.argv[1])
code = int(sys.argv[2])
def on_signal(signum, frame):
    out.with_suffix(".signals").open("a").write(signal.Signals(signum).name + "\n")
    sys.exit(code)
signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGTERM, on_signal)
out.write_text("ready")
if code == 0:
    sys.exit(0)
time.sleep(30)
sys.exit(1)
"""


def _sbatch_shell(tmp_path, exit_code: int, job_id: str | None = "4242"):
    driver = tmp_path / "driver.py"
    driver.write_text(FAKE_DRIVER)
    scontrol = tmp_path / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.calls"}\n')
    scontrol.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["SCONTROL"] = str(scontrol)
    if job_id:
        env["SLURM_JOB_ID"] = job_id
    script = (
        f"set -euo pipefail; source {ROOT / 'scripts' / 'slurm' / 'requeue.sh'}; "
        f"aspo_run_requeueable {sys.executable} {driver} {tmp_path / 'ready'} {exit_code}"
    )
    return subprocess.Popen(["bash", "-c", script], env=env, stderr=subprocess.PIPE, text=True)


def test_sbatch_forwards_usr1_once_and_requeues_on_exit_75(tmp_path):
    shell = _sbatch_shell(tmp_path, EXIT_PREEMPTED)
    assert _wait_for(lambda: (tmp_path / "ready").exists(), timeout=20)
    shell.send_signal(signal.SIGUSR1)
    _, err = shell.communicate(timeout=20)
    assert shell.returncode == EXIT_PREEMPTED
    assert (tmp_path / "ready.signals").read_text() == "SIGUSR1\n"
    assert (tmp_path / "scontrol.calls").read_text() == "requeue 4242\n"
    assert "requeueing job 4242" in err


@pytest.mark.parametrize("exit_code", [0, 1])
def test_sbatch_does_not_requeue_a_finished_or_failed_run(tmp_path, exit_code):
    shell = _sbatch_shell(tmp_path, exit_code)
    if exit_code:
        assert _wait_for(lambda: (tmp_path / "ready").exists(), timeout=20)
        shell.send_signal(signal.SIGTERM)  # forwarded; the driver fails instead of stopping
    shell.communicate(timeout=20)
    assert shell.returncode == exit_code
    assert not (tmp_path / "scontrol.calls").exists()


def test_sbatch_declares_requeue_and_the_warning_signal():
    text = (ROOT / "scripts" / "slurm" / "aspo.sbatch").read_text()
    assert "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR1@" in text and "aspo_run_requeueable" in text
    lead = int(text.split("#SBATCH --signal=B:USR1@")[1].split()[0])
    recipe = (ROOT / "recipes" / "_common" / "archer2_paper.yaml").read_text()
    grace = int(recipe.split("preempt_grace_s:")[1].split()[0])
    assert lead > grace, "the signal must come early enough for the recipes' grace period"
