"""Score many responses at once with bounded concurrency.

Math comparisons are all submitted to the process pool first (its worker count is the bound),
while code responses run on a thread pool whose threads block on the sandbox's slots (the slot
count is the bound). Usable directly as verl's batch reward function:
``reward_manager.name=batch``, ``custom_reward_function.name=compute_score_batch``.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from reward import _runtime
from reward.config import get_config
from reward.dispatch import resolve, score_one


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Any] | None = None, **kwargs) -> list[dict]:
    """Score each response; same result dicts, same order as the inputs.

    Raises before scoring anything if a ``data_source`` is unknown or the lengths differ.
    """
    n = len(solution_strs)
    if not (len(data_sources) == n == len(ground_truths)) or (extra_infos is not None and len(extra_infos) != n):
        raise ValueError(
            f"compute_score_batch: lengths differ (data_sources={len(data_sources)}, solution_strs={n}, "
            f"ground_truths={len(ground_truths)}, extra_infos={None if extra_infos is None else len(extra_infos)})"
        )
    extras = list(extra_infos) if extra_infos is not None else [None] * n
    kinds = [resolve(ds) for ds in data_sources]
    cfg = get_config()
    results: list[dict | None] = [None] * n

    math_idx = [i for i, k in enumerate(kinds) if k == "math"]
    code_idx = [i for i, k in enumerate(kinds) if k == "code"]

    jobs = {}
    if math_idx:
        from reward.math.verify import finish, prepare, submit

        pool = _runtime.math_pool()
        timeout = float(kwargs.get("math_timeout_s", cfg.math_timeout_s))
        for i in math_idx:
            job = prepare(solution_strs[i], ground_truths[i], cfg.math_max_answer_chars, cfg.math_fast_path)
            jobs[i] = submit(job, pool, timeout)

    if code_idx:
        box = _runtime.sandbox()
        box.warn_if_unsafe()
        threads = cfg.batch_threads or 2 * cfg.resolved_code_slots()
        with ThreadPoolExecutor(max_workers=min(threads, len(code_idx)), thread_name_prefix="reward-code") as ex:
            futs = {i: ex.submit(score_one, "code", solution_strs[i], ground_truths[i], extras[i], kwargs)
                    for i in code_idx}
            for i, f in futs.items():
                results[i] = f.result()

    if math_idx:
        pending = sum(1 for j in jobs.values() if j.result is None)
        # Every task is bounded by its own timeout once started; this outer wait only guards
        # against the pool itself misbehaving, so it is generous: the whole queue at full timeout.
        wait_s = timeout * (math.ceil(pending / pool.workers) + 1) + 60.0
        for i in math_idx:
            results[i] = finish(jobs[i], wait_s)
    return results  # type: ignore[return-value]
