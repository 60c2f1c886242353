"""aspo.patches.*: each patch does its job, and verl still has the shape it patches."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch

from aspo.patches import entropy_to_loss


def test_verl_ppo_loss_still_looks_up_the_loss_by_module_global_and_has_entropy():
    from verl.workers.utils import losses

    src = inspect.getsource(losses.ppo_loss)
    assert "policy_loss_fn = get_policy_loss_fn(loss_mode)" in src
    assert 'entropy = model_output.get("entropy", None)' in src
    assert "entropy = no_padding_2_padding(entropy, data)" in src


def test_verl_worker_still_builds_its_loss_as_a_partial_we_can_replace():
    from verl.workers import engine_workers

    src = inspect.getsource(engine_workers.ActorRolloutRefWorker.init_model)
    assert "self.loss_fn = partial(ppo_loss, config=actor_config)" in src
    assert "self.actor.set_loss_fn(self.loss_fn)" in src


def test_verl_update_actor_computes_entropy_when_asked():
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    src = inspect.getsource(PPOTrainer._update_actor)
    assert "self.config.actor_rollout_ref.actor.calculate_entropy" in src


def test_loss_fn_for_keeps_verl_loss_unless_entropy_clip():
    def ppo_loss(config, model_output, data, dp_group=None):
        return None

    off = functools.partial(ppo_loss, config={"policy_loss": {"loss_mode": "aspo", "entropy_clip": False}})
    assert entropy_to_loss.loss_fn_for(off) is None
    on = functools.partial(ppo_loss, config={"policy_loss": {"loss_mode": "aspo", "entropy_clip": True}})
    wrapped = entropy_to_loss.loss_fn_for(on)
    assert wrapped.func is entropy_to_loss.ppo_loss_with_entropy and wrapped.keywords["config"] is on.keywords["config"]


def test_entropy_is_passed_to_the_registered_loss_only_inside_the_wrapper(monkeypatch):
    from verl.workers.utils import losses, padding

    seen = {}

    def probe_loss(**kwargs):
        seen.update(kwargs)
        return torch.tensor(0.0), {}

    entropy_to_loss.install()
    monkeypatch.setattr(entropy_to_loss, "_ORIGINAL_LOOKUP", lambda name: probe_loss)
    monkeypatch.setattr(padding, "no_padding_2_padding", lambda tensor, data: tensor)

    def fake_ppo_loss(config, model_output, data, dp_group=None):  # what verl's ppo_loss does
        return losses.get_policy_loss_fn("aspo")(log_prob=model_output["log_probs"])

    monkeypatch.setattr(losses, "ppo_loss", fake_ppo_loss)
    entropy = torch.rand(2, 3, requires_grad=True)
    entropy_to_loss.ppo_loss_with_entropy({}, {"log_probs": torch.zeros(2, 3), "entropy": entropy}, data=None)
    assert torch.equal(seen["entropy"], entropy) and not seen["entropy"].requires_grad
    seen.clear()
    losses.get_policy_loss_fn("aspo")(log_prob=None)  # outside the wrapper: untouched call
    assert "entropy" not in seen


# ---- aspo.patches.unpinned_ref_offload ----------------------------------------------------------


def test_verl_fsdp2_engine_still_pins_the_forward_only_offload_policy_by_module_global():
    from verl.workers.engine.fsdp import transformer_impl

    src = inspect.getsource(transformer_impl)
    assert "offload_policy = CPUOffloadPolicy(pin_memory=True)" in src
    assert "if self.engine_config.offload_policy or self.engine_config.forward_only:" in src


def test_unpinned_policy_keeps_the_type_and_drops_pinning(monkeypatch):
    from torch.distributed.fsdp import CPUOffloadPolicy
    from verl.workers.engine.fsdp import transformer_impl

    from aspo.patches import unpinned_ref_offload

    monkeypatch.setattr(transformer_impl, "CPUOffloadPolicy", CPUOffloadPolicy)
    unpinned_ref_offload.install()
    unpinned_ref_offload.install()  # idempotent: not a subclass of a subclass
    policy = transformer_impl.CPUOffloadPolicy(pin_memory=True)
    assert isinstance(policy, CPUOffloadPolicy) and policy.pin_memory is False
    assert transformer_impl.CPUOffloadPolicy.__mro__[1] is CPUOffloadPolicy


# ---- aspo.patches.separate_async_logging --------------------------------------------------------


def test_verl_separate_async_still_logs_with_flush_through_its_module_logger():
    # When this fails verl fixed its logger.info(..., flush=True): drop the patch.
    from verl.trainer.ppo.v1 import trainer_separate_async

    src = inspect.getsource(trainer_separate_async.PPOTrainerSeparateAsync._setup)
    assert "logger.info(" in src and "flush=True," in src
    assert "logger = logging.getLogger(__name__)" in inspect.getsource(trainer_separate_async)


def test_flush_tolerant_logger_logs_and_drops_flush(monkeypatch, caplog):
    import logging

    from verl.trainer.ppo.v1 import trainer_separate_async

    from aspo.patches import separate_async_logging

    plain = logging.getLogger("verl.trainer.ppo.v1.trainer_separate_async")
    monkeypatch.setattr(trainer_separate_async, "logger", plain)
    monkeypatch.setattr(plain, "level", logging.INFO)
    with pytest.raises(TypeError, match="flush"):  # what verl's set-up hits without the patch
        plain.info("x", flush=True)
    separate_async_logging.install()
    separate_async_logging.install()  # idempotent: not an adapter of an adapter
    assert trainer_separate_async.logger.logger is plain
    with caplog.at_level(logging.INFO, logger=plain.name):
        trainer_separate_async.logger.info("standalone %s", "only", flush=True)
    assert "standalone only" in caplog.text
