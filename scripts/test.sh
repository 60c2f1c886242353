#!/usr/bin/env bash
# The test command: installs what it needs (venv, torch CPU wheel, verl, bubblewrap), then runs
# the whole suite. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
exec python -m pytest "$@"
