"""Checkpoint bookkeeping verl 0.9.1 does not do: atomic ``latest`` tracker, run fingerprint, W&B id.

Layout under ``trainer.default_local_dir`` (verl's own files plus ours)::

    latest_checkpointed_iteration.txt   verl's tracker; we write it atomically (tmp + rename)
    aspo_run.json                       {"wandb_run_id": ...}: a resumed run continues the same W&B run
    global_step_N/actor/...             verl: model, optimizer, LR schedule, RNG
    global_step_N/data.pt               verl: dataloader position
    global_step_N/aspo_fingerprint.json what the checkpoint was trained with (model shape, world size, ...)
    global_step_N/aspo_manifest.json    every file above with its size and checksum (``aspo.manifest``)

A kill -9 at any point of a save leaves the tracker naming the previous complete checkpoint: the
manifest is written after the step's files and the tracker is switched last, with ``os.replace``.
On resume (``resolve_resume``, in the driver before Ray starts) the tracked step's manifest is
verified; a missing, partial or corrupt step is skipped with one line and the tracker is rewritten
to the newest step that verifies, which is the one verl then loads. Pure functions over paths and
configs; the trainer (``aspo.runner``) and the driver (``aspo.train``) call them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from aspo import manifest

TRACKER = "latest_checkpointed_iteration.txt"
RUN_STATE = "aspo_run.json"
FINGERPRINT = "aspo_fingerprint.json"
# aspo_run.json key: the first step this run saved with a manifest. A step from then on without
# one is a save or copy that did not finish; an earlier one was written by an older aspo.
MANIFESTS_FROM = "manifests_from_step"


class CheckpointMismatchError(ValueError):
    """The checkpoint to resume was written for a different model or config."""


class CheckpointUnusableError(ValueError):
    """No checkpoint to resume passes verification; the message says which and how to go on."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; keep the usual permissions
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def write_tracker(ckpt_dir: str | Path, step: int) -> None:
    atomic_write_text(Path(ckpt_dir) / TRACKER, str(int(step)))


def prune_checkpoints(ckpt_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` ``global_step_*`` folders; returns what was deleted.

    Called only after the tracker names the new checkpoint. verl's own ``max_ckpt_to_keep`` prunes
    *before* writing the new one, so a crash during that save could leave ``latest`` naming a
    folder whose weights were already deleted; it also forgets checkpoints of earlier processes.
    The folder the tracker names is never deleted.
    """
    if keep is None or int(keep) <= 0:
        return []
    root = Path(ckpt_dir)
    latest = read_tracker(root)
    steps = sorted(
        int(p.name.removeprefix("global_step_"))
        for p in root.glob("global_step_*")
        if p.is_dir() and p.name.removeprefix("global_step_").isdigit()
    )
    removed = []
    for step in steps[: max(0, len(steps) - int(keep))]:
        if step != latest:
            folder = root / f"global_step_{step}"
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def read_tracker(ckpt_dir: str | Path) -> Optional[int]:
    path = Path(ckpt_dir) / TRACKER
    if not path.exists():
        return None
    text = path.read_text().strip()
    return int(text) if text else None


def step_dir(ckpt_dir: str | Path, step: int) -> Path:
    return Path(ckpt_dir) / f"global_step_{int(step)}"


def _step_numbers(ckpt_dir: Path) -> list[int]:
    """The ``global_step_N`` folders under ``ckpt_dir``, newest first."""
    names = (p.name.removeprefix("global_step_") for p in ckpt_dir.glob("global_step_*") if p.is_dir())
    return sorted((int(n) for n in names if n.isdigit()), reverse=True)


def latest_checkpoint(ckpt_dir: str | Path) -> Optional[Path]:
    step = read_tracker(ckpt_dir)
    if step is None:
        return None
    folder = Path(ckpt_dir) / f"global_step_{step}"
    return folder if folder.exists() else None


# ---- save: manifest before the tracker; resume: newest step that verifies ------------------


def begin_save(ckpt_dir: str | Path, step: int) -> None:
    """Remove what an earlier, unfinished save of ``step`` left behind (never the tracked step).

    After a crash, a disk-full save or a skipped corrupt checkpoint, the run redoes the step; its
    new files must not mix with the old ones, which the new manifest would then vouch for.
    """
    folder = step_dir(ckpt_dir, step)
    if folder.exists() and _read_tracker_or_none(Path(ckpt_dir)) != int(step):
        shutil.rmtree(folder)


def seal(ckpt_dir: str | Path, step: int) -> dict[str, Any]:
    """Write step ``step``'s manifest (call after all its files, before ``write_tracker``)."""
    sealed = manifest.write(step_dir(ckpt_dir, step))
    state = load_run_state(ckpt_dir)
    if MANIFESTS_FROM not in state:
        state[MANIFESTS_FROM] = int(step)
        atomic_write_text(Path(ckpt_dir) / RUN_STATE, json.dumps(state, indent=2))
    return sealed


def discard_partial(ckpt_dir: str | Path, step: int) -> bool:
    """After a failed save: delete the step's folder unless the tracker names it (frees the space a
    full disk needs back). Returns whether something was deleted."""
    folder = step_dir(ckpt_dir, step)
    if not folder.exists() or _read_tracker_or_none(Path(ckpt_dir)) == int(step):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def _read_tracker_or_none(root: Path) -> Optional[int]:
    try:
        return read_tracker(root)
    except (ValueError, OSError):  # a torn copy of the tracker
        return None


def _warn(message: str) -> None:
    print(f"[aspo] WARNING: {message}", file=sys.stderr, flush=True)


def problem_with(root: str | Path, step: int, warn: Callable[[str], None] = _warn) -> Optional[str]:
    """Why ``global_step_<step>`` cannot be resumed (one phrase), or ``None`` when it can.

    A step without a manifest is accepted, with a warning, when it predates this run's manifests
    (saved by an aspo before manifests, or by plain verl); otherwise it is an unfinished save or copy.
    """
    root = Path(root)
    folder = step_dir(root, step)
    if not folder.is_dir():
        return "its folder is missing"
    if manifest.exists(folder):
        return manifest.verify(folder)
    since = load_run_state(root).get(MANIFESTS_FROM)
    newer_than_a_sealed_step = any(manifest.exists(step_dir(root, s)) for s in _step_numbers(root) if s < step)
    if (since is not None and step >= int(since)) or newer_than_a_sealed_step:
        return f"it has no {manifest.MANIFEST} (a save or copy that did not finish)"
    warn(f"{folder} has no {manifest.MANIFEST} (saved before aspo wrote manifests): resuming from it unverified")
    return None


def resolve_resume(ckpt_dir: str | Path, warn: Callable[[str], None] = _warn) -> Optional[Path]:
    """The step folder ``resume_mode=auto`` should load: the newest one at or before the tracker that verifies.

    Each step skipped gets one ``warn`` line naming it and why; the tracker is then rewritten
    (atomically) to the step chosen, so verl's own lookup loads that one. With no tracker (lost
    in a copy), the newest step whose manifest verifies. ``None``: nothing to resume, train from
    scratch. Raises ``CheckpointUnusableError`` when checkpoints exist but none can be used.
    """
    root = Path(ckpt_dir)
    tracked = _read_tracker_or_none(root)
    steps = _step_numbers(root)
    if tracked is None:
        sealed = [s for s in steps if manifest.exists(step_dir(root, s))]
        for step in sealed:
            problem = manifest.verify(step_dir(root, step))
            if problem is None:
                warn(f"{root / TRACKER} is missing or unreadable; resuming from the newest verified checkpoint {step_dir(root, step)}")
                write_tracker(root, step)
                return step_dir(root, step)
            warn(f"skipping checkpoint {step_dir(root, step)}: {problem}")
        return None
    candidates = [tracked] + [s for s in steps if s < tracked]
    skipped = []
    for step in candidates:
        problem = problem_with(root, step, warn)
        if problem is None:
            if step != tracked:
                write_tracker(root, step)
            return step_dir(root, step)
        skipped.append(f"global_step_{step}: {problem}")
        warn(f"skipping checkpoint {step_dir(root, step)}: {problem}; falling back to the previous one")
    if not steps:  # the tracker names a step, but no step folder is left at all
        raise CheckpointUnusableError(
            f"{root / TRACKER} names step {tracked} but {root} holds no global_step_* folder; restore the "
            "checkpoints, or start fresh with trainer.resume_mode=disable or another trainer.default_local_dir"
        )
    raise CheckpointUnusableError(
        f"no usable checkpoint under {root} ({'; '.join(skipped)}); restore a good copy, or start fresh "
        "with trainer.resume_mode=disable or another trainer.default_local_dir"
    )


# ---- W&B run id -----------------------------------------------------------------------------


def load_run_state(ckpt_dir: str | Path) -> dict[str, Any]:
    path = Path(ckpt_dir) / RUN_STATE
    return json.loads(path.read_text()) if path.exists() else {}


def wandb_run_id(ckpt_dir: str | Path, resuming: bool) -> str:
    """The W&B run id for this run: the saved one when resuming, else a new one (saved)."""
    state = load_run_state(ckpt_dir)
    if resuming and state.get("wandb_run_id"):
        return str(state["wandb_run_id"])
    alphabet = string.ascii_lowercase + string.digits  # the characters of W&B's own run ids
    state["wandb_run_id"] = "".join(secrets.choice(alphabet) for _ in range(8))
    atomic_write_text(Path(ckpt_dir) / RUN_STATE, json.dumps(state, indent=2))
    return state["wandb_run_id"]


# ---- fingerprint ----------------------------------------------------------------------------

_ARCH_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "tie_word_embeddings",
)


def _model_arch(model_path: str, trust_remote_code: bool = False) -> dict[str, Any]:
    local = Path(os.path.expanduser(model_path)) / "config.json"
    if local.exists():
        raw = json.loads(local.read_text())
    else:  # hub id: transformers resolves (and caches) it
        from transformers import AutoConfig

        raw = AutoConfig.from_pretrained(model_path, trust_remote_code=trust_remote_code).to_dict()
    text = raw.get("text_config") or raw
    return {k: text.get(k, raw.get(k)) for k in _ARCH_KEYS if text.get(k, raw.get(k)) is not None}


def fingerprint(cfg: Any) -> dict[str, Any]:
    """What must not change between a checkpoint and the run that resumes it."""
    model = cfg.actor_rollout_ref.model
    actor = cfg.actor_rollout_ref.actor
    fp = {f"model.{k}": v for k, v in _model_arch(str(model.path), bool(model.get("trust_remote_code", False))).items()}
    lora = model.get("lora_rank", 0) or (model.get("lora", {}) or {}).get("rank", 0)
    fp.update(
        {
            "model.lora_rank": int(lora or 0),
            "actor.strategy": str(actor.strategy),
            "actor.optim.optimizer": str(actor.optim.get("optimizer", "AdamW")),
            "trainer.world_size": int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes),
            "data.train_batch_size": int(cfg.data.train_batch_size),
        }
    )
    return fp


def write_fingerprint(step_dir: str | Path, fp: dict[str, Any]) -> None:
    atomic_write_text(Path(step_dir) / FINGERPRINT, json.dumps(fp, indent=2, sort_keys=True))


def check_fingerprint(step_dir: str | Path, fp: dict[str, Any]) -> None:
    """Raise ``CheckpointMismatchError`` (one line, with the fix) when ``step_dir`` was written for another setup."""
    path = Path(step_dir) / FINGERPRINT
    if not path.exists():
        return  # written by plain verl: nothing to compare against
    saved = json.loads(path.read_text())
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs config {fp.get(k)!r}" for k in sorted(set(saved) | set(fp)) if saved.get(k) != fp.get(k)]
    if diffs:
        raise CheckpointMismatchError(
            f"cannot resume from {step_dir}: it was trained with a different model or config ({'; '.join(diffs)}); "
            "resume with the original settings, or start fresh with another trainer.default_local_dir "
            "or trainer.resume_mode=disable"
        )


def checkpoint_to_resume(cfg: Any) -> Optional[Path]:
    """The checkpoint verl will load for ``trainer.resume_mode`` (auto / resume_path / disable)."""
    mode = cfg.trainer.resume_mode
    if mode == "disable":
        return None
    if mode == "resume_path":
        path = cfg.trainer.get("resume_from_path")
        return Path(os.path.abspath(os.path.expanduser(path))) if path else None
    return latest_checkpoint(os.path.abspath(os.path.expanduser(cfg.trainer.default_local_dir)))


def check_resume_compatible(cfg: Any) -> Optional[Path]:
    """Driver-side check before Ray starts; returns the checkpoint that will be resumed, if any.

    ``resume_mode=auto``: the newest checkpoint that verifies (``resolve_resume``, which points the
    tracker at it); ``resume_path``: the folder given, which must verify.
    """
    mode = cfg.trainer.resume_mode
    if mode == "auto":
        folder = resolve_resume(os.path.abspath(os.path.expanduser(cfg.trainer.default_local_dir)))
    else:
        folder = checkpoint_to_resume(cfg)
        if folder is not None:
            if not folder.is_dir():
                problem = "it does not exist"
            elif manifest.exists(folder):
                problem = manifest.verify(folder)
            else:
                problem = None
                _warn(f"{folder} has no {manifest.MANIFEST} (saved before aspo wrote manifests): resuming from it unverified")
            if problem is not None:
                raise CheckpointUnusableError(
                    f"trainer.resume_from_path={folder} cannot be resumed: {problem}; give another global_step_* folder"
                )
    if folder is not None:
        check_fingerprint(folder, fingerprint(cfg))
    return folder


# ---- metrics file ----------------------------------------------------------------------------


def truncate_metrics_after(path: str | Path, step: int) -> int:
    """Keep the JSONL records up to ``step`` (those of steps a resumed run will redo are dropped).

    Returns how many records were kept. Atomic: a crash leaves the old file.
    """
    path = Path(path)
    if not path.exists():
        return 0
    kept = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record_step = json.loads(line).get("step", 0)
        except json.JSONDecodeError:  # a torn last line from a killed run
            continue
        if record_step is not None and record_step <= step:
            kept.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return len(kept)
