"""A cap on DAPO-style dynamic sampling refills (``algorithm.filter_groups.max_num_gen_batches``).

With ``algorithm.filter_groups.enable``, groups whose rewards are all equal carry no GRPO signal
and are dropped and replaced by fresh prompts until a step has ``data.train_batch_size`` groups.
DAPO (and verl's pre-v1 trainer) caps that with ``max_num_gen_batches``: on data that is too easy
or too hard for the model, refilling would otherwise go on forever, eating the whole dataset one
step at a time. verl 0.9.1's v1 replay buffer refills with no cap and ignores the key, so the
trainer counts the prompts it dispatches per step here and stops with DAPO's error when the cap is
reached. ``max_num_gen_batches <= 0`` means no cap (verl's documented meaning).
"""

from __future__ import annotations

import math
from typing import Callable


class GenerationCapReached(RuntimeError):
    """Dynamic sampling needed more generation batches than ``max_num_gen_batches`` allows."""


class GenBatchCap:
    """Counts prompts generated for the current step; raises once they exceed the cap.

    A "generation batch" is ``train_batch_size`` prompts, as in DAPO: the step's first batch is
    one, and every ``train_batch_size`` refilled prompts (rounded up) are one more.
    """

    def __init__(self, max_num_gen_batches: int, train_batch_size: int):
        self.max_num_gen_batches = int(max_num_gen_batches)
        self.train_batch_size = int(train_batch_size)
        self.step: int | None = None
        self.refilled = 0

    @property
    def enabled(self) -> bool:
        return self.max_num_gen_batches > 0

    def start_step(self, step: int) -> None:
        self.step = step
        self.refilled = 0

    def gen_batches(self, extra: int = 0) -> int:
        return 1 + math.ceil((self.refilled + extra) / self.train_batch_size)

    def before_refill(self, num_prompts: int) -> None:
        if self.enabled and self.gen_batches(num_prompts) > self.max_num_gen_batches:
            raise GenerationCapReached(
                f"step {self.step}: dynamic sampling needs more than algorithm.filter_groups.max_num_gen_batches="
                f"{self.max_num_gen_batches} generation batches of {self.train_batch_size} prompts (already refilled "
                f"{self.refilled} prompts whose groups all scored alike): the data is too easy or too hard for the model. "
                "Check the data and rewards, raise max_num_gen_batches, or set it to 0 for no cap"
            )
        self.refilled += num_prompts

    def wrap(self, refill_fn: Callable[[int], int]) -> Callable[[int], int]:
        def capped_refill(num_prompts: int) -> int:
            self.before_refill(num_prompts)
            return refill_fn(num_prompts)

        capped_refill.__wrapped__ = refill_fn  # type: ignore[attr-defined]
        return capped_refill


def cap_from_config(config) -> GenBatchCap | None:
    """The cap for a verl config, or None when dynamic sampling is off or uncapped."""
    filter_groups = config.algorithm.get("filter_groups", None)
    if filter_groups is None or not filter_groups.get("enable", False):
        return None
    cap = GenBatchCap(int(filter_groups.get("max_num_gen_batches", 0) or 0), int(config.data.train_batch_size))
    return cap if cap.enabled else None
