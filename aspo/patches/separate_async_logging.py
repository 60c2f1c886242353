"""Let verl's ``separate_async`` trainer start without colocated rollout replicas.

verl 0.9.1's ``PPOTrainerSeparateAsync._setup`` logs ``logger.info(..., flush=True)`` in its
``actor_rollout_ref.hybrid_engine=False`` branch (standalone rollout only, what aspo uses on CPU:
``async_mode=separate_cpu``). ``logging.Logger`` takes no ``flush`` argument, so with INFO enabled
(verl's default ``VERL_LOGGING_LEVEL``) set-up dies with ``TypeError: Logger._log() got an unexpected
keyword argument 'flush'`` before the first step.

``install()`` wraps that module's logger in an adapter that drops ``flush``; every record is still
logged, and nothing else in verl is touched. Called when the ``separate_async`` trainer class is built
(``aspo.runner.trainer_class``).
"""

from __future__ import annotations

import logging
from typing import Any

from aspo._verl_compat import check_verl_version


class FlushTolerantLogger(logging.LoggerAdapter):
    """A logger that accepts (and ignores) print's ``flush=`` keyword."""

    def log(self, level: int, msg: Any, *args: Any, flush: bool = False, **kwargs: Any) -> None:
        super().log(level, msg, *args, **kwargs)


def install() -> None:
    """Wrap ``verl.trainer.ppo.v1.trainer_separate_async.logger`` (idempotent)."""
    check_verl_version("aspo.patches.separate_async_logging", strict=True)
    from verl.trainer.ppo.v1 import trainer_separate_async

    if not isinstance(trainer_separate_async.logger, FlushTolerantLogger):
        trainer_separate_async.logger = FlushTolerantLogger(trainer_separate_async.logger, {})
