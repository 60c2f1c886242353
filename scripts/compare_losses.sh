#!/usr/bin/env bash
# Run the same recipe with several losses (same seeds, same data order), one after the other, then
# write one Markdown table and one PNG side by side (aspo/compare.py).
#
#   bash scripts/compare_losses.sh                         # smollm2_arith_cpu: aspo, vanilla, no_is
#   STEPS=8 LOSSES="aspo vanilla" OUT=docs bash scripts/compare_losses.sh trainer.test_freq=4
#   MODES="sync async" STALENESS=2 LOSSES="asympo spo aspo vanilla" bash scripts/compare_losses.sh
#
# Env: CONFIG (recipe name), LOSSES, STEPS, RUNS (root of the run dirs), OUT (where the table and
# plot go), STEM (their file name), PANELS (losses | async: which curves the plot shows; async
# when MODES has async). Extra arguments are overrides passed to every run.
#
# MODES (default sync): "async" runs verl's colocate_async trainer with generation STALENESS
# (default 2) batches ahead of training (trainer.v1.colocate_async.num_warmup_batches) and the
# rollout's behaviour log-probs as the old policy (algorithm.rollout_correction.bypass_mode=true,
# which ratio losses need and asympo/spo ignore). With two modes a run is named <loss>-<mode>, the
# modes of one loss run one after the other (so slow drifts in machine load hit both alike), and
# PAIRED=1 runs them side by side instead, one CPU thread each (ASPO_CPU_THREADS=1): fairer s/step,
# but two SmolLM2 runs need ~20 GiB together (one was OOM-killed on a 24 GiB machine beside other work).
# Each run's wall time and the load average at its end go to $RUNS/timing.txt.
#
# PAPER_AGG=1 (default) runs asympo and spo with the aggregation their papers define
# (actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean: each response weighs the same);
# the other losses keep the recipe's (token-mean). PAPER_AGG=0 gives every loss the recipe's.
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
MODES="${MODES:-sync}"
STALENESS="${STALENESS:-2}"
read -r -a modes <<< "$MODES"
PAIRED="${PAIRED:-0}"
PANELS="${PANELS:-$([[ " $MODES " == *" async "* ]] && echo async || echo losses)}"

mode_overrides() {
    case "$1" in
        sync) echo "trainer.v1.trainer_mode=sync" ;;
        async) echo "trainer.v1.trainer_mode=colocate_async trainer.v1.colocate_async.num_warmup_batches=$STALENESS algorithm.rollout_correction.bypass_mode=true" ;;
        *) echo "[compare] unknown mode '$1' in MODES; use sync and/or async" >&2; return 1 ;;
    esac
}

loss_overrides() {
    case "$1" in
        asympo|spo) [[ "${PAPER_AGG:-1}" == 1 ]] && echo "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean" ;;
    esac
    return 0
}

run_one() {  # loss mode name
    local dir="$RUNS/$3" extra
    extra="$(mode_overrides "$2") $(loss_overrides "$1")"
    local start=$SECONDS
    echo "[compare] $3 -> $dir (log: $dir.log)"
    # shellcheck disable=SC2086  # extra is a list of Hydra overrides
    aspo-train --config-name "$CONFIG" \
        actor_rollout_ref.actor.policy_loss.loss_mode="$1" \
        trainer.total_training_steps="$STEPS" \
        trainer.default_local_dir="$dir" \
        trainer.resume_mode=disable \
        $extra "${OVERRIDES[@]}" > "$dir.log" 2>&1
    echo "$3 wall_s=$((SECONDS - start)) loadavg_at_end=$(cut -d' ' -f1-3 /proc/loadavg) threads=${ASPO_CPU_THREADS:-all}" >> "$RUNS/timing.txt"
}

OVERRIDES=("$@")
for mode in "${modes[@]}"; do mode_overrides "$mode" > /dev/null; done
mkdir -p "$RUNS"
files=()
for loss in $LOSSES; do
    pids=()
    for mode in "${modes[@]}"; do
        name="$loss"; [[ ${#modes[@]} -gt 1 ]] && name="$loss-$mode"
        files+=("$name=$RUNS/$name/metrics.jsonl")
        if [[ "$PAIRED" == 1 ]]; then
            ASPO_CPU_THREADS=1 run_one "$loss" "$mode" "$name" & pids+=($!)
        else
            run_one "$loss" "$mode" "$name"
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
done

python - "$OUT" "$STEM" "$PANELS" "${files[@]}" <<'PY'
import sys
from aspo.compare import compare
out, stem, panels, *pairs = sys.argv[1:]
md, png = compare(dict(p.split("=", 1) for p in pairs), out, stem, panels)
print(open(md).read())
print(f"[compare] table: {md}\n[compare] plot:  {png}")
PY
