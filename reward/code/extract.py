"""Find the program in a code response: the last fenced python block after the reasoning.

A line scanner rather than a regex: a lazy ``.*?`` over 100 kB of unclosed fences is quadratic.
"""

from __future__ import annotations

from reward.text import final_section

_PYTHON_TAGS = {"python", "python3", "py"}


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every closed ``` fence, in order."""
    blocks = []
    lang = None
    body: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if lang is None:
            if stripped.startswith("```"):
                lang = stripped[3:].strip().lower()
                body = []
        elif stripped == "```":
            blocks.append((lang, "\n".join(body)))
            lang = None
        else:
            body.append(line)
    return blocks


def extract_code(response: str) -> str | None:
    """The last ```python block after ``</think>`` (an untagged block if there is no python one)."""
    if not isinstance(response, str):
        return None
    final = final_section(response)
    if not final:
        return None
    blocks = _fenced_blocks(final)
    chosen = [b for lang, b in blocks if lang in _PYTHON_TAGS] or [b for lang, b in blocks if lang == ""]
    if not chosen or not chosen[-1].strip():
        return None
    return chosen[-1]
