#!/usr/bin/env bash
# The GPU check: every paper recipe at tiny size on this machine's GPU, 2 steps each, then a table.
#
#   bash scripts/gpu_check.sh                          # all recipes in recipes/
#   bash scripts/gpu_check.sh aspo_math_1p5b dapo_code_1p5b -- trainer.test_freq=1   # some, with overrides
#   DRY_RUN=1 bash scripts/gpu_check.sh                # print what would run, run nothing
#
# Env: STEPS (2), OUT (runs/gpu_check), DRY_RUN (0). It installs the `gpu` extra (vLLM) through
# scripts/setup_env.sh, runs `aspo-train --config-name <recipe> scale=tiny hardware=cuda` per recipe
# (a tiny random model and shipped fixture data: nothing to download; every algorithmic setting is the
# recipe's), and prints recipe, exit status, steps, s/step and two key metrics (mean score and
# rollout_corr/log_ppl_diff_max: vLLM vs trainer log-probs, small when weight sync works).
# NOT YET RUN ON A GPU: written and dry-run tested on CPU only (README: which paths have run where).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEPS="${STEPS:-2}"
OUT="${OUT:-runs/gpu_check}"
DRY_RUN="${DRY_RUN:-0}"

recipes=()
overrides=()
seen_sep=0
for arg in "$@"; do
    if [ "$arg" = "--" ]; then seen_sep=1; continue; fi
    if [ "$seen_sep" = 1 ]; then overrides+=("$arg"); else recipes+=("$arg"); fi
done
if [ "${#recipes[@]}" = 0 ]; then
    for f in recipes/*.yaml; do recipes+=("$(basename "$f" .yaml)"); done
fi
for r in "${recipes[@]}"; do
    if [ ! -f "recipes/$r.yaml" ]; then
        echo "gpu_check: unknown recipe '$r'; choose from: $(cd recipes && ls *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')" >&2
        exit 2
    fi
done
case "$STEPS" in ''|*[!0-9]*) echo "gpu_check: STEPS must be a positive integer, got '$STEPS'" >&2; exit 2;; esac

if [ "$DRY_RUN" = 1 ]; then
    echo "source scripts/setup_env.sh"
else
    if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
        echo "gpu_check: no CUDA GPU found (nvidia-smi); on CPU rehearse with hardware=cpu_vllm (README), or DRY_RUN=1" >&2
        exit 2
    fi
    # shellcheck disable=SC1091
    source scripts/setup_env.sh   # on a GPU machine: the gpu extra (vLLM, its torch)
    mkdir -p "$OUT"
fi

for r in "${recipes[@]}"; do
    cmd=(aspo-train --config-dir recipes --config-name "$r" scale=tiny hardware=cuda
         "trainer.total_training_steps=$STEPS" "trainer.default_local_dir=$OUT/$r" trainer.resume_mode=disable
         "trainer.logger=[console,file]" ${overrides[@]+"${overrides[@]}"})
    if [ "$DRY_RUN" = 1 ]; then
        printf '%q ' "${cmd[@]}"; echo
        continue
    fi
    echo "[gpu_check] $r: ${cmd[*]} (log: $OUT/$r.log)" >&2
    rm -rf "${OUT:?}/$r"
    start=$(date +%s)
    WANDB_MODE="${WANDB_MODE:-disabled}" VERL_FILE_LOGGER_PATH="$OUT/$r/metrics.jsonl" "${cmd[@]}" > "$OUT/$r.log" 2>&1
    rc=$?
    echo "$rc $(( $(date +%s) - start ))" > "$OUT/$r.status"
done

[ "$DRY_RUN" = 1 ] && exit 0
python scripts/run_table.py "$OUT" "${recipes[@]}"
