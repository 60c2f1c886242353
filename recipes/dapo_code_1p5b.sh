#!/usr/bin/env bash
# dapo_code_1p5b: DAPO baseline for aspo_code_1p5b. 1 node x 8 GPUs.
# Pinned to verl==0.9.1 (checked before start). Config: recipes/dapo_code_1p5b.yaml.
# Usage: bash recipes/dapo_code_1p5b.sh [hydra overrides...]     e.g. trainer.total_training_steps=500
# Env: ASPO_DATA_DIR (data), ASPO_CKPT_DIR (runs), ASPO_MODEL_PATH, NNODES, DRY_RUN=1 (print only).
# Multi-node: start Ray first (scripts/ray_start_head.sh / ray_start_worker.sh), then
# scripts/submit.sh dapo_code_1p5b, or run this on the head node with RAY_ADDRESS=auto.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_launch.sh" dapo_code_1p5b "$@"
