"""The CPU shims (aspo.cpu) still match verl 0.9.1: plugin loading, platform, engine lookup, gloo."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def test_import_verl_registers_cpu_platform_and_hf_rollout():
    # verl swallows plugin import errors; check the registries in a fresh interpreter.
    code = (
        "import verl\n"
        "from verl.plugin.platform import get_platform\n"
        "from verl.workers.rollout.base import get_rollout_class\n"
        "from verl.workers.rollout.replica import get_rollout_replica_class\n"
        "p = get_platform()\n"
        "print('RESULT', p.device_name, p.communication_backend_name(), p.current_device(),"
        " get_rollout_class('hf').__name__, get_rollout_replica_class('hf').__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    result = [line for line in out.splitlines() if line.startswith("RESULT")][-1].split()[1:]
    if torch.cuda.is_available():
        pytest.skip("a GPU host picks verl's cuda platform")
    assert result == ["cpu", "gloo", "cpu", "HFServerAdapter", "HFReplica"]


def test_cpu_device_module_has_every_attribute_verl_uses():
    import verl

    from aspo.cpu.platform import cpu_device_module

    used = set()
    for path in Path(verl.__file__).parent.rglob("*.py"):
        used.update(re.findall(r"get_torch_device\(\)\.(\w+)", path.read_text(errors="ignore")))
    assert used, "verl no longer calls get_torch_device(): revisit aspo.cpu.platform"
    missing = sorted(name for name in used if not hasattr(cpu_device_module, name))
    assert not missing, f"verl now uses get_torch_device().{missing}: add them to aspo.cpu.platform.cpu_device_module"


def test_cpu_platform_implements_verl_platform_interface():
    from aspo.cpu.platform import PlatformCPU

    platform = PlatformCPU()  # raises TypeError if verl added abstract methods
    assert platform.device_name == "cpu" and platform.current_device() == "cpu"
    assert platform.ray_resource_options(1) == {"num_gpus": 1}
    free, total = platform.device_module.mem_get_info()
    assert 0 < free <= total


def test_cpu_platform_steps_aside_when_a_gpu_is_present(monkeypatch):
    from aspo.cpu import platform as cpu_platform

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not cpu_platform.PlatformCPU().is_platform_available(use_smi_check=True)


def test_fsdp_engine_lookup_needs_the_engine_device_override(monkeypatch):
    # aspo.train sets VERL_ENGINE_DEVICE=cuda on CPU because verl registers FSDP for cuda/npu only.
    from verl.workers.engine import EngineRegistry

    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")
    assert EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__.startswith("FSDP")
    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cpu")
    with pytest.raises(ValueError):
        EngineRegistry.get_engine_cls("language_model", "fsdp2")


def test_verl_still_skips_its_process_group_when_one_exists():
    # aspo.cpu.distributed pre-creates a gloo group because verl's backend string would be
    # "cpu:gloo,cpu:gloo" (rejected by torch); that only works while verl checks is_initialized().
    from verl.utils import distributed

    src = inspect.getsource(distributed.initialize_global_process_group_ray)
    assert 'f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"' in src
    assert "if not torch.distributed.is_initialized():" in src
