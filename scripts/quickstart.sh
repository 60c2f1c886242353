#!/usr/bin/env bash
# README command 1. Installs what it needs, then (until the end-to-end trainer lands) runs the
# policy-loss benchmark: each loss's fwd+bwd time as a ratio of verl's vanilla.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh
python scripts/bench_loss.py "$@"
