"""Policy losses, each registered with verl's ``@register_policy_loss``.

Ours: ``aspo``, ``no_is``, ``asympo``, ``spo``. verl's own baselines (``vanilla`` = GRPO/PPO with
dual clip, ``cispo``, ``gspo``, ``sapo``, ...) are selected by name the same way:
``actor_rollout_ref.actor.policy_loss.loss_mode=<name>``.
"""

from aspo.losses import asympo, aspo, no_is, spo  # noqa: F401  (registration side effect)

OURS = ("aspo", "no_is", "asympo", "spo")
