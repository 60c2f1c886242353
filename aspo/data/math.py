"""Math sources -> verl rows: the training set and the six benchmarks of the ASPO paper.

Each ``MathSource`` names where the upstream data lives (hub id, config, split) and which
``data_source`` its rows get; ``convert_record`` is a pure function from one upstream record to a
verl row. Column names differ between uploads of the same benchmark (``problem`` / ``question``,
``answer`` / ``final_answer``), so each field is looked up among a few known names.
"""

from __future__ import annotations

import json
import math as _math
from dataclasses import dataclass
from typing import Any

from aspo.data.io import pick
from aspo.data.schema import ConversionError, make_row

# The DeepSeek-R1-Distill instruction used by DeepScaleR/Archer-style math RL: the reward reads
# the last \boxed{} after </think>.
PROMPT_TEMPLATE = "{problem} Let's think step by step and output the final answer within \\boxed{{}}."

QUESTION_KEYS = ("problem", "question", "Problem", "Question", "prompt_text")
ANSWER_KEYS = ("answer", "Answer", "final_answer", "expected_answer", "ground_truth")


@dataclass(frozen=True)
class MathSource:
    name: str  # CLI name and default output file stem
    data_source: str  # what reward.compute_score dispatches on
    hub_id: str
    hub_config: str | None
    hub_split: str
    split: str  # extra_info.split: train | test


SOURCES: dict[str, MathSource] = {s.name: s for s in (
    # Training set. The official run used Archer2.0's own math JSON (verl layout: pass it with
    # --input, aspo.data.verl_layout normalises it); DeepScaleR-Preview is the public default.
    MathSource("math_train", "math", "agentica-org/DeepScaleR-Preview-Dataset", None, "train", "train"),
    MathSource("aime2024", "aime2024", "HuggingFaceH4/aime_2024", None, "train", "test"),
    MathSource("aime2025", "aime2025", "math-ai/aime25", None, "test", "test"),
    MathSource("amc2023", "amc2023", "math-ai/amc23", None, "test", "test"),
    MathSource("math500", "math500", "HuggingFaceH4/MATH-500", None, "test", "test"),
    MathSource("minerva", "minerva", "math-ai/minervamath", None, "test", "test"),
    MathSource("olympiadbench", "olympiadbench", "Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train", "test"),
)}
BENCHMARKS = ("aime2024", "aime2025", "amc2023", "math500", "minerva", "olympiadbench")


def _strip_dollars(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    return text


def normalize_answer(value: Any, where: str) -> tuple[str, list[str]]:
    """``(answer, all_answers)``: one string for the reward plus every accepted form.

    Numbers become their shortest exact text (``36.0`` -> ``"36"``); a list (OlympiadBench's
    ``final_answer``) keeps its first entry as the answer; surrounding ``$...$`` is dropped.
    """
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        value = value.tolist()
    values = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            raise ConversionError(f"{where}: answer is a boolean ({v}); expected a number or a string")
        if isinstance(v, float) and _math.isfinite(v) and v == int(v):
            v = int(v)
        text = _strip_dollars(str(v))
        if text:
            out.append(text)
    if not out:
        raise ConversionError(f"{where}: empty answer {value!r}")
    return out[0], out


def convert_record(record: dict[str, Any], source: MathSource, index: int,
                   prompt_template: str = PROMPT_TEMPLATE) -> dict[str, Any]:
    """One upstream math record (any of the known column layouts) -> one verl row."""
    where = f"{source.name} record {index}"
    problem = pick(record, QUESTION_KEYS, "problem text", where)
    if not isinstance(problem, str):
        raise ConversionError(f"{where}: problem text is {type(problem).__name__}, expected a string")
    answer, answers = normalize_answer(pick(record, ANSWER_KEYS, "answer", where), where)
    extra: dict[str, Any] = {"question": problem.strip()}
    if len(answers) > 1:
        extra["answers"] = json.dumps(answers)
    for key in ("id", "ID", "unique_id", "subject", "level", "year", "url"):
        if record.get(key) is not None:
            extra[f"upstream_{key.lower()}"] = str(record[key])
    prompt = prompt_template.format(problem=problem.strip())
    return make_row(source.data_source, prompt, "math", answer, source.split, index, extra)
