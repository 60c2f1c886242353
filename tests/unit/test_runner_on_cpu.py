"""aspo.runner extends verl's trainer by subclassing; these fail when the verl code it relies on changes."""

from __future__ import annotations

import hashlib
import inspect

import pytest

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


def test_verl_v1_still_ignores_trainer_balance_batch():
    # AspoTrainer._balance_batch honours trainer.balance_batch=false; drop that once verl reads the key.
    from pathlib import Path

    import verl.trainer.ppo.v1 as v1

    assert "balance_batch" not in "".join(
        p.read_text().replace("_balance_batch", "") for p in Path(v1.__file__).parent.glob("*.py")
    )
    src = inspect.getsource(PPOTrainer._balance_batch)
    for piece in ("upsample_batch_to_divisible_size(batch, batch_multiple", "self._get_required_batch_multiple(dp_size)",
                  "worker_group._dispatch_info[role]", "batch.reorder("):
        assert piece in src


def _trainer_for_balance(balance: bool):
    from omegaconf import OmegaConf

    from aspo.runner import AspoTrainer

    trainer = object.__new__(AspoTrainer)
    trainer.config = OmegaConf.create({"trainer": {"balance_batch": balance}})
    trainer._content_order = lambda batch: batch + ["content-ordered"]
    return trainer


def test_balance_batch_false_keeps_content_order_and_only_pads(monkeypatch):
    import verl.trainer.ppo.padding_utils as padding_utils

    class WorkerGroup:
        _dispatch_info = {}

        def _query_dispatch_info(self, role):
            return [0, 1, 0, 1]  # dp size 2

    trainer = _trainer_for_balance(False)
    trainer.actor_rollout_wg = WorkerGroup()
    trainer.tokenizer = type("T", (), {"eos_token_id": 5})()
    trainer._get_required_batch_multiple = lambda dp: 4 * dp
    monkeypatch.setattr(PPOTrainer, "_balance_batch", lambda *a, **k: pytest.fail("balanced despite balance_batch=false"))
    monkeypatch.setattr(padding_utils, "upsample_batch_to_divisible_size", lambda b, m, eos: (b, m, eos))
    assert trainer._balance_batch(["b"], metrics={}) == (["b", "content-ordered"], 8, 5)


def test_balance_batch_true_is_verls(monkeypatch):
    trainer = _trainer_for_balance(True)
    monkeypatch.setattr(PPOTrainer, "_balance_batch", lambda self, batch, metrics, **k: ("verl", batch))
    assert trainer._balance_batch(["b"], metrics={}) == ("verl", ["b", "content-ordered"])


def test_separate_async_worker_keeps_verl_detach_methods_and_aspo_additions():
    # verl's separate_async maps the actor role to DetachActorWorker (save/restore the policy on CPU,
    # decoupled PPO); aspo's worker replaces it without losing those methods.
    import ray
    from verl.experimental.separation.engine_workers import DetachActorWorker
    from verl.trainer.ppo.v1.trainer_separate_async import PPOTrainerSeparateAsync
    from verl.workers.engine_workers import ActorRolloutRefWorker

    from aspo.runner import AspoActorRolloutRefWorker, AspoDetachActorWorker, _aspo_worker

    assert "ray.remote(DetachActorWorker)" in inspect.getsource(PPOTrainerSeparateAsync._init_resource_pool_mgr)
    assert _aspo_worker(ray.remote(DetachActorWorker)).__ray_actor_class__ is AspoDetachActorWorker
    assert _aspo_worker(ray.remote(ActorRolloutRefWorker)).__ray_actor_class__ is AspoActorRolloutRefWorker
    assert AspoDetachActorWorker.__mro__[1:3] == (AspoActorRolloutRefWorker, DetachActorWorker)
    for name in ("save_model_to_cpu", "restore_model_from_cpu", "clear_cpu_model"):
        assert getattr(AspoDetachActorWorker, name) is getattr(DetachActorWorker, name)


def test_separate_async_generates_through_its_standalone_manager():
    # AspoTrainerMixin.get_llm_client swaps in the entropy-keeping client on the manager verl's mode uses.
    from verl.trainer.ppo.v1.trainer_separate_async import PPOTrainerSeparateAsync

    assert "self.standalone_server_manager.get_client(" in inspect.getsource(PPOTrainerSeparateAsync.get_llm_client)


@pytest.mark.parametrize(
    "mode, bypass, reuse, expected",
    [
        ("sync", False, True, True),             # rollout sampled with the current weights
        ("colocate_async", True, True, True),    # bypass: old = behaviour log-probs anyway
        ("separate_async", True, True, True),
        ("colocate_async", False, True, False),  # decoupled PPO: old must be the current policy's
        ("separate_async", False, True, False),
        ("sync", False, False, False),           # switched off
    ],
)
def test_rollout_log_probs_stand_for_the_old_policy_only_where_they_are_it(mode, bypass, reuse, expected):
    from omegaconf import OmegaConf

    from aspo.runner import reuses_rollout_log_probs

    cfg = OmegaConf.create({"aspo": {"reuse_rollout_log_probs": reuse}, "trainer": {"v1": {"trainer_mode": mode}},
                            "algorithm": {"rollout_correction": {"bypass_mode": bypass, "rollout_is": "token"}}})
    assert reuses_rollout_log_probs(cfg) is expected
