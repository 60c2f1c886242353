"""Start-up checks of every training and validation row: bad data fails in the first second, not at step N.

``aspo.preflight`` checks the columns; this module checks the rows, reading only the columns it
needs with pyarrow:

- ``reward_model.ground_truth`` null or empty: the verifier has nothing to compare with;
- an empty prompt (no message with text);
- a ``data_source`` no verifier of ``reward.compute_score`` knows (checked only when that is the
  configured reward function);
- a prompt longer than ``data.max_prompt_length`` tokens once the chat template is applied (as
  verl's agent loop builds it: ``apply_chat_template(..., add_generation_prompt=True)``). verl
  left-truncates such prompts silently; with ``data.filter_overlong_prompts=true`` it drops them,
  and the check reports how many instead of failing.

Each problem is one ``DataError`` line naming the file, the rows (0-based) and the fix. All rows of
every file are checked, including those ``data.train_max_samples`` would leave out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

_CHUNK = 4096  # rows per chat-template / tokenizer batch


class DataError(ValueError):
    """A training or validation row that cannot train; the message names file, rows and fix."""


@dataclass
class RowChecks:
    prompt_key: str = "prompt"
    reward_fn_key: str = "data_source"
    max_prompt_length: Optional[int] = None
    filter_overlong: bool = False
    tokenizer: Any = None  # a transformers tokenizer with a chat template; None skips the length check
    chat_template_kwargs: dict = field(default_factory=dict)
    known_source: Optional[Callable[[str], bool]] = None  # None skips the data_source check


def _rows(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f"row{'s' if len(indices) > 1 else ''} {shown}{more}"


def _column(path: str, name: str):
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=[name]).column(0).combine_chunks()


def _check_ground_truth(where: str, path: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reward_type = pq.read_schema(path).field("reward_model").type
    if not pa.types.is_struct(reward_type) or reward_type.get_field_index("ground_truth") < 0:
        raise DataError(f"{where}: column reward_model is {reward_type}, not a struct with a ground_truth field "
                        "(verl's layout: reward_model={'style': 'rule', 'ground_truth': '<answer>'})")
    truth = _column(path, "reward_model.ground_truth")
    missing = truth.is_null()
    if pa.types.is_string(truth.type) or pa.types.is_large_string(truth.type):
        missing = pc.or_(missing, pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(truth)), 0))
    bad = pc.indices_nonzero(pc.fill_null(missing, True)).to_pylist()
    if bad:
        raise DataError(f"{where}: no reward_model.ground_truth (null or empty) in {_rows(bad)} of {len(truth)}, "
                        "so the verifier has no answer to compare with; fill it in or drop those rows")


def _messages(path: str, prompt_key: str, where: str) -> list:
    import pyarrow as pa

    prompts = _column(path, prompt_key)
    if not (pa.types.is_list(prompts.type) or pa.types.is_large_list(prompts.type)):
        raise DataError(f"{where}: column {prompt_key} is {prompts.type}, not a chat list "
                        "[{'role': 'user', 'content': '...'}] (verl applies the model's chat template to it)")
    return prompts.to_pylist()


def _is_empty(messages: Any) -> bool:
    if not messages:
        return True
    for message in messages:
        content = (message or {}).get("content")
        if content is not None and (not isinstance(content, str) or content.strip()):
            return False
    return True


def _check_sources(where: str, path: str, key: str, known: Callable[[str], bool]) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    sources = _column(path, key)
    unknown = [s for s in pc.unique(sources).to_pylist() if s is None or not known(s)]
    if not unknown:
        return
    named = pa.array([s for s in unknown if s is not None], type=sources.type)
    bad = pc.indices_nonzero(pc.or_(pc.fill_null(pc.is_in(sources, value_set=named), False), sources.is_null()))
    from reward import known_sources

    names = known_sources()
    raise DataError(
        f"{where}: {key} {', '.join(repr(s) for s in unknown[:5])} in {_rows(bad.to_pylist())} is not a source any "
        f"reward verifier knows (math: {', '.join(names['math'])}; code: {', '.join(names['code'])}); rename the "
        "source, or set reward.custom_reward_function to a function that scores it"
    )


def _render(conversations: list, tokenizer: Any, chat_template_kwargs: Optional[dict]) -> list[str]:
    kwargs = dict(chat_template_kwargs or {})
    for key in ("tokenize", "return_dict", "return_tensors", "add_generation_prompt"):
        kwargs.pop(key, None)
    return tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False, **kwargs)


def _count(texts: list[str], tokenizer: Any) -> list[int]:
    if not texts:
        return []
    return [len(row) for row in tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]]


def prompt_lengths(conversations: list, tokenizer: Any, chat_template_kwargs: Optional[dict] = None) -> list[int]:
    """Tokens of each prompt as verl's agent loop builds it (chat template + generation prompt)."""
    lengths: list[int] = []
    for start in range(0, len(conversations), _CHUNK):
        lengths.extend(_count(_render(conversations[start : start + _CHUNK], tokenizer, chat_template_kwargs), tokenizer))
    return lengths


def _byte_bound(tokenizer: Any) -> Optional[Callable[[str], int]]:
    """For a byte-level BPE (GPT-2 / Llama 3 / Qwen / SmolLM2 style), an upper bound on a text's tokens.

    Every token of such a tokenizer stands for at least one byte of the normalised text (special
    tokens for more), so tokens <= bytes (+1 for a prefix space the pre-tokeniser may add). A
    prompt under the limit in bytes needs no tokenizing. ``None`` for other tokenizers
    (SentencePiece adds word-boundary tokens the text does not have, so the bound does not hold).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or type(backend.model).__name__ != "BPE" or "ByteLevel(" not in repr(backend.pre_tokenizer):
        return None
    normalizer = backend.normalizer
    if normalizer is None:
        return lambda text: len(text.encode()) + 1
    return lambda text: len(normalizer.normalize_str(text).encode()) + 1


def overlong_prompts(conversations: list, tokenizer: Any, limit: int, chat_template_kwargs: Optional[dict] = None) -> dict[int, int]:
    """``{row: tokens}`` for the prompts longer than ``limit`` tokens (as ``prompt_lengths`` counts them).

    Only prompts that could be too long are tokenized: on 100k math-style rows the tokenizer is
    the cost of this check (``scripts/bench_startup_checks.py``).
    """
    bound = _byte_bound(tokenizer)
    over: dict[int, int] = {}
    for start in range(0, len(conversations), _CHUNK):
        texts = _render(conversations[start : start + _CHUNK], tokenizer, chat_template_kwargs)
        rows = [i for i, text in enumerate(texts) if bound is None or bound(text) > limit]
        for i, n in zip(rows, _count([texts[i] for i in rows], tokenizer), strict=True):
            if n > limit:
                over[start + i] = n
    return over


def check_file(key: str, path: str, checks: RowChecks) -> list[str]:
    """Raise ``DataError`` for rows of ``path`` that cannot train; return notes (rows verl will skip)."""
    where = f"{key}: {path}"
    _check_ground_truth(where, path)
    conversations = _messages(path, checks.prompt_key, where)
    empty = [i for i, messages in enumerate(conversations) if _is_empty(messages)]
    if empty:
        raise DataError(f"{where}: empty {checks.prompt_key} (no message with text) in {_rows(empty)} of "
                        f"{len(conversations)}; drop those rows or fill in the question")
    if checks.known_source is not None:
        _check_sources(where, path, checks.reward_fn_key, checks.known_source)
    if checks.tokenizer is None or checks.max_prompt_length is None:
        return []
    limit = int(checks.max_prompt_length)
    try:
        lengths = overlong_prompts(conversations, checks.tokenizer, limit, checks.chat_template_kwargs)
    except Exception as err:  # a template that rejects some row (a role it does not know, ...)
        row = _first_failing_row(conversations, checks)
        raise DataError(f"{where}: the model's chat template fails on {row} ({type(err).__name__}: {err}); "
                        "fix the row's roles/contents or set actor_rollout_ref.model.custom_chat_template") from err
    if not lengths:
        return []
    over, longest, total = sorted(lengths), max(lengths.values()), len(conversations)
    if checks.filter_overlong:
        return [f"{where}: {len(over)} of {total} prompts are longer than data.max_prompt_length={limit} "
                f"tokens (longest {longest}); verl skips them (data.filter_overlong_prompts=true)"]
    raise DataError(
        f"{where}: prompt longer than data.max_prompt_length={limit} tokens with the chat template (longest "
        f"{longest}) in {_rows(over)} of {total}, which verl would silently left-truncate; raise "
        f"data.max_prompt_length to {longest} or set data.filter_overlong_prompts=true to skip those rows"
    )


def _first_failing_row(conversations: list, checks: RowChecks) -> str:
    for i, messages in enumerate(conversations):
        try:
            _render([messages], checks.tokenizer, checks.chat_template_kwargs)
        except Exception:
            return f"row {i}"
    return "a prompt"


def _aspo_reward(cfg: Any) -> bool:
    """Whether the configured reward function is ``reward.compute_score`` (which dispatches on data_source)."""
    custom = cfg.get("reward", {}).get("custom_reward_function", {}) or {}
    path = str(custom.get("path") or "")
    return path in ("pkg://reward", "reward") and custom.get("name") in ("compute_score", "compute_score_batch")


def load_tokenizer(cfg: Any):
    """The tokenizer verl will use (``model.tokenizer_path`` or ``model.path``, plus ``custom_chat_template``)."""
    from transformers import AutoTokenizer

    model = cfg.actor_rollout_ref.model
    tokenizer = AutoTokenizer.from_pretrained(
        str(model.get("tokenizer_path") or model.path), trust_remote_code=bool(model.get("trust_remote_code", False))
    )
    if model.get("custom_chat_template"):
        tokenizer.chat_template = model.custom_chat_template
    return tokenizer


def checks_for(cfg: Any) -> tuple[RowChecks, list[str]]:
    """The row checks an ``aspo-train`` config asks for, and warnings about checks that cannot run."""
    data = cfg.data
    warnings = []
    tokenizer = None
    try:
        tokenizer = load_tokenizer(cfg)
    except Exception as err:  # verl reports a broken model path itself; the other checks still run
        warnings.append(f"prompt lengths not checked: cannot load the tokenizer ({type(err).__name__}: {err})")
    if tokenizer is not None and not getattr(tokenizer, "chat_template", None):
        warnings.append("prompt lengths not checked: the tokenizer has no chat template "
                        "(set actor_rollout_ref.model.custom_chat_template)")
        tokenizer = None
    known = None
    if _aspo_reward(cfg):
        from reward import UnknownDataSource, resolve

        def known(source: str) -> bool:
            try:
                resolve(source)
                return True
            except UnknownDataSource:
                return False

    checks = RowChecks(
        prompt_key=data.get("prompt_key", "prompt"),
        reward_fn_key=data.get("reward_fn_key", "data_source"),
        max_prompt_length=data.get("max_prompt_length"),
        filter_overlong=bool(data.get("filter_overlong_prompts", False)),
        tokenizer=tokenizer,
        chat_template_kwargs=dict(data.get("apply_chat_template_kwargs", None) or {}),
        known_source=known,
    )
    return checks, warnings


def check_datasets(cfg: Any, files: dict[str, list[str]]) -> list[str]:
    """Check every row of ``files`` (``{"data.train_files": [...], ...}``); returns notes and warnings."""
    checks, notes = checks_for(cfg)
    for key, paths in files.items():
        for path in paths:
            notes.extend(check_file(key, os.path.expanduser(path), checks))
    return notes
