"""CPU shims that let verl 0.9.1's ``main_ppo`` run on a machine without an accelerator.

One module per shim, each checked against the pinned verl release at import:

- ``aspo.cpu.platform``: a ``cpu`` platform in verl's ``PlatformRegistry`` (gloo, device ``cpu``).
- ``aspo.cpu.rollout``: an ``hf`` rollout backend (transformers ``generate`` in a Ray actor)
  registered with verl's rollout registries.
- ``aspo.cpu.distributed``: the gloo process group and torch thread count for Ray workers.
- ``aspo.cpu.checkpoint_engine``: a ``gloo`` checkpoint engine in verl's ``CheckpointEngineRegistry``
  (trainer -> standalone rollout weight sync, for ``trainer.v1.trainer_mode=separate_async``).

``aspo.plugin`` imports ``platform``, ``rollout`` and ``checkpoint_engine`` in every process; they are
cheap and do nothing on a machine with a GPU except register names verl never picks there.
"""
