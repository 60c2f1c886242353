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
# refused ("Missing authentication token"). Every node and client looks for it the way Ray does:
# RAY_AUTH_TOKEN=<secret>, else the file RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token. `ray start
# --head` does not create one: ray_start_head.sh (and aspo.sbatch) write a new token there, mode
# 0600, when none exists (aspo_ensure_token); workers and submit.sh stop with a clear error when
# they find none (aspo_require_token). Share it: a shared $HOME, RAY_AUTH_TOKEN_PATH=<shared file>,
# or RAY_AUTH_TOKEN in every node's environment. RAY_AUTH_MODE=disabled turns all of this off.
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

# aspo_token_file: where this node reads the Ray token from (unless RAY_AUTH_TOKEN is set).
aspo_token_file() { echo "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"; }

_aspo_token_auth() { [ "$(echo "${RAY_AUTH_MODE:-}" | tr '[:upper:]' '[:lower:]')" = token ]; }

# aspo_ensure_token: on the head, before `ray start --head`: a new random token (256 bits, as
# `ray get-auth-token --generate` makes) in aspo_token_file when no token is configured.
aspo_ensure_token() {
    _aspo_token_auth || return 0
    if [ -n "${RAY_AUTH_TOKEN:-}" ]; then
        echo "[aspo-ray] auth token: from RAY_AUTH_TOKEN" >&2
        return 0
    fi
    local file
    file="$(aspo_token_file)"
    if [ -s "$file" ]; then
        echo "[aspo-ray] auth token: $file" >&2
        return 0
    fi
    if [ "${DRY_RUN:-0}" = 1 ]; then
        echo "[aspo-ray] auth token: would create $file (mode 0600)" >&2
        return 0
    fi
    mkdir -p "$(dirname "$file")"
    local token
    token="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
    # umask: never readable by others, not even for a moment; noclobber: a head starting at the
    # same time on the shared $HOME keeps its token.
    (umask 077; set -C; printf '%s' "$token" > "$file") 2>/dev/null || true
    if [ ! -s "$file" ]; then
        echo "[aspo-ray] ERROR: could not write a Ray auth token to $file; set RAY_AUTH_TOKEN_PATH to a writable shared file or RAY_AUTH_TOKEN" >&2
        return 1
    fi
    chmod 600 "$file"
    echo "[aspo-ray] auth token: created $file (mode 0600); every node and client needs it: same \$HOME, RAY_AUTH_TOKEN_PATH=$file, or RAY_AUTH_TOKEN=\$(cat $file)" >&2
}

# aspo_require_token: on workers and clients: fail with the fix when no token can be found.
aspo_require_token() {
    _aspo_token_auth || return 0
    [ "${DRY_RUN:-0}" = 1 ] && return 0
    [ -n "${RAY_AUTH_TOKEN:-}" ] && return 0
    local file
    file="$(aspo_token_file)"
    [ -s "$file" ] && return 0
    echo "[aspo-ray] ERROR: no Ray auth token: RAY_AUTH_TOKEN is unset and $file is missing or empty. The head (scripts/ray_start_head.sh) writes one to its \$HOME/.ray/auth_token (or RAY_AUTH_TOKEN_PATH): share that \$HOME, point RAY_AUTH_TOKEN_PATH at a copy, or export RAY_AUTH_TOKEN=<its content>" >&2
    return 1
}

# aspo_node_ip: the address other nodes reach this one at, never a loopback one (an /etc/hosts
# line such as "127.0.1.1 <hostname>" makes `hostname --ip-address` return one). $ASPO_NODE_IP
# if set (multi-homed hosts: the address on the cluster network), else the source address of the
# default route, else the first of `hostname -I`, else what the hostname resolves to.
aspo_node_ip() {
    if [ -n "${ASPO_NODE_IP:-}" ]; then
        echo "$ASPO_NODE_IP"
        return 0
    fi
    local ip
    for ip in $(ip -4 route get 1.0.0.0 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}') \
              $(hostname -I 2>/dev/null) \
              $(getent ahostsv4 "$(hostname)" 2>/dev/null | awk '{print $1}') \
              $(hostname --ip-address 2>/dev/null); do
        case "$ip" in
            127.*|0.*|169.254.*|*:*|"") ;;       # loopback, unspecified, link-local, IPv6
            *.*.*.*) echo "$ip"; return 0 ;;
        esac
    done
    echo "[aspo-ray] ERROR: no non-loopback IPv4 address found for $(hostname); set ASPO_NODE_IP=<this node's address on the cluster network>" >&2
    return 1
}
