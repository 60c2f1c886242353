#!/usr/bin/env bash
# aspo_code_qwen3_8b: ASPO on Qwen3-8B, code (not in the paper; a starting point). 2 nodes x 8 GPUs.
# Pinned to verl==0.9.1 (checked before start). Config: recipes/aspo_code_qwen3_8b.yaml.
# Usage: bash recipes/aspo_code_qwen3_8b.sh [hydra overrides...]     e.g. trainer.total_training_steps=500
# Env: ASPO_DATA_DIR (data), ASPO_CKPT_DIR (runs), ASPO_MODEL_PATH, NNODES, DRY_RUN=1 (print only).
# Multi-node: start Ray first (scripts/ray_start_head.sh / ray_start_worker.sh), then
# scripts/submit.sh aspo_code_qwen3_8b, or run this on the head node with RAY_ADDRESS=auto.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_launch.sh" aspo_code_qwen3_8b "$@"
