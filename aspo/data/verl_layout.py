"""Records that are already in verl's layout (the Archer2.0 training JSON files) -> checked verl rows.

The official ASPO runs train on ``archer2.0-{math,code}-1.5b-train.json``: one object per problem
with ``data_source``, ``prompt`` (chat list), ``ability``, ``reward_model{ground_truth, style}`` and
``extra_info``. This module keeps their prompt as is and normalises the rest to our row contract
(string ground truth, a ``data_source`` our verifiers know, ``split``/``index`` in ``extra_info``).
"""

from __future__ import annotations

import json
from typing import Any

from aspo.data.schema import ConversionError, make_row


def is_verl_record(record: dict[str, Any]) -> bool:
    return isinstance(record.get("reward_model"), dict) and "prompt" in record


def _user_prompt(prompt: Any, where: str) -> str:
    if hasattr(prompt, "tolist"):
        prompt = prompt.tolist()
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt):
        users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
        if len(prompt) == 1 or len(users) == len(prompt):
            return "\n\n".join(users or [prompt[0].get("content", "")])
        # Keep a system message by folding it in front: our rows carry one user turn.
        return "\n\n".join(str(m.get("content", "")) for m in prompt)
    raise ConversionError(f"{where}: prompt must be a string or a chat list of {{role, content}}, got {type(prompt).__name__}")


def convert_record(record: dict[str, Any], index: int, split: str, default_source: str,
                   ability: str) -> dict[str, Any]:
    """A verl-layout record -> our row. ``default_source`` fills a missing ``data_source``."""
    where = f"verl-layout record {index}"
    gt = record["reward_model"].get("ground_truth")
    if gt is None:
        raise ConversionError(f"{where}: reward_model has no ground_truth")
    if hasattr(gt, "tolist"):
        gt = gt.tolist()
    if not isinstance(gt, str):
        if ability == "math" and isinstance(gt, (list, tuple)):
            from aspo.data.math import normalize_answer

            gt, answers = normalize_answer(gt, where)
            extra_answers = {"answers": json.dumps(answers)} if len(answers) > 1 else {}
        else:
            gt, extra_answers = json.dumps(gt), {}
    else:
        extra_answers = {}
    extra = {k: v for k, v in (record.get("extra_info") or {}).items() if k not in ("split", "index") and v is not None}
    extra.update(extra_answers)
    data_source = str(record.get("data_source") or default_source)
    return make_row(data_source, _user_prompt(record["prompt"], where), str(record.get("ability") or ability),
                    gt, split, index, extra)
