#!/usr/bin/env bash
# Shared launcher of the recipes/<name>.sh scripts: check verl==0.9.1 and the data files, then run
#   aspo-train --config-dir recipes --config-name <name> [trainer.nnodes=$NNODES] [overrides...]
# DRY_RUN=1 prints the command instead of running it (and skips the checks).
set -euo pipefail
RECIPES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: _launch.sh <recipe> [overrides...]}"
shift
[ -f "$RECIPES/$name.yaml" ] || { echo "[aspo] no recipe $RECIPES/$name.yaml" >&2; exit 2; }

TRAIN="${ASPO_TRAIN:-aspo-train}"
cmd=("$TRAIN" --config-dir "$RECIPES" --config-name "$name")
[ -n "${NNODES:-}" ] && cmd+=("trainer.nnodes=$NNODES")
cmd+=("$@")

if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "${cmd[@]}"; echo
    exit 0
fi

PY="${PYTHON:-python}"
"$PY" - <<'PY'
import sys
import verl
if verl.__version__ != "0.9.1":
    sys.exit(f"[aspo] recipes are pinned to verl==0.9.1, found {verl.__version__}: pip install 'verl[verl-core]==0.9.1'")
PY
# Fail before Ray starts if the parquet files are missing (data/README: scripts/prepare_*.py).
"$TRAIN" --config-dir "$RECIPES" --config-name "$name" "$@" --cfg job --resolve 2>/dev/null \
    | "$PY" -c '
import sys, yaml
from pathlib import Path
cfg = yaml.safe_load(sys.stdin)
files = []
for key in ("train_files", "val_files"):
    v = cfg["data"][key]
    files += v if isinstance(v, list) else [v]
missing = [f for f in files if not Path(f).exists()]
if missing:
    sys.exit("[aspo] missing data file(s): " + ", ".join(missing) +
             ". Prepare them: python scripts/prepare_math.py --out $ASPO_DATA_DIR/math (or prepare_code.py), "
             "or point ASPO_DATA_DIR at them.")
' || exit 2
exec "${cmd[@]}"
