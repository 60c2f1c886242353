#!/usr/bin/env bash
# Submit a recipe (or any command) to a running aspo Ray cluster.
#   bash scripts/submit.sh <recipe> [hydra overrides...]    # runs recipes/<recipe>.sh as a Ray job
#   bash scripts/submit.sh -- <command...>                  # any command as a Ray job
# Env:
#   RAY_HEAD_ADDRESS  head IP (default 127.0.0.1: run this on the head node); RAY_DASHBOARD_PORT (8265)
#   ASPO_SUBMIT=job   (default) `ray job submit`: the driver runs on the head, logs via `ray job logs`
#   ASPO_SUBMIT=driver  run the driver here, attached to the cluster (RAY_ADDRESS=<head>:<port>)
#   ASPO_NO_WAIT=1    return after submission instead of following the logs
#   NNODES            trainer.nnodes for the recipe; DRY_RUN=1 prints the command
#   ASPO_*, WANDB_*   exported ones are passed on to the job (ASPO_DATA_DIR...), WANDB_API_KEY is not
# The job runs `cd <this repo> && ...` on the head node: the repo, its venv (or the Docker image) and
# the data must be at the same paths on every node (shared filesystem or identical images). Relative
# output paths (runs/<project>/<experiment>) are made absolute against <this repo> by aspo-train.
# The cluster's auth token is read as Ray does (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/ray_env.sh"

if [ $# -eq 0 ]; then
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
if [ "$1" = "--" ]; then
    shift
    entry=("$@")
else
    recipe="$1"; shift
    [ -f "$ROOT/recipes/$recipe.sh" ] || {
        echo "[aspo] unknown recipe '$recipe'; available: $(cd "$ROOT/recipes" && ls *.sh | grep -v '^_' | sed 's/\.sh$//' | tr '\n' ' ')" >&2
        exit 2
    }
    entry=(bash "recipes/$recipe.sh" "$@")
fi

head="${RAY_HEAD_ADDRESS:-127.0.0.1}"
aspo_require_token
# A Ray job's driver runs in the head raylet's environment, not this shell's: pass on NNODES and
# the exported ASPO_*/WANDB_* knobs (ASPO_DATA_DIR, ASPO_CKPT_DIR, WANDB_PROJECT...), never the W&B key.
pass_env=""
for var in NNODES $(compgen -e | grep -E '^(ASPO_|WANDB_)' | grep -vxE 'ASPO_SUBMIT|ASPO_NO_WAIT|WANDB_API_KEY' | sort); do
    if [ -n "${!var:-}" ]; then pass_env+="$var=$(printf '%q' "${!var}") "; fi
done
entry_str="cd $(printf '%q' "$ROOT") && ${pass_env}$(printf '%q ' "${entry[@]}")"

case "${ASPO_SUBMIT:-job}" in
    job)
        cmd=("$RAY_BIN" job submit --address="http://$head:$RAY_DASHBOARD_PORT")
        if [ "${ASPO_NO_WAIT:-0}" = 1 ]; then cmd+=(--no-wait); fi
        cmd+=(-- bash -c "$entry_str")
        aspo_run "${cmd[@]}"
        ;;
    driver)
        aspo_run env RAY_ADDRESS="$head:$RAY_PORT" bash -c "$entry_str"
        ;;
    *)
        echo "[aspo] ASPO_SUBMIT must be job or driver, got '${ASPO_SUBMIT}'" >&2
        exit 2
        ;;
esac
