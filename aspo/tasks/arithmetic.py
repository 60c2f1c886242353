"""Seeded arithmetic problems with difficulty levels, and a reward that cannot be gamed.

Rows follow verl's parquet layout (``data_source``, ``prompt`` as a chat list, ``ability``,
``reward_model{style, ground_truth}``, ``extra_info{split, index, level}``). The system message
asks for ``\\boxed{}`` and replaces the long default system prompt some chat templates inject
(fewer prompt tokens to pad and to train on).

Reward (``compute_score``), per response:

    1.0            the last \\boxed{} holds the right number
    unboxed_credit the response has no \\boxed{} and its last number is right (default 0.5)
    0.0            anything else: a wrong or empty box, a wrong last number, no number

So an empty or wrong box never scores above a wrong unboxed answer (both 0), and boxing the right
answer is worth more than stating it unboxed, which is what teaches the format. ``acc`` is the
strict boxed accuracy; ``last_number_acc`` counts a right last number, boxed or not.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any, Optional

DATA_SOURCE = "arith"
SYSTEM_PROMPT = "Answer with the final number in \\boxed{}."

# level -> (number of operands, operand range, operators)
LEVELS: dict[int, tuple[int, tuple[int, int], str]] = {
    1: (2, (0, 9), "+"),
    2: (2, (10, 99), "+"),
    3: (2, (10, 99), "+-"),
    4: (3, (2, 20), "+-*"),
}

_BOXED = re.compile(r"\\(?:boxed|fbox)\{([^{}]*)\}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def make_problem(rng: random.Random, level: int) -> tuple[str, int]:
    if level not in LEVELS:
        raise ValueError(f"arithmetic level {level} is unknown; choose one of {sorted(LEVELS)}")
    n_operands, (lo, hi), ops = LEVELS[level]
    terms = [str(rng.randint(lo, hi))]
    for _ in range(n_operands - 1):
        terms += [rng.choice(ops), str(rng.randint(lo, hi))]
    expression = " ".join(terms)
    return expression, int(eval(expression))  # noqa: S307  our own digits and operators only


def make_rows(n: int, *, level: int, seed: int, split: str) -> list[dict[str, Any]]:
    """``n`` problems, deterministic in (``level``, ``seed``, ``split``)."""
    rng = random.Random(f"{seed}-{level}-{split}")
    rows = []
    for index in range(n):
        expression, answer = make_problem(rng, level)
        rows.append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"What is {expression}?"},
                ],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(answer)},
                "extra_info": {"split": split, "index": index, "level": level},
            }
        )
    return rows


def write_dataset(
    out_dir: str | Path, *, n_train: int = 256, n_val: int = 64, level: int = 2, seed: int = 0
) -> dict[str, str]:
    """Write ``train.parquet`` and ``val.parquet``; the two splits never share a problem."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    val = make_rows(n_val, level=level, seed=seed, split="val")
    seen = {r["prompt"][1]["content"] for r in val}
    train = [r for r in make_rows(n_train * 2, level=level, seed=seed, split="train") if r["prompt"][1]["content"] not in seen]
    train = train[:n_train]
    for i, row in enumerate(train):
        row["extra_info"]["index"] = i
    paths = {}
    for split, rows in (("train", train), ("val", val)):
        path = out / f"{split}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pd.DataFrame(rows).to_parquet(tmp)
        tmp.replace(path)
        paths[split] = str(path)
    return paths


def _to_number(text: str) -> Optional[float]:
    text = text.strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Optional[dict] = None,
    unboxed_credit: float = 0.5,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl custom-reward signature; see the module docstring for the scoring rule."""
    if not 0.0 <= unboxed_credit < 1.0:
        raise ValueError(f"unboxed_credit={unboxed_credit} must lie in [0, 1) so that a boxed answer is worth more")
    answer = _to_number(str(ground_truth))
    text = solution_str.split("</think>")[-1]
    boxes = _BOXED.findall(text)
    numbers = _NUMBER.findall(text)
    last_number = _to_number(numbers[-1]) if numbers else None
    if boxes:
        pred = boxes[-1].strip()
        correct = _to_number(pred) == answer and answer is not None
        score, reason = (1.0, "correct") if correct else (0.0, "wrong_box")
        last_ok = correct
    else:
        pred = numbers[-1] if numbers else ""
        last_ok = last_number is not None and last_number == answer
        score, reason = (unboxed_credit, "unboxed_correct") if last_ok else (0.0, "wrong" if numbers else "no_answer")
        correct = False
    return {
        "score": float(score),
        "acc": bool(correct),
        "boxed": float(bool(boxes)),
        "last_number_acc": float(last_ok),
        "pred": pred,
        "reason": reason,
    }
