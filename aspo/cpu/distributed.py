"""Process-group and thread set-up for verl's Ray workers on CPU.

verl initialises its process group with the backend string ``"cpu:gloo,<device>:<backend>"``; on
CPU that is ``"cpu:gloo,cpu:gloo"``, which torch rejects ("Duplicate device type cpu"). verl only
initialises when no group exists yet, so creating a plain gloo group first (same env:// rendezvous
verl's RayWorkerGroup sets up) is enough.

Ray sets ``OMP_NUM_THREADS=1`` in actors declared without ``num_cpus``; on a 2-core machine that
halves training and generation speed, so each compute actor sets its thread count explicitly.
"""

from __future__ import annotations

import os

import torch


def cpu_threads() -> int:
    """Threads for one compute actor: ``ASPO_CPU_THREADS`` or every core of the host.

    The trainer and a colocated rollout server never compute at the same time, so each may use all
    cores. A standalone one (``separate_async``) generates while the trainer trains; both still ask
    for every core and the OS shares them (set ``ASPO_CPU_THREADS`` to split them instead).
    """
    value = os.environ.get("ASPO_CPU_THREADS")
    if value:
        return max(1, int(value))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def set_torch_threads() -> int:
    n = cpu_threads()
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    return n


def init_gloo_process_group() -> None:
    """Create the default gloo process group from the env:// variables verl's worker group sets."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    dist.init_process_group(
        backend="gloo",
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        init_method=os.environ.get("DIST_INIT_METHOD", None),
    )
