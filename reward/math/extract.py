"""Find the final answer of a math response: the last ``\\boxed{...}`` / ``\\fbox{...}``.

Linear-time on purpose (``rfind`` plus one brace scan): responses can be 100 kB of adversarial
text and this runs in the trainer's process, outside the timeout-guarded workers.
"""

from __future__ import annotations

import re

from reward.text import final_section

_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{}``/``\\fbox{}`` in ``text`` (nested braces kept), else None.

    Only the last box counts ("last box wins"): a response listing several candidate answers does
    not get credit for any but the final one. If that last box is unbalanced the answer is
    malformed and we return None rather than fall back to an earlier box. ``\\boxed 5`` (the
    brace-less TeX form) yields the single token after the space.
    """
    start, command = -1, ""
    for cmd in _BOX_COMMANDS:
        i = text.rfind(cmd)
        if i > start:
            start, command = i, cmd
    if start < 0:
        return None
    i = start + len(command)
    n = len(text)
    if i < n and text[i] == " ":
        # "\boxed 5": TeX takes the next token.
        j = i + 1
        while j < n and not text[j].isspace() and text[j] not in "$":
            j += 1
        token = text[i + 1:j]
        return token or None
    while i < n and text[i] in " \t\n":
        i += 1
    if i >= n or text[i] != "{":
        return None
    depth = 0
    for m in _BRACE_OR_ESCAPE.finditer(text, i):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:m.start()]
        # "\{", "\}" and "\\" are escapes, not groups: skipped.
    return None


def extract_math_answer(response: str) -> str | None:
    """The boxed answer after the reasoning (text after ``</think>``), or None if there is none."""
    final = final_section(response)
    if final is None:
        return None
    answer = last_boxed(final)
    if answer is None:
        return None
    answer = answer.strip()
    return answer or None
