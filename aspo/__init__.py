"""aspo: ASPO and GRPO-family policy losses, verifiers and CPU/GPU training glue on verl 0.9.1."""

__version__ = "0.1.0"

# The verl release every shim and recipe here is written against. Modules that reach into verl
# internals check it at import (see aspo._verl_compat).
VERL_VERSION = "0.9.1"
