"""verl's asynchronous trainers (``trainer.v1.trainer_mode=colocate_async`` and ``separate_async``) on CPU
with every aspo addition.

Per mode, one run of 2 steps, then the same command with 4 (resume). Rollouts run one batch ahead of
training (``num_warmup_batches=1``), so steps train on responses sampled by an older policy; the
ratio-based loss takes the rollout's behaviour log-probs (``algorithm.rollout_correction.bypass_mode=true``,
required by preflight). ``separate_async`` runs with ``async_mode=separate_cpu``: a standalone ``hf``
rollout process generating while the trainer trains, fed the trainer's weights over gloo
(aspo.cpu.checkpoint_engine). Skip locally with ``-m "not slow"``.

The resumed colocate run also turns off ``aspo.reuse_rollout_log_probs``: its steps take the path a
vLLM rollout takes (bypass mode, no entropy from the rollout: the trainer's entropy-only pass).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ASYNC = ["trainer.v1.trainer_mode=colocate_async", "algorithm.rollout_correction.bypass_mode=true"]
SEPARATE = ["trainer.v1.trainer_mode=separate_async", "async_mode=separate_cpu", "algorithm.rollout_correction.bypass_mode=true"]


def _train(run_dir: Path, *overrides: str, mode: list[str] = ASYNC) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_FILE_LOGGER", "WANDB_"))}
    env.update({"WANDB_MODE": "offline", "ASPO_CPU_THREADS": env.get("ASPO_CPU_THREADS", "2")})
    cmd = [sys.executable, "-m", "aspo.train", "--config-name", "quickstart_tiny",
           f"trainer.default_local_dir={run_dir}", "data.train_max_samples=32", "trainer.save_freq=2",
           "trainer.test_freq=-1", *mode, *overrides]
    proc = subprocess.run(cmd, cwd=run_dir.parent, env=env, capture_output=True, text=True, timeout=800)
    (run_dir.parent / f"{run_dir.name}.{len(list(run_dir.parent.glob('*.log')))}.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def _steps(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def async_runs(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("async") / "colocate"
    first = _train(run_dir, "trainer.total_training_steps=2")
    records_first = _steps(run_dir)
    second = _train(run_dir, "trainer.total_training_steps=4", "aspo.reuse_rollout_log_probs=false")
    return {"dir": run_dir, "first": first, "second": second, "records_first": records_first, "records": _steps(run_dir)}


def test_async_steps_train_on_stale_samples(async_runs):
    by_step = {r["step"]: r["data"] for r in async_runs["records"]}
    staleness = {s: m["training/off_policy/trajectory_staleness/max"] for s, m in by_step.items()}
    assert max(staleness.values()) >= 1, staleness


SIGN_SPLIT = {
    "pos": ["actor/entropy_pos_adv", "response/repetition_20gram_pos_adv", "actor/nll_pos_adv", "actor/credit_w_pos_oldp_"],
    "neg": ["actor/entropy_neg_adv", "response/repetition_20gram_neg_adv", "actor/nll_neg_adv", "actor/credit_w_neg_oldp_"],
}


def assert_aspo_metrics_every_step(records: list[dict]) -> None:
    """aspo's metrics on every step; the sign-split ones for a sign the step's responses have."""
    sides_seen = set()
    for record in records:
        m = record["data"]
        context = (record["step"], {k: m.get(k) for k in ("response/share_pos_adv", "response/share_neg_adv",
                                                          "critic/advantages/max", "critic/advantages/min")})
        want = ["response/share_pos_adv", "response/share_neg_adv", "actor/pg_grad_share_pos",
                "actor/is_weight_pos_mean", "actor/pg_dualclipfrac_pos", "actor/entropy",
                "training/off_policy/trajectory_staleness/max"]
        for side, names in SIGN_SPLIT.items():
            if m.get(f"response/share_{side}_adv", 0) > 0:
                sides_seen.add(side)
                want += names
        if all(m.get(f"response/share_{side}_adv", 0) > 0 for side in SIGN_SPLIT):
            want.append("actor/nll_ratio_neg_pos")  # GRPO: a group with spread has both signs in its micro-batch
        missing = [k for k in want if not any(name.startswith(k) for name in m)]
        assert not missing, (missing, context)
    assert sides_seen == {"pos", "neg"}  # the run did exercise both sides


def test_async_run_has_aspo_metrics_every_step(async_runs):
    assert_aspo_metrics_every_step(async_runs["records"])


def assert_resumed_cleanly(runs: dict) -> None:
    """Steps 1-2, then a resume to 4: every step logged once, the tracker at 4, one W&B id, the
    TransferQueue state saved with the checkpoint (prompts taken but not yet trained on survive)."""
    assert [r["step"] for r in runs["records_first"]] == [1, 2]
    assert [r["step"] for r in runs["records"]] == [1, 2, 3, 4]
    assert "resuming from" in runs["second"].stdout + runs["second"].stderr
    assert (runs["dir"] / "latest_checkpointed_iteration.txt").read_text().strip() == "4"
    assert (runs["dir"] / "global_step_2" / "transfer_queue").is_dir()
    state = json.loads((runs["dir"] / "aspo_run.json").read_text())
    wandb_runs = sorted(p.name for p in (runs["dir"] / "wandb").glob("offline-run-*"))
    assert state.get("wandb_run_id") and len(wandb_runs) == 2, wandb_runs
    assert all(name.endswith(state["wandb_run_id"]) for name in wandb_runs), wandb_runs


def test_async_run_resumes_without_duplicated_or_lost_steps(async_runs):
    assert_resumed_cleanly(async_runs)


# ---- separate_async: a standalone rollout, weights over gloo --------------------------------------


@pytest.fixture(scope="module")
def separate_runs(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("async") / "separate"
    first = _train(run_dir, "trainer.total_training_steps=2", mode=SEPARATE)
    records_first = _steps(run_dir)
    second = _train(run_dir, "trainer.total_training_steps=4", mode=SEPARATE)
    return {"dir": run_dir, "first": first, "second": second, "records_first": records_first, "records": _steps(run_dir)}


def test_separate_async_generates_on_a_standalone_rollout_fed_over_gloo(separate_runs):
    log = separate_runs["first"].stdout + separate_runs["first"].stderr
    assert "rollout served by 1 standalone replicas only" in log  # hybrid_engine=false: no colocated replica
    for record in separate_runs["records"]:
        assert record["data"]["timing_s/update_weights"] > 0, record["step"]  # the gloo push after every step


def test_separate_async_steps_train_on_stale_samples(separate_runs):
    staleness = {r["step"]: r["data"]["training/off_policy/trajectory_staleness/max"] for r in separate_runs["records"]}
    assert max(staleness.values()) >= 1, staleness


def test_separate_async_run_has_aspo_metrics_every_step(separate_runs):
    assert_aspo_metrics_every_step(separate_runs["records"])


def test_separate_async_run_resumes_without_duplicated_or_lost_steps(separate_runs):
    assert_resumed_cleanly(separate_runs)
