"""Start-up validation: one clear error line naming the key and the fix."""

import pytest
from hydra.errors import InstantiationException
from verl.workers.config import ActorConfig, PolicyLossConfig

from aspo.config import AspoPolicyLossConfig, ConfigError, validate_actor_config


def actor(policy_loss=None, **kw):
    return ActorConfig(
        strategy="fsdp",
        ppo_micro_batch_size_per_gpu=1,
        rollout_n=1,
        policy_loss=policy_loss or AspoPolicyLossConfig(loss_mode="aspo"),
        **kw,
    )


def test_valid_configs_pass():
    validate_actor_config(actor())
    validate_actor_config(actor(policy_loss=PolicyLossConfig(loss_mode="vanilla")))  # stock verl config
    validate_actor_config(actor(clip_ratio_high=0.28))


@pytest.mark.parametrize(
    "kw,key",
    [
        ({"clip_ratio_c": 1.0}, "clip_ratio_c"),
        ({"clip_ratio_c": 0.5}, "clip_ratio_c"),
        ({"clip_ratio_low": 0.0}, "clip_ratio_low"),
        ({"clip_ratio_high": 1.2}, "clip_ratio_high"),
    ],
)
def test_bad_actor_numbers(kw, key):
    with pytest.raises(ConfigError, match=rf"actor_rollout_ref\.actor\.{key}=") as e:
        validate_actor_config(actor(**kw))
    assert "\n" not in str(e.value)


def test_unknown_loss_lists_allowed_values():
    with pytest.raises(ConfigError) as e:
        validate_actor_config(actor(policy_loss=PolicyLossConfig(loss_mode="aspoo")))
    msg = str(e.value)
    assert "policy_loss.loss_mode='aspoo'" in msg
    for name in ("aspo", "no_is", "asympo", "spo", "vanilla", "cispo"):
        assert name in msg


@pytest.mark.parametrize(
    "kw,key",
    [
        ({"spo_lambda": 0.0}, "spo_lambda"),
        ({"spo_lambda": 1.5}, "spo_lambda"),
        ({"entropy_quantile": 1.0}, "entropy_quantile"),
        ({"high_entropy_clip_ratio_low": -0.1}, "high_entropy_clip_ratio_low"),
    ],
)
def test_bad_policy_loss_settings_fail_at_construction(kw, key):
    with pytest.raises(ConfigError, match=key):
        AspoPolicyLossConfig(**kw)


def test_extra_keys_flow_through_verl_config_conversion():
    # The documented override: _target_ switches verl's PolicyLossConfig for ours.
    from hydra import compose, initialize_config_module
    from verl.utils.config import omega_conf_to_dataclass

    with initialize_config_module("verl.trainer.config", version_base=None):
        cfg = compose(
            "ppo_trainer",
            overrides=[
                "actor_rollout_ref.actor.policy_loss._target_=aspo.config.AspoPolicyLossConfig",
                "actor_rollout_ref.actor.policy_loss.loss_mode=spo",
                "+actor_rollout_ref.actor.policy_loss.spo_lambda=0.25",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
            ],
        )
        bad = compose(
            "ppo_trainer",
            overrides=[
                "actor_rollout_ref.actor.policy_loss._target_=aspo.config.AspoPolicyLossConfig",
                "+actor_rollout_ref.actor.policy_loss.spo_lambda=7",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
            ],
        )
    actor_cfg = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    assert actor_cfg.policy_loss.spo_lambda == 0.25
    assert actor_cfg.policy_loss.loss_mode == "spo"
    with pytest.raises(InstantiationException, match="spo_lambda=7"):
        omega_conf_to_dataclass(bad.actor_rollout_ref.actor)
