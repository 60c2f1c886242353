"""algorithm.filter_groups.max_num_gen_batches: enforced by aspo (verl 0.9.1's v1 trainer ignores it)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from aspo.dynamic_sampling import GenBatchCap, GenerationCapReached, cap_from_config


def _cfg(enable=True, cap=3, batch=4):
    return OmegaConf.create(
        {"algorithm": {"filter_groups": {"enable": enable, "metric": "reward", "max_num_gen_batches": cap}},
         "data": {"train_batch_size": batch}}
    )


def test_cap_counts_generation_batches_like_dapo():
    calls = []
    cap = GenBatchCap(max_num_gen_batches=3, train_batch_size=4)
    refill = cap.wrap(lambda n: calls.append(n) or n)
    cap.start_step(7)
    refill(2)
    refill(2)  # 4 refilled prompts: 2 generation batches in all
    refill(4)  # 8 refilled: 3 batches, the cap
    assert calls == [2, 2, 4] and cap.gen_batches() == 3
    with pytest.raises(GenerationCapReached, match=r"step 7: .*max_num_gen_batches=3 .*set it to 0 for no cap"):
        refill(1)
    assert calls == [2, 2, 4]  # the refill past the cap never reached the rollout
    cap.start_step(8)  # a new step starts counting afresh
    refill(8)
    assert calls[-1] == 8


def test_cap_from_config():
    assert cap_from_config(_cfg(enable=False)) is None
    assert cap_from_config(_cfg(cap=0)) is None  # verl: non-positive means no upper limit
    assert cap_from_config(OmegaConf.create({"algorithm": {}, "data": {"train_batch_size": 4}})) is None
    cap = cap_from_config(_cfg(cap=10, batch=64))
    assert (cap.max_num_gen_batches, cap.train_batch_size) == (10, 64)


def test_verl_v1_still_ignores_max_num_gen_batches():
    # When verl enforces the key itself, drop aspo.dynamic_sampling.
    import verl.trainer.ppo.v1 as v1

    sources = "".join(p.read_text() for p in Path(v1.__file__).parent.glob("*.py"))
    assert sources.count("max_num_gen_batches") == 5  # read once, only to warn that it is ignored
    assert "max_num_gen_batches=%s is ignored by the built-in V1 ReplayBuffer" in sources


def test_verl_replay_buffer_refills_filtered_groups_through_refill_fn():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    assert "self.refill_fn(dispatch_count)" in inspect.getsource(ReplayBuffer.sample)
    assert "refill_fn=self._add_prompts_to_generate" in inspect.getsource(PPOTrainer._build_replay_buffer)
    assert "self.on_sample_begin()" in inspect.getsource(PPOTrainer._step_once)


def test_aspo_trainer_wraps_the_buffer_refill_and_resets_each_sample(monkeypatch):
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from aspo.runner import AspoTrainer

    class Buffer:
        poll_interval = 2.0

        def __init__(self):
            self.refill_fn = lambda n: n

    monkeypatch.setattr(PPOTrainerSync, "_build_replay_buffer", lambda self: Buffer(), raising=False)
    trainer = object.__new__(AspoTrainer)
    trainer.config = OmegaConf.merge(_cfg(cap=2, batch=4), {"aspo": {}})
    trainer.global_steps = 3
    buffer = trainer._build_replay_buffer()
    trainer.on_sample_begin()
    buffer.refill_fn(4)
    with pytest.raises(GenerationCapReached, match="step 3"):
        buffer.refill_fn(1)
    trainer.global_steps = 4
    trainer.on_sample_begin()
    assert buffer.refill_fn(4) == 4
