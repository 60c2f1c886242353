"""Checkpoint bookkeeping (aspo.checkpoint): atomic tracker, W&B id, fingerprint, metrics file."""

from __future__ import annotations

import json
import os

import pytest
from omegaconf import OmegaConf

from aspo import checkpoint
from aspo.fixtures import ensure_model


def test_tracker_write_is_atomic(tmp_path, monkeypatch):
    checkpoint.write_tracker(tmp_path, 2)
    assert checkpoint.read_tracker(tmp_path) == 2

    def crash(src, dst):  # the process dies between writing the new file and switching to it
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.write_tracker(tmp_path, 3)
    assert checkpoint.read_tracker(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.TRACKER], "no temporary files left behind"


def test_latest_checkpoint_needs_the_folder(tmp_path):
    checkpoint.write_tracker(tmp_path, 4)
    assert checkpoint.latest_checkpoint(tmp_path) is None
    (tmp_path / "global_step_4").mkdir()
    assert checkpoint.latest_checkpoint(tmp_path) == tmp_path / "global_step_4"


def test_wandb_run_id_is_kept_when_resuming_only(tmp_path):
    first = checkpoint.wandb_run_id(tmp_path, resuming=False)
    assert len(first) == 8 and first.isalnum()
    assert checkpoint.wandb_run_id(tmp_path, resuming=True) == first
    assert checkpoint.wandb_run_id(tmp_path, resuming=False) != first
    assert json.loads((tmp_path / checkpoint.RUN_STATE).read_text())["wandb_run_id"] != first


def test_truncate_metrics_keeps_checkpointed_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "data": {"x": s}}) for s in (0, 1, 2, 3)] + ['{"step": 4, "da']
    path.write_text("\n".join(lines) + "\n")
    assert checkpoint.truncate_metrics_after(path, 2) == 3
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [0, 1, 2]
    assert checkpoint.truncate_metrics_after(path, -1) == 0 and path.read_text() == ""


def _cfg(**over):
    cfg = {
        "actor_rollout_ref": {
            "model": {"path": str(ensure_model())},
            "actor": {"strategy": "fsdp2", "optim": {"optimizer": "AdamW"}},
        },
        "trainer": {"n_gpus_per_node": 1, "nnodes": 1, "resume_mode": "auto", "default_local_dir": "x"},
        "data": {"train_batch_size": 8},
    }
    cfg = OmegaConf.create(cfg)
    for key, value in over.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def test_fingerprint_mismatch_is_one_clear_error(tmp_path):
    fp = checkpoint.fingerprint(_cfg())
    assert fp["model.hidden_size"] == 64 and fp["data.train_batch_size"] == 8
    checkpoint.write_fingerprint(tmp_path, fp)
    checkpoint.check_fingerprint(tmp_path, checkpoint.fingerprint(_cfg()))  # same: fine
    with pytest.raises(checkpoint.CheckpointMismatchError) as err:
        checkpoint.check_fingerprint(tmp_path, checkpoint.fingerprint(_cfg(**{"data.train_batch_size": 16})))
    msg = str(err.value)
    assert "\n" not in msg and "data.train_batch_size: checkpoint 8 vs config 16" in msg and "resume_mode=disable" in msg


def test_check_resume_compatible_follows_resume_mode(tmp_path):
    step = tmp_path / "global_step_1"
    step.mkdir()
    checkpoint.write_tracker(tmp_path, 1)
    checkpoint.write_fingerprint(step, {"model.hidden_size": 999})
    cfg = _cfg(**{"trainer.default_local_dir": str(tmp_path)})
    with pytest.raises(checkpoint.CheckpointMismatchError):
        checkpoint.check_resume_compatible(cfg)
    cfg.trainer.resume_mode = "disable"
    assert checkpoint.check_resume_compatible(cfg) is None


def _steps(root):
    return sorted(int(p.name.split("_")[-1]) for p in root.glob("global_step_*") if p.name[-1].isdigit())


def test_prune_keeps_the_newest_and_never_the_tracked_one(tmp_path):
    for step in (2, 4, 6, 8):
        (tmp_path / f"global_step_{step}" / "actor").mkdir(parents=True)
    (tmp_path / "global_step_x").mkdir()  # not a step folder: left alone
    checkpoint.write_tracker(tmp_path, 8)
    removed = checkpoint.prune_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["global_step_2", "global_step_4"]
    assert _steps(tmp_path) == [6, 8] and (tmp_path / "global_step_x").is_dir()
    # The tracker still naming an older step (a save that died before its switch): that one stays.
    (tmp_path / "global_step_10").mkdir()
    checkpoint.write_tracker(tmp_path, 6)
    checkpoint.prune_checkpoints(tmp_path, 1)
    assert _steps(tmp_path) == [6, 10]


def test_prune_without_a_limit_deletes_nothing(tmp_path):
    for step in (1, 2):
        (tmp_path / f"global_step_{step}").mkdir()
    assert checkpoint.prune_checkpoints(tmp_path, None) == [] and checkpoint.prune_checkpoints(tmp_path, 0) == []
    assert _steps(tmp_path) == [1, 2]
