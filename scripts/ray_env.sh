#!/usr/bin/env bash
# Environment for every Ray node of an aspo cluster. Sourced by ray_start_head.sh and
# ray_start_worker.sh *before* `ray start`: Ray workers inherit the raylet's environment, so what is
# set here reaches every trainer and rollout process on the node. Every knob keeps a value already
# set in the environment; set them in your job script or shell to override.
#
# NCCL. Defaults are safe for most clusters; the right values depend on the fabric:
#   NCCL_SOCKET_IFNAME   network interface for bootstrap/TCP (e.g. eth0, ib0, ^lo,docker)
#   NCCL_IB_HCA          InfiniBand adapters to use (e.g. mlx5); NCCL_IB_DISABLE=1 forces TCP
#   NCCL_IB_GID_INDEX    RoCE GID index (often 3 on RoCE v2)
#   NCCL_DEBUG=INFO      print the chosen transport once when debugging a hang
# ASPO_NCCL_PROFILE=archer applies the exact set of the official Archer2.0 cluster
# (tools/start_ray.sh): IB via mlx5, GID index 3, 4 QPs per connection, 16 channels, and
# P2P/SHM disabled -- the last two slow down NVLink machines, so they are not our default.

_aspo_default() { if [ -z "${!1:-}" ]; then export "$1=$2"; fi; }

_aspo_default NCCL_DEBUG WARN
_aspo_default TORCH_NCCL_ASYNC_ERROR_HANDLING 1
# verl's hang watchdog kills long vLLM generations on some clusters; Archer2.0 turned it off.
_aspo_default TORCH_NCCL_ENABLE_MONITORING 0
_aspo_default HYDRA_FULL_ERROR 1
_aspo_default TOKENIZERS_PARALLELISM false

if [ "${ASPO_NCCL_PROFILE:-}" = archer ]; then
    _aspo_default NCCL_IB_DISABLE 0
    _aspo_default NCCL_IB_HCA mlx5
    _aspo_default NCCL_IB_GID_INDEX 3
    _aspo_default NCCL_IB_QPS_PER_CONNECTION 4
    _aspo_default NCCL_MIN_NCHANNELS 16
    _aspo_default NCCL_P2P_DISABLE 1
    _aspo_default NCCL_SHM_DISABLE 1
fi

# Ray 2.5x+ protects a `ray start --head` cluster with a token; clients that do not know it are
# refused ("Missing authentication token"). Say so explicitly on every node and client, and share one
# token: a shared $HOME (~/.ray/auth_token, created by the head), RAY_AUTH_TOKEN_PATH=<shared file>,
# or RAY_AUTH_TOKEN=<secret> in the job environment (`ray get-auth-token --generate` makes one).
_aspo_default RAY_AUTH_MODE token

_aspo_default RAY_PORT 6379
_aspo_default RAY_DASHBOARD_PORT 8265
_aspo_default RAY_BIN ray

# aspo_run CMD...: run, or print under DRY_RUN=1.
aspo_run() {
    if [ "${DRY_RUN:-0}" = 1 ]; then
        printf '+ '; printf '%q ' "$@"; echo
    else
        "$@"
    fi
}
