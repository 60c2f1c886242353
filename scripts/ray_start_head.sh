#!/usr/bin/env bash
# Start the Ray head of an aspo cluster on this node.
#   bash scripts/ray_start_head.sh [extra `ray start` args]      e.g. --num-gpus=8
# Then on every other node:  bash scripts/ray_start_worker.sh <this node's IP>
# and submit:                bash scripts/submit.sh aspo_math_1p5b
# Env: RAY_PORT (6379), RAY_DASHBOARD_PORT (8265), RAY_HEAD_IP (this host's IP), RAY_BLOCK=1 (stay in
# the foreground, as SLURM needs), DRY_RUN=1 (print the command), NCCL knobs: scripts/ray_env.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ray_env.sh"

head_ip="${RAY_HEAD_IP:-$(hostname -I 2>/dev/null | awk '{print $1}')}"
head_ip="${head_ip:-127.0.0.1}"
args=("$RAY_BIN" start --head --node-ip-address="$head_ip" --port="$RAY_PORT"
      --dashboard-host=0.0.0.0 --dashboard-port="$RAY_DASHBOARD_PORT")
if [ "${RAY_BLOCK:-0}" = 1 ]; then args+=(--block); fi
echo "[aspo-ray] head at $head_ip:$RAY_PORT (dashboard/jobs: http://$head_ip:$RAY_DASHBOARD_PORT)" >&2
aspo_run "${args[@]}" "$@"
