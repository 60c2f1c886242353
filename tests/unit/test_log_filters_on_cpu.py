"""aspo.log_filters: verl's per-request warning is shown once, and verl still logs it where we filter."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys

from aspo.log_filters import REPEATED_WARNINGS, FirstOccurrenceOnly


def test_verl_still_emits_the_warning_from_the_logger_we_filter():
    from verl.utils.tokenizer import continuous_token_wiring as wiring

    assert wiring.logger.name == REPEATED_WARNINGS[0][0]
    assert REPEATED_WARNINGS[0][1] in inspect.getsource(wiring.infer_continuous_token_model_family)


def test_first_occurrence_only_keeps_one_line_per_distinct_message(caplog):
    log = logging.getLogger("aspo.test.log_filters")
    log.addFilter(FirstOccurrenceOnly("No model-specific"))
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(50):
            log.warning("No model-specific Continuous Token builder for model_type=%r", "llama")
        log.warning("No model-specific Continuous Token builder for model_type=%r", "qwen2")
        log.warning("something else")
        log.warning("something else")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "No model-specific Continuous Token builder for model_type='llama'",
        "No model-specific Continuous Token builder for model_type='qwen2'",
        "something else",
        "something else",
    ]


def test_import_verl_installs_the_filter_and_repeats_are_dropped():
    """The plugin (loaded by ``import verl`` in every process) installs it: 20 agent-loop builds, 1 line."""
    code = (
        "import logging, verl\n"
        "from verl.utils.tokenizer.continuous_token_wiring import infer_continuous_token_model_family as f\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "for _ in range(20): f(hf_model_type='llama')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count("No model-specific Continuous Token builder") == 1, out.stderr[-2000:]


def test_optional_engine_backend_warnings_are_hidden():
    code = "import warnings, verl\nimport verl.workers.engine\n"
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "engine is not available" not in out.stderr, out.stderr[-2000:]
    from verl.workers import engine

    assert "engine is not available: {e!r}" in inspect.getsource(engine)  # verl still warns this way
