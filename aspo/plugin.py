"""Entry point of the ``verl.plugins`` group (see pyproject.toml).

verl imports this module at the end of ``import verl`` in every process, driver and Ray workers
alike. verl swallows exceptions raised here (logged at DEBUG), so keep it import-light and let
tests check the registries in a fresh interpreter.
"""

import aspo.losses  # noqa: F401  registers every policy loss with verl's registry

# CPU training shims: a `cpu` platform (picked only on hosts without an accelerator), the `hf`
# rollout backend and the `gloo` checkpoint engine. They only register names with verl; see
# aspo/cpu/__init__.py.
import aspo.cpu.platform  # noqa: E402, F401
import aspo.cpu.rollout  # noqa: E402, F401
import aspo.cpu.checkpoint_engine  # noqa: E402, F401  checkpoint_engine.backend=gloo (separate_async on CPU)

# verl warns once per request about a fallback that is right for text models: keep it once.
import aspo.log_filters  # noqa: E402

aspo.log_filters.install()
