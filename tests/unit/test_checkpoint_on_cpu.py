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


# ---- manifest: written before the tracker, verified on resume -------------------------------


from aspo import manifest  # noqa: E402


def _save(root, step, shard_bytes=4096, seal=True):
    """A fake step folder in verl's layout, sealed and tracked as AspoTrainer._save_checkpoint does."""
    folder = root / f"global_step_{step}"
    (folder / "actor" / "huggingface").mkdir(parents=True)
    (folder / "actor" / "model_world_size_1_rank_0.pt").write_bytes(os.urandom(shard_bytes))
    (folder / "actor" / "huggingface" / "config.json").write_text("{}")
    (folder / "data.pt").write_bytes(b"dataloader %d" % step)
    if seal:
        checkpoint.seal(root, step)
        checkpoint.write_tracker(root, step)
    return folder


def _warnings():
    lines = []
    return lines, lines.append


def test_manifest_lists_every_file_and_catches_truncation_and_bit_flips(tmp_path):
    folder = _save(tmp_path, 1)
    listed = json.loads((folder / manifest.MANIFEST).read_text())
    assert sorted(listed["files"]) == ["actor/huggingface/config.json", "actor/model_world_size_1_rank_0.pt", "data.pt"]
    assert listed["files"]["actor/model_world_size_1_rank_0.pt"]["size"] == 4096
    assert manifest.verify(folder) is None
    shard = folder / "actor" / "model_world_size_1_rank_0.pt"
    data = bytearray(shard.read_bytes())
    data[100] ^= 1  # same size, one bit flipped
    shard.write_bytes(bytes(data))
    assert "actor/model_world_size_1_rank_0.pt does not match its" in manifest.verify(folder)
    assert manifest.verify(folder, check_hashes=False) is None
    with open(shard, "r+b") as f:
        f.truncate(1000)
    assert manifest.verify(folder) == "actor/model_world_size_1_rank_0.pt is 1000 bytes, the manifest says 4096 (truncated or partly copied)"
    (folder / "data.pt").unlink()
    assert manifest.verify(folder).startswith("actor/model_world_size_1_rank_0.pt is 1000 bytes"), "the first problem"
    shard.unlink()
    assert manifest.verify(folder) == "actor/model_world_size_1_rank_0.pt is missing"


def test_manifest_algorithms_verify_each_other(tmp_path):
    folder = _save(tmp_path, 1, seal=False)
    for algorithm in ("sha256", manifest.default_algorithm()):
        manifest.write(folder, algorithm)
        assert json.loads((folder / manifest.MANIFEST).read_text())["algorithm"] == algorithm
        assert manifest.verify(folder) is None


def test_resume_skips_a_truncated_checkpoint_with_one_line_and_retracks(tmp_path):
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    with open(tmp_path / "global_step_2" / "actor" / "model_world_size_1_rank_0.pt", "r+b") as f:
        f.truncate(10)
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_1"
    assert len(lines) == 1 and "global_step_2" in lines[0] and "model_world_size_1_rank_0.pt is 10 bytes" in lines[0]
    assert checkpoint.read_tracker(tmp_path) == 1, "verl reads the tracker: it must name the step to load"
    assert (tmp_path / "global_step_2").is_dir(), "kept for inspection; the next save of step 2 replaces it"


def test_resume_skips_a_tracked_step_that_is_missing_or_unsealed(tmp_path):
    _save(tmp_path, 1)
    checkpoint.write_tracker(tmp_path, 3)  # the tracker was copied, the folder was not
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_1"
    assert lines == [f"skipping checkpoint {tmp_path / 'global_step_3'}: its folder is missing; falling back to the previous one"]
    _save(tmp_path, 2, seal=False)  # files there, manifest not: a copy that stopped
    checkpoint.write_tracker(tmp_path, 2)
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_1"
    assert len(lines) == 1 and "global_step_2: it has no aspo_manifest.json (a save or copy that did not finish)" in lines[0]


def test_unsealed_step_is_partial_even_when_older_steps_were_pruned(tmp_path):
    _save(tmp_path, 1)
    import shutil

    shutil.rmtree(tmp_path / "global_step_1")
    _save(tmp_path, 2, seal=False)
    checkpoint.write_tracker(tmp_path, 2)
    # aspo_run.json remembers that this run writes manifests: step 2 is not an old-format checkpoint.
    with pytest.raises(checkpoint.CheckpointUnusableError) as err:
        checkpoint.resolve_resume(tmp_path, lambda line: None)
    msg = str(err.value)
    assert "\n" not in msg and "global_step_2: it has no aspo_manifest.json" in msg and "resume_mode=disable" in msg


def test_checkpoint_from_before_manifests_is_resumed_with_a_warning(tmp_path):
    _save(tmp_path, 1, seal=False)
    _save(tmp_path, 2, seal=False)
    checkpoint.write_tracker(tmp_path, 2)
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_2"
    assert len(lines) == 1 and "has no aspo_manifest.json (saved before aspo wrote manifests): resuming from it unverified" in lines[0]
    # The run goes on with this aspo: step 3 is sealed; a later fallback to step 2 still accepts it.
    _save(tmp_path, 3)
    (tmp_path / "global_step_3" / "data.pt").unlink()
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_2"
    assert "global_step_3: data.pt is missing" in lines[0] and "unverified" in lines[1]


def test_lost_tracker_resumes_the_newest_verified_step(tmp_path):
    _save(tmp_path, 1)
    _save(tmp_path, 2)
    _save(tmp_path, 3, seal=False)  # a save that died before its manifest
    (tmp_path / checkpoint.TRACKER).write_text("")  # a torn copy of the tracker
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(tmp_path, warn) == tmp_path / "global_step_2"
    assert len(lines) == 1 and "missing or unreadable" in lines[0] and checkpoint.read_tracker(tmp_path) == 2
    assert checkpoint.resolve_resume(tmp_path / "fresh", warn) is None, "nothing there: train from scratch"


def test_no_step_folder_left_is_a_clear_error(tmp_path):
    checkpoint.write_tracker(tmp_path, 4)
    with pytest.raises(checkpoint.CheckpointUnusableError, match="names step 4 but .* holds no global_step_"):
        checkpoint.resolve_resume(tmp_path, lambda line: None)


def test_resume_path_must_verify(tmp_path):
    folder = _save(tmp_path, 1)
    cfg = _cfg(**{"trainer.resume_mode": "resume_path", "trainer.resume_from_path": str(folder)})
    assert checkpoint.check_resume_compatible(cfg) == folder
    (folder / "data.pt").write_bytes(b"x")
    with pytest.raises(checkpoint.CheckpointUnusableError, match=r"resume_from_path=.*global_step_1 cannot be resumed: data.pt is 1 bytes"):
        checkpoint.check_resume_compatible(cfg)


def test_begin_save_and_discard_partial_never_touch_the_tracked_step(tmp_path):
    _save(tmp_path, 1)
    stale = _save(tmp_path, 2, seal=False)  # left by a killed save of step 2
    checkpoint.begin_save(tmp_path, 2)
    assert not stale.exists()
    checkpoint.begin_save(tmp_path, 1)
    assert checkpoint.discard_partial(tmp_path, 1) is False
    assert manifest.verify(tmp_path / "global_step_1") is None
    _save(tmp_path, 2, seal=False)
    assert checkpoint.discard_partial(tmp_path, 2) is True and not (tmp_path / "global_step_2").exists()


# ---- a save that runs out of disk space (a real ENOSPC on a small tmpfs) ---------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MiB tmpfs (the tests run as root in CI); skipped where mounting is not permitted."""
    import subprocess

    mnt = tmp_path / "small_disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill up (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


class _FakeWorkers:
    """Stands in for verl's actor worker group: writes one shard with real writes (ENOSPC is real)."""

    def __init__(self, shard_bytes, fill_disk=False):
        self.shard_bytes, self.fill_disk = shard_bytes, fill_disk

    def save_checkpoint(self, local_path, hdfs_path, step, max_ckpt_to_keep=None):
        os.makedirs(local_path, exist_ok=True)
        with open(os.path.join(local_path, "model_world_size_1_rank_0.pt"), "wb") as f:
            f.write(os.urandom(self.shard_bytes))
        if self.fill_disk:  # the shard fit; whatever is written next does not
            with open(os.path.join(local_path, "filler"), "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                        f.flush()
                except OSError:
                    pass


def _trainer(root, step, workers):
    from types import SimpleNamespace

    from aspo.runner import AspoTrainer

    trainer = AspoTrainer.__new__(AspoTrainer)  # no Ray, no workers: only the save path runs
    trainer.config = _cfg(**{
        "trainer.default_local_dir": str(root),
        "trainer.default_hdfs_dir": None,
        "trainer.max_actor_ckpt_to_keep": None,
        "actor_rollout_ref.actor.checkpoint": {"async_save": False},
    })
    trainer.global_steps = step
    trainer.actor_rollout_wg = workers
    trainer.use_critic = False
    trainer.train_dataloader = SimpleNamespace(state_dict=lambda: {"step": step})
    trainer.checkpoint_callback = SimpleNamespace(on_save=lambda **kwargs: None)
    return trainer


@pytest.mark.parametrize("where", ["writing a shard", "after the shards"])
def test_save_that_runs_out_of_space_leaves_the_previous_checkpoint_latest(small_disk, capsys, where):
    _trainer(small_disk, 1, _FakeWorkers(600_000))._save_checkpoint()
    assert checkpoint.read_tracker(small_disk) == 1 and manifest.verify(small_disk / "global_step_1") is None
    workers = _FakeWorkers(1_200_000) if where == "writing a shard" else _FakeWorkers(100_000, fill_disk=True)
    with pytest.raises(OSError) as err:
        _trainer(small_disk, 2, workers)._save_checkpoint()
    assert err.value.errno == 28  # ENOSPC
    assert checkpoint.read_tracker(small_disk) == 1
    assert not (small_disk / "global_step_2").exists(), "the partial folder is removed: the space is needed back"
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[aspo] ERROR")]
    assert len(errors) == 1 and "global_step_2 failed (OSError" in errors[0] and "No space left on device" in errors[0]
    assert errors[0].endswith(f"latest checkpoint: {small_disk / 'global_step_1'}")
    lines, warn = _warnings()
    assert checkpoint.resolve_resume(small_disk, warn) == small_disk / "global_step_1" and lines == []
    # Space freed, the run saves step 2 again.
    _trainer(small_disk, 2, _FakeWorkers(600_000))._save_checkpoint()
    assert checkpoint.read_tracker(small_disk) == 2 and manifest.verify(small_disk / "global_step_2") is None
