"""``aspo.configs.compose`` / ``flatten``: the in-process view of what ``aspo-train`` composes."""

from omegaconf import OmegaConf

from aspo.configs import compose, flatten


def test_compose_applies_overrides_and_leaves_interpolations_unless_resolved():
    cfg = compose("quickstart_tiny", "hardware=cpu", "trainer.total_training_steps=7")
    assert cfg.trainer.total_training_steps == 7
    assert OmegaConf.is_interpolation(cfg.actor_rollout_ref.actor, "ppo_micro_batch_size_per_gpu")
    resolved = compose("quickstart_tiny", "hardware=cpu", resolve=True)
    assert isinstance(resolved.actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu, int)


def test_flatten_gives_dotted_leaves_with_interpolations_as_written():
    cfg = OmegaConf.create({"a": {"b": 1, "c": {"d": "${a.b}"}}, "e": [1, 2]})
    assert flatten(cfg) == {"a.b": 1, "a.c.d": "${a.b}", "e": [1, 2]}
