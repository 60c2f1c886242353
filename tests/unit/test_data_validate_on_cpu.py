"""Bad training/validation rows fail at start-up with one line naming file, rows and fix (aspo.data.validate)."""

from __future__ import annotations

import pandas as pd
import pytest
from omegaconf import OmegaConf

from aspo.data.validate import DataError, RowChecks, check_file, load_tokenizer, prompt_lengths
from aspo.fixtures import data
from aspo.preflight import PreflightError, preflight
from aspo.configs import compose as compose_config


def quickstart(*overrides: str):
    return compose_config("quickstart_tiny", "hardware=cpu", *overrides, resolve=True)


def _parquet(tmp_path, edit, name="train.parquet"):
    rows = pd.read_parquet(data.TRAIN_FILE)
    edit(rows)
    path = tmp_path / name
    rows.to_parquet(path, index=False)
    return path


def _fail(cfg) -> str:
    with pytest.raises(PreflightError) as err:
        preflight(cfg)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_missing_ground_truth_names_file_rows_and_fix(tmp_path):
    def edit(rows):
        rows.at[3, "reward_model"] = {"style": "rule", "ground_truth": None}
        rows.at[9, "reward_model"] = {"style": "rule", "ground_truth": " "}
        rows.at[11, "reward_model"] = None

    path = _parquet(tmp_path, edit)
    msg = _fail(quickstart(f"data.train_files={path}"))
    assert msg.startswith(f"data.train_files: {path}: no reward_model.ground_truth (null or empty) in rows 3, 9, 11 of 64")
    assert "fill it in or drop those rows" in msg


def test_reward_model_without_ground_truth_field(tmp_path):
    path = _parquet(tmp_path, lambda rows: rows.__setitem__("reward_model", [{"style": "rule"}] * len(rows)))
    assert "not a struct with a ground_truth field" in _fail(quickstart(f"data.train_files={path}"))


def test_empty_prompts(tmp_path):
    def edit(rows):
        rows.at[5, "prompt"] = []
        rows.at[6, "prompt"] = [{"role": "user", "content": "   "}]

    path = _parquet(tmp_path, edit)
    msg = _fail(quickstart(f"data.train_files={path}"))
    assert msg.startswith(f"data.train_files: {path}: empty prompt (no message with text) in rows 5, 6 of 64")
    assert "drop those rows" in msg


def test_prompt_that_is_not_a_chat_list(tmp_path):
    path = _parquet(tmp_path, lambda rows: rows.__setitem__("prompt", [m[0]["content"] for m in rows["prompt"]]))
    assert "column prompt is large_string, not a chat list" in _fail(quickstart(f"data.train_files={path}"))


def _long_prompt(rows):
    # The fixture tokenizer is character-level: 120 characters + 19 tokens of chat template = 139.
    rows.at[2, "prompt"] = [{"role": "user", "content": "1+1=? " * 20}]


def test_overlong_prompt_is_an_error_naming_both_fixes(tmp_path):
    path = _parquet(tmp_path, _long_prompt)
    msg = _fail(quickstart(f"data.train_files={path}"))
    assert msg.startswith(f"data.train_files: {path}: prompt longer than data.max_prompt_length=64 tokens")
    assert "(longest 139) in row 2 of 64" in msg
    assert "raise data.max_prompt_length to 139 or set data.filter_overlong_prompts=true" in msg


def test_overlong_prompts_filtered_by_verl_are_counted(tmp_path):
    path = _parquet(tmp_path, _long_prompt)
    warnings = preflight(quickstart(f"data.train_files={path}", "data.filter_overlong_prompts=true"))
    assert warnings == [
        f"data.train_files: {path}: 1 of 64 prompts are longer than data.max_prompt_length=64 tokens (longest 139); "
        "verl skips them (data.filter_overlong_prompts=true)"
    ]


def test_unknown_data_source_when_the_reward_is_aspos_dispatcher(tmp_path):
    def edit(rows):
        rows.at[7, "data_source"] = "my_puzzles"
        rows.at[8, "data_source"] = "my_puzzles"

    path = _parquet(tmp_path, edit)
    msg = _fail(quickstart(f"data.train_files={path}", "reward.custom_reward_function.path=pkg://reward",
                           "reward.custom_reward_function.name=compute_score"))
    assert msg.startswith(f"data.train_files: {path}: data_source 'my_puzzles' in rows 7, 8 is not a source any reward verifier")
    assert "math*" in msg and "reward.custom_reward_function" in msg
    # The quickstart's own reward function scores any source: nothing to check.
    assert preflight(quickstart(f"data.train_files={path}")) == []


def test_prompt_the_chat_template_rejects(tmp_path):
    def edit(rows):
        rows.at[4, "prompt"] = [{"role": "user", "content": None}, {"role": "user", "content": "1+1=?"}]

    path = _parquet(tmp_path, edit)
    msg = _fail(quickstart(f"data.train_files={path}"))
    assert msg.startswith(f"data.train_files: {path}: the model's chat template fails on row 4 (TypeError")


def test_val_files_are_checked_too(tmp_path):
    path = _parquet(tmp_path, lambda rows: rows.at.__setitem__((0, "prompt"), []), name="val.parquet")
    assert _fail(quickstart(f"data.val_files={path}")).startswith(f"data.val_files: {path}: empty prompt (no message with text) in row 0 of 64")


def test_prompt_lengths_match_what_verl_filters(tmp_path):
    """Our count equals verl's own overlong-prompt filter (RLHFDataset) on the same rows and limit."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    def edit(rows):
        _long_prompt(rows)
        rows.at[4, "prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2=? " * 3}]
        rows.at[5, "prompt"] = [{"role": "user", "content": "3+3=? " * 7}]  # 42 + 19 = 61 tokens, 1 over the limit

    path = _parquet(tmp_path, edit)
    tokenizer = load_tokenizer(quickstart())
    conversations = pd.read_parquet(path)["prompt"].map(list).tolist()
    lengths = prompt_lengths([[dict(m) for m in c] for c in conversations], tokenizer)
    limit = 60
    dataset = RLHFDataset(
        data_files=[str(path)],
        tokenizer=tokenizer,
        config=OmegaConf.create({"max_prompt_length": limit, "filter_overlong_prompts": True,
                                 "filter_overlong_prompts_workers": 1, "cache_dir": str(tmp_path / "verl_cache")}),
        processor=None,
    )
    assert len(dataset) == sum(n <= limit for n in lengths) == 62  # rows 2 and 5 dropped
    notes = check_file("data.train_files", str(path), RowChecks(max_prompt_length=limit, filter_overlong=True, tokenizer=tokenizer))
    assert f"{len(lengths) - len(dataset)} of 64 prompts are longer" in notes[0]


def test_clean_fixture_data_passes():
    assert check_file("data.train_files", str(data.TRAIN_FILE), RowChecks()) == []
    with pytest.raises(DataError):
        check_file("data.train_files", str(data.TRAIN_FILE), RowChecks(known_source=lambda s: False))


def test_only_prompts_that_could_be_too_long_are_tokenized_and_the_result_is_the_same():
    from aspo.data.validate import _byte_bound, _render, overlong_prompts

    tokenizer = load_tokenizer(quickstart())
    bound = _byte_bound(tokenizer)
    assert bound is not None, "the fixture tokenizer is a byte-level BPE, like Qwen's"
    texts = ["1+2=?", "7-3=? " * 9, "é ü ñ 中文 🙂", "\u0958\u0959 (NFC decomposes these)", "<|im_end|><|im_start|>", "\n\n  \t", "9" * 80]
    conversations = [[{"role": "user", "content": t}] for t in texts]
    lengths = prompt_lengths(conversations, tokenizer)
    assert all(n <= bound(text) for n, text in zip(lengths, _render(conversations, tokenizer, None), strict=True))
    for limit in [0, *sorted(set(lengths))]:
        assert overlong_prompts(conversations, tokenizer, limit) == {i: n for i, n in enumerate(lengths) if n > limit}
