#!/usr/bin/env bash
# Join this node to an aspo Ray cluster.
#   bash scripts/ray_start_worker.sh <head-ip>[:port] [extra `ray start` args]
# Waits up to RAY_WAIT_S (300) seconds for the head to accept connections (SLURM starts nodes
# together). Env: RAY_PORT (6379), RAY_BLOCK=1 (stay in the foreground), DRY_RUN=1, ASPO_NODE_IP
# (the address this node advertises, for multi-homed hosts; default: Ray's choice), NCCL knobs:
# scripts/ray_env.sh. The cluster's auth token is read as Ray does (RAY_AUTH_TOKEN,
# RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token); without one this stops with the fix.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ray_env.sh"

head="${1:-${RAY_HEAD_ADDRESS:-}}"
if [ -z "$head" ]; then
    echo "usage: ray_start_worker.sh <head-ip>[:port] [ray start args]   (or set RAY_HEAD_ADDRESS)" >&2
    exit 2
fi
[ $# -gt 0 ] && shift
case "$head" in *:*) ;; *) head="$head:$RAY_PORT" ;; esac

if [ "${DRY_RUN:-0}" != 1 ]; then
    deadline=$(( $(date +%s) + ${RAY_WAIT_S:-300} ))
    until (exec 3<>"/dev/tcp/${head%:*}/${head##*:}") 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "[aspo-ray] head $head not reachable after ${RAY_WAIT_S:-300}s; start it with scripts/ray_start_head.sh" >&2
            exit 1
        fi
        sleep 2
    done
fi
aspo_require_token
args=("$RAY_BIN" start --address="$head")
if [ -n "${ASPO_NODE_IP:-}" ]; then args+=(--node-ip-address="$ASPO_NODE_IP"); fi
if [ "${RAY_BLOCK:-0}" = 1 ]; then args+=(--block); fi
echo "[aspo-ray] joining $head" >&2
aspo_run "${args[@]}" "$@"
