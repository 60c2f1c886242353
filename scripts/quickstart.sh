#!/usr/bin/env bash
# README command 1: set up the environment (venv, torch CPU wheel, verl, this package), then train
# SmolLM2-135M-Instruct with ASPO for 5 steps on one-digit addition on this machine (CPU by default,
# vLLM on a GPU), and plot the run. `--config-name quickstart_tiny` trains a tiny random model
# instead. Extra arguments are Hydra overrides, e.g.
#   bash scripts/quickstart.sh trainer.total_training_steps=8
#   bash scripts/quickstart.sh actor_rollout_ref.actor.policy_loss.loss_mode=vanilla
# Run it again with a larger trainer.total_training_steps to resume from the last checkpoint.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/setup_env.sh

summary="$(mktemp)"
trap 'rm -f "$summary"' EXIT
# aspo-train prints where the metrics, checkpoints and W&B files went; keep that for the plot.
aspo-train --config-name quickstart "$@" 2>&1 | tee "$summary"
metrics="$(sed -n 's/^  metrics (JSONL): //p' "$summary" | tail -1)"
if [ -n "$metrics" ] && [ -f "$metrics" ]; then
    png="${metrics%.jsonl}.png"
    python scripts/plot_run.py "$metrics" --out "$png" > /dev/null
    echo "[aspo] plot: $png"
fi
