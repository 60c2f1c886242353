# Sourced by aspo.sbatch: aspo_run_requeueable CMD... runs the driver so that SLURM's warning signal
# reaches it, and requeues the job when the driver stops for preemption.
#
# `#SBATCH --signal=B:USR1@<s>` sends USR1 to this batch shell only, <s> seconds before the time
# limit. bash runs a trap only once its foreground child has exited, so the driver runs in the
# background and the shell waits for it. The first USR1 or TERM is forwarded to the driver, which
# stops after its current step with a checkpoint and exits 75 (aspo/preemption.py); later ones are
# not (at the time limit SLURM signals every process itself, and a second signal would make the
# driver give up at once). On exit 75 -- or when the forwarded signal killed the launcher before
# aspo-train took it over -- the job requeues itself (`scontrol requeue`, needs `#SBATCH --requeue`)
# and the requeued job resumes from that checkpoint (trainer.resume_mode=auto).

ASPO_EXIT_PREEMPTED=75

aspo_run_requeueable() {
    local rc=0
    _aspo_forwarded=""
    "$@" &
    _aspo_driver=$!
    trap '_aspo_forward USR1' USR1
    trap '_aspo_forward TERM' TERM
    while :; do
        rc=0
        wait "$_aspo_driver" || rc=$?
        # A trap interrupts `wait` (status > 128) while the driver runs on: wait again.
        if [ "$rc" = 127 ] || ! kill -0 "$_aspo_driver" 2>/dev/null; then break; fi
    done
    trap - USR1 TERM
    if [ "$rc" = "$ASPO_EXIT_PREEMPTED" ] || { [ -n "$_aspo_forwarded" ] && [ "$rc" -gt 128 ]; }; then
        if [ -n "${SLURM_JOB_ID:-}" ]; then
            echo "[aspo-slurm] the driver stopped for preemption (exit $rc): requeueing job $SLURM_JOB_ID" >&2
            ${SCONTROL:-scontrol} requeue "$SLURM_JOB_ID" \
                || echo "[aspo-slurm] scontrol requeue failed: submit the same command again to resume" >&2
        else
            echo "[aspo-slurm] the driver stopped for preemption (exit $rc); rerun the same command to resume" >&2
        fi
    fi
    return "$rc"
}

_aspo_forward() {
    if [ -z "$_aspo_forwarded" ]; then
        _aspo_forwarded=$1
        echo "[aspo-slurm] SIG$1: asking the driver (pid $_aspo_driver) to stop after its current step" >&2
        kill -s "$1" "$_aspo_driver" 2>/dev/null || true
    fi
}
