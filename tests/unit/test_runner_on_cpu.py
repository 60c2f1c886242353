"""aspo.runner extends verl's trainer by subclassing; these fail when the verl code it relies on changes."""

from __future__ import annotations

import hashlib
import inspect

from verl.trainer.main_ppo import TaskRunnerV1
from verl.trainer.ppo.v1.trainer_base import PPOTrainer
from verl.utils.tracking import FileLogger


def _digest(obj) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def test_replicated_verl_methods_are_unchanged():
    # AspoTrainer._save_checkpoint and AspoTaskRunner.run re-implement these (sync mode); when verl
    # changes them, port the change and update the digest.
    assert _digest(PPOTrainer._save_checkpoint) == SAVE_CHECKPOINT_DIGEST
    assert _digest(TaskRunnerV1.__ray_actor_class__.run) == TASK_RUNNER_RUN_DIGEST


def test_fit_creates_tracking_before_the_hooks_we_swap_the_file_logger_in():
    src = inspect.getsource(PPOTrainer.fit)
    tracking = src.index("self.logger = Tracking(")
    assert tracking < src.index("self.on_validate_begin()") and tracking < src.index("self.on_train_begin()")
    assert src.index("self.on_train_begin()") < src.index("self.logger.log(data=metrics")


def test_verl_file_logger_still_truncates_and_reads_the_env_path():
    src = inspect.getsource(FileLogger.__init__)
    assert 'os.getenv("VERL_FILE_LOGGER_PATH", None)' in src and 'open(self.filepath, "wb"' in src


def test_aspo_worker_keeps_verl_dispatch_registration():
    from verl.single_controller.base.decorator import MAGIC_ATTR

    from aspo.runner import AspoActorRolloutRefWorker

    assert hasattr(AspoActorRolloutRefWorker.init_model, MAGIC_ATTR)


SAVE_CHECKPOINT_DIGEST = "8c2435b577e54f19"
TASK_RUNNER_RUN_DIGEST = "26be986901db888b"


def test_replay_buffer_still_sleeps_poll_interval_between_polls():
    # AspoTrainer._build_replay_buffer sets poll_interval from aspo.replay_poll_interval_s.
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    assert "time.sleep(self.poll_interval)" in inspect.getsource(ReplayBuffer._wait_for_next_poll)
