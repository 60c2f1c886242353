"""Text helpers shared by the math and code verifiers.

Model output is untrusted: it may hold NUL bytes, lone surrogates (which break ``str.encode`` and
pickling into some libraries) or megabytes of text. Everything here is linear-time and never
raises on odd input, so the caller can run it in the trainer's own process.
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def final_section(text: str) -> str | None:
    """The part of a response after its reasoning.

    The answer must come after the last ``</think>``: text inside the reasoning is a draft, and
    rewarding it would teach the model to hide answers there. A response that opens ``<think>``
    and never closes it has no final section (``None``); one without any think tags is all final.
    """
    if not isinstance(text, str):
        return None
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        return text[close + len(THINK_CLOSE):]
    if THINK_OPEN in text:
        return None
    return text


def sanitize(text: str) -> str:
    """Drop NUL bytes and replace lone surrogates, so the string is valid UTF-8 everywhere."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def preview(text: str | None, limit: int = 200) -> str | None:
    """A short, printable copy of ``text`` for the ``pred`` diagnostic field (logs stay small)."""
    if text is None:
        return None
    text = sanitize(text)
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit} chars)"
