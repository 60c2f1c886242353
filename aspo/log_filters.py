"""Keep verl's repeated warnings out of the way of the steps a user wants to see.

verl 0.9.1 warns "No model-specific Continuous Token builder is registered for config.json
model_type=..." every time an agent loop is built, i.e. for every request: 192 of the 496 lines of
the quickstart's output were that one warning. The fallback it announces (the generic text builder)
is the right one for the text-only models we train, so the warning is kept once per process and its
repeats are dropped. verl's import-time warnings about optional engine backends that are not
installed are hidden. Installed from ``aspo.plugin`` (which every verl process imports).
"""

from __future__ import annotations

import logging
import threading

# (logger name, start of the message template) of warnings that repeat per request.
REPEATED_WARNINGS: tuple[tuple[str, str], ...] = (
    ("verl.utils.tokenizer.continuous_token_wiring", "No model-specific Continuous Token builder"),
)


class FirstOccurrenceOnly(logging.Filter):
    """Lets through the first record whose message template starts with ``prefix``; drops repeats."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        template = str(record.msg)
        if not template.startswith(self.prefix):
            return True
        key = record.getMessage()  # one line per distinct model_type, not one per request
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        return True


# Python warnings verl raises on import, in every process, for optional backends we never use
# (torchtitan, veomni, automodel, mindspeed, megatron): 10 lines per process. Only the "module not
# installed" form is hidden; a backend that is installed but broken still warns.
OPTIONAL_BACKEND_WARNING = r"\w+ engine is not available: ModuleNotFoundError"


def install() -> None:
    """Attach the filters (idempotent)."""
    import warnings

    warnings.filterwarnings("ignore", message=OPTIONAL_BACKEND_WARNING, category=UserWarning)
    for name, prefix in REPEATED_WARNINGS:
        log = logging.getLogger(name)
        if not any(isinstance(f, FirstOccurrenceOnly) and f.prefix == prefix for f in log.filters):
            log.addFilter(FirstOccurrenceOnly(prefix))
