#!/usr/bin/env bash
# Run the same recipe with several losses (same seeds, same data order), one after the other, then
# write one Markdown table and one PNG side by side (aspo/compare.py).
#
#   bash scripts/compare_losses.sh                         # smollm2_arith_cpu: aspo, vanilla, no_is
#   STEPS=8 LOSSES="aspo vanilla" OUT=docs bash scripts/compare_losses.sh trainer.test_freq=4
#
# Env: CONFIG (recipe name), LOSSES, STEPS, RUNS (root of the run dirs), OUT (where the table and
# plot go), STEM (their file name). Extra arguments are overrides passed to every run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/setup_env.sh

CONFIG="${CONFIG:-smollm2_arith_cpu}"
LOSSES="${LOSSES:-aspo vanilla no_is}"
STEPS="${STEPS:-20}"
RUNS="${RUNS:-runs/compare-$CONFIG}"
OUT="${OUT:-$RUNS}"
STEM="${STEM:-$CONFIG}"

files=()
for loss in $LOSSES; do
    dir="$RUNS/$loss"
    echo "[compare] $loss -> $dir (log: $dir.log)"
    mkdir -p "$RUNS"
    aspo-train --config-name "$CONFIG" \
        actor_rollout_ref.actor.policy_loss.loss_mode="$loss" \
        trainer.total_training_steps="$STEPS" \
        trainer.default_local_dir="$dir" \
        trainer.resume_mode=disable \
        "$@" > "$dir.log" 2>&1
    files+=("$loss=$dir/metrics.jsonl")
done

python - "$OUT" "$STEM" "${files[@]}" <<'PY'
import sys
from aspo.compare import compare
out, stem, *pairs = sys.argv[1:]
md, png = compare(dict(p.split("=", 1) for p in pairs), out, stem)
print(open(md).read())
print(f"[compare] table: {md}\n[compare] plot:  {png}")
PY
