"""A ``cpu`` platform for verl's platform registry.

verl 0.9.1 resolves every device question (device name, torch device module, collective backend,
Ray resource) through ``verl.plugin.platform.get_platform()``, auto-detecting the first registered
platform whose ``is_platform_available`` says yes. The built-ins (nvidia, huawei, amd) all say no on
a CPU-only machine, so this one, registered when ``import verl`` loads our plugin, is picked there
and never on a machine with a GPU.

Facts this relies on (see docs in /work/shared/design/cpu-notes.md):
- ``current_device()`` must be the string ``"cpu"``: FSDP2 full-state-dict loading calls
  ``model.to(device=get_device_id())``.
- The Ray resource stays ``"GPU"``: placement groups ask for one (fake) GPU per worker, which
  ``aspo.train`` provides with ``ray_kwargs.ray_init.num_gpus``.
- verl builds the process-group backend as ``"cpu:gloo,<device>:<backend>"``, which torch rejects
  for device ``cpu``; ``aspo.cpu.distributed`` creates the gloo group first so verl skips its own.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from types import ModuleType, SimpleNamespace
from typing import Any, Optional

import torch

from aspo._verl_compat import check_verl_version

check_verl_version("aspo.cpu.platform")

from verl.plugin.platform.platform_base import PlatformBase  # noqa: E402
from verl.plugin.platform.platform_manager import PlatformRegistry  # noqa: E402

PLATFORM_NAME = "cpu"


def accelerator_present() -> bool:
    """True when this host has a CUDA/ROCm GPU or an Ascend NPU (then verl's own platforms apply)."""
    if torch.cuda.is_available():
        return True
    if hasattr(torch, "npu"):
        return True
    # A CPU-only Ray actor on a GPU host sees no CUDA device but the host still has one.
    return shutil.which("nvidia-smi") is not None or shutil.which("rocm-smi") is not None


def _mem_get_info(device: Any = None) -> tuple[int, int]:
    pages = os.sysconf("SC_PHYS_PAGES")
    page_size = os.sysconf("SC_PAGE_SIZE")
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * page_size
    except (ValueError, OSError):
        free = pages * page_size
    return free, pages * page_size


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


# What verl calls on ``get_torch_device()`` (grep of verl 0.9.1: empty_cache, synchronize,
# is_available, current_stream, set_device, mem_get_info, rng state, memory counters, ...).
# ``torch.cpu`` has only some of these; the rest are no-ops or host-memory answers.
cpu_device_module = SimpleNamespace(
    __name__="aspo.cpu.platform.cpu_device_module",
    is_available=lambda: True,
    is_initialized=lambda: True,
    device_count=lambda: 1,
    current_device=lambda: "cpu",
    set_device=_noop,
    synchronize=_noop,
    empty_cache=_noop,
    ipc_collect=_noop,
    set_per_process_memory_fraction=_noop,
    memory_allocated=_zero,
    memory_reserved=_zero,
    max_memory_allocated=_zero,
    max_memory_reserved=_zero,
    reset_peak_memory_stats=_noop,
    mem_get_info=_mem_get_info,
    get_device_name=lambda *a, **k: "cpu",
    get_rng_state=lambda *a, **k: torch.get_rng_state(),
    set_rng_state=lambda state, *a, **k: torch.set_rng_state(state),
    manual_seed=torch.manual_seed,
    manual_seed_all=torch.manual_seed,
    current_stream=torch.cpu.current_stream,
    stream=torch.cpu.stream,
    Stream=torch.cpu.Stream,
    Event=torch.cpu.Event,
)


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """verl platform for hosts without an accelerator: gloo collectives, fp32 compute."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return cpu_device_module  # type: ignore[return-value]

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return not accelerator_present()

    def current_device(self):  # noqa: D401  (verl expects an int on GPUs; torch accepts "cpu")
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # Workers are placed on a fake "GPU" resource (ray_init.num_gpus) so verl's placement
        # groups and worker groups work unchanged; nothing ever touches CUDA.
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
