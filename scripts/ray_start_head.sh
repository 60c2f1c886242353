#!/usr/bin/env bash
# Start the Ray head of an aspo cluster on this node.
#   bash scripts/ray_start_head.sh [extra `ray start` args]      e.g. --num-gpus=8
# Then on every other node:  bash scripts/ray_start_worker.sh <this node's IP>
# and submit:                bash scripts/submit.sh aspo_math_1p5b
# Env: RAY_PORT (6379), RAY_DASHBOARD_PORT (8265), RAY_HEAD_IP (the address to advertise; default:
# aspo_node_ip in ray_env.sh, i.e. ASPO_NODE_IP or a detected non-loopback address), RAY_BLOCK=1
# (stay in the foreground, as SLURM needs), DRY_RUN=1 (print the command), NCCL knobs: ray_env.sh.
# The cluster's auth token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token, created there
# (mode 0600) when none exists; the other nodes and submit.sh read it the same way.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ray_env.sh"

head_ip="${RAY_HEAD_IP:-$(aspo_node_ip)}"
aspo_ensure_token
args=("$RAY_BIN" start --head --node-ip-address="$head_ip" --port="$RAY_PORT"
      --dashboard-host=0.0.0.0 --dashboard-port="$RAY_DASHBOARD_PORT")
if [ "${RAY_BLOCK:-0}" = 1 ]; then args+=(--block); fi
echo "[aspo-ray] head at $head_ip:$RAY_PORT (dashboard/jobs: http://$head_ip:$RAY_DASHBOARD_PORT)" >&2
aspo_run "${args[@]}" "$@"
