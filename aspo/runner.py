"""verl's TaskRunner, trainer and worker, each extended by subclassing (no fork of verl).

``aspo.train`` hands ``AspoTaskRunner`` to verl's own ``run_ppo`` (the documented way for recipes
to change the TaskRunner). The runner builds verl's trainer of ``trainer.v1.trainer_mode`` with
``AspoTrainerMixin`` in front (``AspoTrainer`` for sync), which keeps verl's training loop and adds,
through verl's own hooks:

- checkpoints: atomic ``latest`` tracker, run fingerprint, W&B run id saved next to them
  (``aspo.checkpoint``). Resuming exactly at an epoch boundary needs nothing extra in verl 0.9.1's
  v1 loop (it refills the dataloader on StopIteration); tests/integration covers it;
- metrics: entropy and 20-gram repetition split by advantage sign (``aspo.metrics``);
- the JSONL metrics file appended on resume instead of truncated;
- reproducibility: each step's responses ordered by content, not completion time, before the
  mini-batch split, so a resumed run feeds its updates the same mini-batches as an uninterrupted
  one (the update arithmetic itself is not bit-reproducible on CPU: tests/integration);
- preemption: a stop request honoured between two steps (``aspo.preemption.PreemptibleTrainer``);
- ``AspoActorRolloutRefWorker``: gloo + thread count on CPU, an unpinned offload policy for the KL
  reference model on CPU (``aspo.patches.unpinned_ref_offload``), entropy passed to the policy
  loss when the entropy-aware clip is on (``aspo.patches.entropy_to_loss``).
"""

from __future__ import annotations

import logging
import os
import sys

import ray

from aspo import checkpoint
from aspo._verl_compat import check_verl_version
from aspo.dynamic_sampling import cap_from_config
from aspo.preemption import PreemptibleTrainer

check_verl_version("aspo.runner")

from verl.experimental.separation.engine_workers import DetachActorWorker  # noqa: E402
from verl.single_controller.base.decorator import Dispatch, register  # noqa: E402
from verl.trainer.main_ppo import TaskRunnerV1  # noqa: E402
from verl.trainer.ppo.utils import Role  # noqa: E402
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync  # noqa: E402
from verl.workers.engine_workers import ActorRolloutRefWorker  # noqa: E402

logger = logging.getLogger(__name__)


class AspoActorRolloutRefWorker(ActorRolloutRefWorker):
    """verl's hybrid actor/rollout/ref worker, plus CPU set-up and the entropy-aware loss hook."""

    def __init__(self, config, role: str, distillation_config=None, **kwargs):
        super().__init__(config, role, distillation_config=distillation_config, **kwargs)
        from verl.utils.device import get_device_name

        if get_device_name() == "cpu":
            from aspo.cpu.distributed import init_gloo_process_group, set_torch_threads
            from aspo.patches import unpinned_ref_offload

            set_torch_threads()
            init_gloo_process_group()
            unpinned_ref_offload.install()  # the KL reference model's offload policy pins memory

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def init_model(self):
        super().init_model()
        if self.actor is not None and not self.distillation_enabled:
            from aspo.patches import entropy_to_loss, loss_diagnostics

            if loss_diagnostics.diagnostics_enabled(getattr(self.loss_fn, "keywords", {}).get("config")):
                loss_diagnostics.install()  # before entropy_to_loss, which wraps the same lookup

            loss_fn = entropy_to_loss.loss_fn_for(self.loss_fn)
            if loss_fn is not None:  # entropy-aware clip on: the loss gets entropy=
                self.loss_fn = loss_fn
                self.actor.set_loss_fn(loss_fn)


class AspoDetachActorWorker(AspoActorRolloutRefWorker, DetachActorWorker):
    """``separate_async``'s worker (verl's ``DetachActorWorker``: save/restore the policy on CPU for
    decoupled PPO) with aspo's additions."""


def _aspo_worker(remote_cls):
    """aspo's worker in place of the one verl mapped a role to (keeping DetachActorWorker's methods)."""
    base = getattr(remote_cls, "__ray_actor_class__", None)
    if base is not None and issubclass(base, DetachActorWorker):
        return ray.remote(AspoDetachActorWorker)
    return ray.remote(AspoActorRolloutRefWorker)


class AppendingFileLogger:
    """verl's ``FileLogger`` record format (``{"step": ..., "data": {...}}`` per line), opened for append."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.fp = open(path, "ab", buffering=0)

    def log(self, data: dict, step: int) -> None:
        import orjson

        self.fp.write(orjson.dumps({"step": step, "data": data}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")

    def finish(self) -> None:
        self.fp.close()


# Test hook: SIGKILL this process in the middle of saving checkpoint N (after the step's files, before
# the tracker switch), to check that a crash during a save leaves the previous checkpoint as latest.
FAULT_KILL_DURING_SAVE = "ASPO_FAULT_KILL_DURING_SAVE"


def reuses_rollout_log_probs(config) -> bool:
    """Whether the rollout's log-probs may stand for the old policy's (``aspo.reuse_rollout_log_probs``).

    Yes in sync mode (the rollout sampled with the trainer's current weights) and in bypass mode
    (old = behaviour log-probs by definition). Not in decoupled PPO (an async mode without bypass):
    there the old log-probs are the *current* policy's, and reusing the rollout's would make its
    importance weights 1, turning it silently into bypass mode.
    """
    if not config.get("aspo", {}).get("reuse_rollout_log_probs", False):
        return False
    mode = config.trainer.get("v1", {}).get("trainer_mode", "sync")
    corr = config.algorithm.get("rollout_correction", None) or {}
    return mode == "sync" or bool(corr.get("bypass_mode", False))


class AspoTrainerMixin(PreemptibleTrainer):
    """aspo's checkpoint, logging, metric and old-policy additions, for any of verl's v1 trainers.

    Written once and composed with verl's trainer of each ``trainer.v1.trainer_mode`` (``sync``,
    ``colocate_async``, ``separate_async``; ``trainer_class``): every override calls ``super()``
    (or replicates a method verl's modes share, ``_save_checkpoint``), so the mode's own behaviour
    stays verl's. ``PreemptibleTrainer`` (``aspo.preemption``) stops at a safe point on request.
    """

    _metrics_path: str | None = None

    def _init_resource_pool_mgr(self):
        super()._init_resource_pool_mgr()
        for role in (Role.ActorRollout, Role.ActorRolloutRef, Role.Actor, Role.RefPolicy):
            if role in self.role_worker_mapping:
                self.role_worker_mapping[role] = _aspo_worker(self.role_worker_mapping[role])

    def _build_replay_buffer(self):
        buffer = super()._build_replay_buffer()
        # verl polls for finished rollouts every 2 s (not configurable); on the quickstart a whole
        # generation takes ~0.2 s, so the poll dominated the step. aspo.replay_poll_interval_s sets it.
        interval = self.config.get("aspo", {}).get("replay_poll_interval_s", None)
        if interval is not None and hasattr(buffer, "poll_interval"):
            buffer.poll_interval = float(interval)
        # verl's v1 replay buffer refills filtered groups with no cap: enforce max_num_gen_batches.
        self._gen_batch_cap = cap_from_config(self.config)
        if self._gen_batch_cap is not None and getattr(buffer, "refill_fn", None) is not None:
            buffer.refill_fn = self._gen_batch_cap.wrap(buffer.refill_fn)
            print(
                f"[aspo] algorithm.filter_groups.max_num_gen_batches={self._gen_batch_cap.max_num_gen_batches} is "
                "enforced by aspo's trainer (verl's warning that it is ignored does not apply)",
                flush=True,
            )
        return buffer

    def on_sample_begin(self):
        cap = getattr(self, "_gen_batch_cap", None)
        if cap is not None:
            cap.start_step(self.global_steps)
        super().on_sample_begin()

    def get_llm_client(self):
        client = super().get_llm_client()
        from verl.workers.rollout.llm_server import FullyAsyncLLMServerClient

        if type(client) is FullyAsyncLLMServerClient and self.config.actor_rollout_ref.rollout.name == "hf":
            # Partial rollouts (async modes) would drop the hf rollout's entropy between attempts.
            from aspo.cpu.async_client import EntropyKeepingAsyncClient

            # separate_async generates on its standalone replicas, colocate_async on the hybrid ones.
            manager = getattr(self, "standalone_server_manager", None) or self.llm_server_manager
            client = manager.get_client(client_cls=EntropyKeepingAsyncClient)
        return client

    # ---- old policy ---------------------------------------------------------------------------

    def _compute_old_log_prob(self, batch, metrics):
        """verl's old-log-prob pass, or (``aspo.reuse_rollout_log_probs``) the rollout's own numbers.

        The CPU ``hf`` rollout samples with the trainer's fp32 weights and returns each token's
        log-prob and entropy: in sync mode (weights synced before every step) a second forward pass
        over the batch would recompute them (measured KL between the two ~2e-5) for ~15% of the
        step; in bypass mode they are the old log-probs by definition. Decoupled PPO (async, no
        bypass) needs them recomputed under the current policy, so it never reuses
        (``reuses_rollout_log_probs``). Rows without the rollout's entropy fall back to verl's pass.

        In verl's bypass mode (``algorithm.rollout_correction.bypass_mode=true``, what async runs
        use) verl takes the rollout's log-probs and computes no entropy at all; with a rollout that
        sends none (vLLM) ``actor/entropy`` and the sign-split entropy would be lost, so one
        entropy-only forward pass (``_compute_entropy``) supplies it.
        """
        if reuses_rollout_log_probs(self.config):
            reused = self._reuse_rollout_log_probs(batch, metrics)
            if reused is not None:
                return reused
        batch = super()._compute_old_log_prob(batch, metrics)
        if "actor/entropy" not in metrics:  # bypass mode: verl wrote old_log_probs only
            self._compute_entropy(batch, metrics)
        return batch

    def _reuse_rollout_log_probs(self, batch, metrics):
        """The rollout's log-probs as old log-probs and its entropy; ``None`` when a row lacks them."""
        import torch
        import transfer_queue as tq

        from verl.utils import tensordict_utils as tu

        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["rollout_log_probs", "extra_fields", "response_mask"],
        )
        lengths = data["response_mask"].offsets().diff().tolist()
        extras = tu.get(data, "extra_fields")
        extras = extras.tolist() if hasattr(extras, "tolist") else list(extras)
        entropy = [(row or {}).get("rollout_entropy") for row in extras]
        if any(e is None or len(e) != n for e, n in zip(entropy, lengths, strict=True)):
            logger.warning("aspo.reuse_rollout_log_probs: the rollout sent no per-token entropy; recomputing")
            return None
        entropy = torch.nested.as_nested_tensor(
            [torch.tensor(e, dtype=torch.float32) for e in entropy], layout=torch.jagged
        )
        fields = data.select("rollout_log_probs", "response_mask")
        fields["old_log_probs"] = fields.pop("rollout_log_probs")
        fields["entropy"] = entropy
        batch = tq.kv_batch_put(
            keys=batch.keys, partition_id=batch.partition_id, fields=fields.select("old_log_probs", "entropy")
        )
        metrics["actor/entropy"] = self._mean_entropy(fields)
        return batch

    def _compute_entropy(self, batch, metrics) -> None:
        """The actor's entropy of the batch (current weights), without touching ``old_log_probs``.

        The same worker call verl's non-bypass pass makes; its log-probs are left unused."""
        import transfer_queue as tq

        from verl.workers.utils.padding import response_from_nested

        batch.extra_info.update(
            {"calculate_entropy": True, "compute_loss": False, "temperature": self.config.actor_rollout_ref.rollout.temperature}
        )
        self.actor_rollout_wg.compute_log_prob(batch)
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["entropy", "response_mask"])
        data["entropy"] = response_from_nested(data.pop("entropy"), data["response_mask"])
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=data.select("entropy"))
        metrics["actor/entropy"] = self._mean_entropy(data)

    def _mean_entropy(self, fields) -> float:
        """``actor/entropy`` as verl logs it: the loss aggregation of the per-token entropy."""
        from verl.trainer.ppo.core_algos import agg_loss

        actor = self.config.actor_rollout_ref.actor
        padded = fields.select("entropy", "response_mask").to_padded_tensor()
        return agg_loss(
            loss_mat=padded["entropy"],
            loss_mask=padded["response_mask"],
            loss_agg_mode=actor.loss_agg_mode,
            loss_scale_factor=actor.loss_scale_factor,
        ).item()

    # ---- checkpoints ----------------------------------------------------------------------

    def _ckpt_root(self) -> str:
        root = os.path.expanduser(self.config.trainer.default_local_dir)
        return root if os.path.isabs(root) else os.path.join(os.getcwd(), root)

    def _load_checkpoint(self):
        step_dir = checkpoint.checkpoint_to_resume(self.config)
        if step_dir is not None:
            checkpoint.check_fingerprint(step_dir, checkpoint.fingerprint(self.config))
        super()._load_checkpoint()

    def _save_checkpoint(self):
        """verl's ``_save_checkpoint`` (shared by every v1 mode), with a fingerprint, a manifest and an atomic tracker switch.

        Order matters: every file of step N, then its manifest (sizes, checksums), is written before
        the tracker names N, and the tracker is replaced atomically, so a kill or a full disk at any
        point leaves the previous checkpoint as latest; resume verifies the manifest.
        """
        step, root = self.global_steps, self.config.trainer.default_local_dir
        checkpoint.begin_save(root, step)
        try:
            self._write_checkpoint()
        except BaseException as err:
            removed = checkpoint.discard_partial(root, step)  # frees what a full disk needs back
            cause = (str(err).strip().splitlines() or [""])[-1][:300]  # a Ray error ends with the worker's
            latest = checkpoint.latest_checkpoint(root)
            print(
                f"[aspo] ERROR: saving checkpoint global_step_{step} failed ({type(err).__name__}: {cause})"
                f"{'; removed its partial folder' if removed else ''}; latest checkpoint: {latest or 'none'}",
                file=sys.stderr,
                flush=True,
            )
            raise

    def _write_checkpoint(self):
        import torch

        from verl.utils.fs import local_mkdir_safe

        trainer_cfg = self.config.trainer
        step = self.global_steps
        root = trainer_cfg.default_local_dir
        step_dir = os.path.join(root, f"global_step_{step}")
        remote_root = trainer_cfg.default_hdfs_dir
        keep_actor = trainer_cfg.get("max_actor_ckpt_to_keep", None)
        keep_critic = trainer_cfg.get("max_critic_ckpt_to_keep", None)
        if trainer_cfg.get("remove_previous_ckpt_in_save", False):
            keep_actor = keep_critic = 1
        logger.info("Saving checkpoint to %s", step_dir)

        self.actor_rollout_wg.save_checkpoint(
            os.path.join(step_dir, "actor"),
            None if remote_root is None else os.path.join(remote_root, f"global_step_{step}", "actor"),
            step,
            max_ckpt_to_keep=None,  # pruned below, once the tracker names this step
        )
        if self.use_critic:
            critic = str(Role.Critic)
            self.critic_wg.save_checkpoint(
                os.path.join(step_dir, critic),
                None if remote_root is None else os.path.join(remote_root, f"global_step_{step}", critic),
                step,
                max_ckpt_to_keep=None,
            )
        local_mkdir_safe(step_dir)
        torch.save(self.train_dataloader.state_dict(), os.path.join(step_dir, "data.pt"))
        if getattr(self, "trainer_mode", "sync") != "sync":
            # As verl does in async modes: prompts already taken from the dataloader but not yet trained
            # into these weights (finished trajectories, pending/running prompts) survive a restart;
            # verl restores them on resume and re-issues the unfinished ones.
            import transfer_queue as tq

            tq.save_checkpoint(os.path.join(step_dir, "transfer_queue"), metadata={"global_steps": step})
        checkpoint.write_fingerprint(step_dir, checkpoint.fingerprint(self.config))
        async_save = self.config.actor_rollout_ref.actor.get("checkpoint", {}).get("async_save", False)
        if not async_save:  # async shards are still being written: no manifest (resumed unverified)
            sealed = checkpoint.seal(root, step)
            size = sum(f["size"] for f in sealed["files"].values())
            logger.info(
                "Manifest of %s: %d files, %.2f GB, hashed in %.1f s", step_dir, len(sealed["files"]), size / 1e9, sealed["seconds"]
            )

        if os.environ.get(FAULT_KILL_DURING_SAVE) == str(step):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

        if not async_save:  # verl writes no tracker for async saves either; its callback does
            checkpoint.write_tracker(root, step)
            # Whole step folders are pruned, so keep as many as the most generous setting asks.
            limits = [keep_actor] + ([keep_critic] if self.use_critic else [])
            keep = None if any(not k or k <= 0 for k in limits) else max(limits)
            for folder in checkpoint.prune_checkpoints(root, keep):
                logger.info("Removed old checkpoint %s (keeping %s)", folder, keep)
        self.checkpoint_callback.on_save(
            trainer=self, global_step=step, checkpoint_dir=step_dir, async_save=async_save
        )

    # ---- logging: W&B run id, JSONL appended on resume -------------------------------------

    def fit(self, agent_loop_manager):
        root = self._ckpt_root()
        os.makedirs(root, exist_ok=True)
        resuming = self.global_steps > 0
        saved_env = {k: os.environ.get(k) for k in ("WANDB_RUN_ID", "WANDB_RESUME", "VERL_FILE_LOGGER_PATH")}
        loggers = self.config.trainer.logger
        loggers = [loggers] if isinstance(loggers, str) else list(loggers)
        if "wandb" in loggers:
            # verl calls wandb.init without an id; wandb reads these, so a resumed run continues
            # the run whose id is saved next to the checkpoints.
            os.environ["WANDB_RUN_ID"] = checkpoint.wandb_run_id(root, resuming)
            os.environ["WANDB_RESUME"] = "allow"
        if "file" in loggers:
            path = os.environ.get("VERL_FILE_LOGGER_PATH") or os.path.join(
                os.path.expanduser(os.getenv("VERL_FILE_LOGGER_ROOT", ".")),
                self.config.trainer.project_name,
                f"{self.config.trainer.experiment_name}.jsonl",
            )
            self._metrics_path = os.path.abspath(path)
            # Records of steps after the resumed checkpoint are re-run and re-logged; a fresh run
            # starts a fresh file.
            checkpoint.truncate_metrics_after(self._metrics_path, self.global_steps if resuming else -1)
            # verl's FileLogger opens its file with "wb" (truncating it); let it open /dev/null and
            # swap in an appending logger before anything is logged (see _use_appending_file_logger).
            os.environ["VERL_FILE_LOGGER_PATH"] = os.devnull
        try:
            return super().fit(agent_loop_manager)
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def _use_appending_file_logger(self) -> None:
        tracking = getattr(self, "logger", None)
        if tracking is None or self._metrics_path is None or "file" not in tracking.logger:
            return
        if isinstance(tracking.logger["file"], AppendingFileLogger):
            return
        tracking.logger["file"].finish()
        tracking.logger["file"] = AppendingFileLogger(self._metrics_path)
        print(f"[aspo] metrics JSONL (appending): {self._metrics_path}", flush=True)

    # The first two hooks fit() calls after creating its Tracking, before it logs anything.
    def on_validate_begin(self):
        self._use_appending_file_logger()
        self._set_hf_sampling_stream("val")
        super().on_validate_begin()

    def on_validate_end(self):
        super().on_validate_end()
        self._set_hf_sampling_stream("train")

    def _set_hf_sampling_stream(self, name: str) -> None:
        # Validation samples from its own stream of the CPU rollout, so that a resumed run (which
        # skips the validation that preceded its first step) draws the same training samples.
        if self.config.actor_rollout_ref.rollout.name == "hf":
            from aspo.cpu.rollout import set_sampling_stream

            set_sampling_stream(name)

    def on_train_begin(self):
        self._use_appending_file_logger()
        super().on_train_begin()

    # ---- reproducibility --------------------------------------------------------------------

    def _balance_batch(self, batch, metrics, logging_prefix="global_seqlen", keep_minibatch=False):
        batch = self._content_order(batch)
        if self.config.trainer.get("balance_batch", True):
            return super()._balance_batch(batch, metrics, logging_prefix=logging_prefix, keep_minibatch=keep_minibatch)
        return self._pad_batch_for_dispatch(batch)

    def _pad_batch_for_dispatch(self, batch):
        """``trainer.balance_batch=false``: keep the order (verl's v1 trainer always balanced, ignoring the
        key), only pad the batch to a size the data-parallel dispatch can split, as verl's balancing does."""
        from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size

        worker_group = self.actor_rollout_wg
        if "actor" not in worker_group._dispatch_info:
            worker_group._dispatch_info["actor"] = worker_group._query_dispatch_info("actor")
        dp_size = max(worker_group._dispatch_info["actor"]) + 1
        multiple = self._get_required_batch_multiple(dp_size)
        return upsample_batch_to_divisible_size(batch, multiple, self.tokenizer.eos_token_id)

    @staticmethod
    def _content_order(batch):
        """Order the step's responses by (prompt, response) tokens instead of by completion time.

        verl materialises a batch in the order the rollouts finished, which varies from run to run;
        the mini-batch split follows that order. Sorting by content gives a run (and a resumed run)
        the same mini-batches given the same samples.
        """
        import transfer_queue as tq

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["prompts", "responses"])
        prompts = [t.tolist() for t in data["prompts"].unbind()]
        responses = [t.tolist() for t in data["responses"].unbind()]
        order = sorted(range(len(batch.keys)), key=lambda i: (prompts[i], responses[i]))
        batch.reorder(order)
        return batch

    # ---- metrics ----------------------------------------------------------------------------

    def _compute_metrics(self, batch, metrics, timing_raw, global_steps, epoch):
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)
        metrics.update(self._sign_split_metrics(batch))

    def _sign_split_metrics(self, batch) -> dict:
        import numpy as np
        import transfer_queue as tq

        from aspo.metrics import entropy_by_sign, repetition_by_sign, sign_shares

        data = tq.kv_batch_get(
            keys=batch.keys,
            partition_id=batch.partition_id,
            select_fields=["responses", "response_mask", "advantages", "entropy"],
        ).to_padded_tensor()
        keep = np.array([not tag.get("is_padding", False) for tag in batch.tags], dtype=bool)
        if not keep.any():
            return {}
        idx = np.nonzero(keep)[0].tolist()
        responses, mask, adv, ent = (data[k][idx] for k in ("responses", "response_mask", "advantages", "entropy"))
        n = int(self.config.get("aspo", {}).get("repetition_ngram", 20))
        out = sign_shares(adv, mask)
        out.update(entropy_by_sign(ent, adv, mask))
        out.update(repetition_by_sign(responses, adv, mask, n=n))
        return out


class AspoTrainer(AspoTrainerMixin, PPOTrainerSync):
    """verl's synchronous PPO trainer with aspo's additions (``trainer.v1.trainer_mode=sync``)."""


_TRAINER_CLASSES: dict[str, type] = {"sync": AspoTrainer}


def trainer_class(mode: str) -> type:
    """verl's trainer for ``trainer.v1.trainer_mode=mode`` with ``AspoTrainerMixin`` in front."""
    if mode not in _TRAINER_CLASSES:
        from verl.trainer.ppo.v1 import get_trainer_cls

        if mode == "separate_async":  # its standalone-only set-up logs with print's flush= (verl 0.9.1)
            from aspo.patches import separate_async_logging

            separate_async_logging.install()

        base = get_trainer_cls(mode)
        _TRAINER_CLASSES[mode] = type(
            f"Aspo{base.__name__}", (AspoTrainerMixin, base), {"__doc__": f"verl's {base.__name__} with aspo's additions."}
        )
    return _TRAINER_CLASSES[mode]


class AspoTaskRunner(TaskRunnerV1.__ray_actor_class__):
    """verl's ``TaskRunnerV1`` building the aspo trainer of ``trainer.v1.trainer_mode``."""

    def run(self, config):
        import transfer_queue as tq
        from omegaconf import OmegaConf

        from verl.utils.logging_utils import configure_verl_logging

        configure_verl_logging()
        trainer_cls = trainer_class(config.trainer.v1.trainer_mode)

        config.transfer_queue.enable = True
        OmegaConf.resolve(config)
        self.config = config
        tq.init(config.transfer_queue)
        succeeded = False
        try:
            self.trainer = trainer_cls(config=config)
            self.trainer.init()
            self.init_agent_loop_manager()
            self.trainer.fit(self.agent_loop_manager)
            succeeded = True
        finally:
            try:
                tracking = getattr(self.trainer, "logger", None)
                if tracking is not None:
                    tracking.finish(exit_code=0 if succeeded else 1)
                _teardown_wandb()
            finally:
                tq.close()
        return succeeded


def _teardown_wandb() -> None:
    """Stop wandb's service now: left to atexit, it races Ray's actor teardown and prints a
    ConnectionResetError traceback at the end of every run."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and hasattr(wandb, "teardown"):
        wandb.teardown()


def remote_task_runner():
    """The Ray actor class verl's ``run_ppo`` instantiates (``num_cpus=1``, like verl's)."""
    return ray.remote(num_cpus=1)(AspoTaskRunner)


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
