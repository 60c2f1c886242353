"""Tiny fixtures: deterministic, loadable by the real code paths, rewards with variance."""

from __future__ import annotations

import filecmp

import pandas as pd
import pytest

from aspo.fixtures import data, model, reward


def test_model_build_is_deterministic(tmp_path, monkeypatch):
    dirs = []
    for name in ("a", "b"):
        monkeypatch.setenv("ASPO_FIXTURES_DIR", str(tmp_path / name))
        dirs.append(model.ensure_model())
    for fname in ("config.json", "tokenizer.json", "model.safetensors", "generation_config.json"):
        assert filecmp.cmp(dirs[0] / fname, dirs[1] / fname, shallow=False), fname


def test_shipped_dataset_matches_its_generator(tmp_path):
    train, val = data.write_dataset(tmp_path)
    for fresh, shipped in ((train, data.TRAIN_FILE), (val, data.VAL_FILE)):
        pd.testing.assert_frame_equal(pd.read_parquet(fresh), pd.read_parquet(shipped))


def test_dataset_has_verl_layout():
    df = pd.read_parquet(data.TRAIN_FILE)
    assert {"data_source", "prompt", "ability", "reward_model", "extra_info"} <= set(df.columns)
    row = df.iloc[0]
    assert row["prompt"][0]["role"] == "user"
    assert set(row["reward_model"]) == {"style", "ground_truth"}
    assert set(row["extra_info"]) == {"split", "index"}
    assert len(df) == data.N_TRAIN and len(pd.read_parquet(data.VAL_FILE)) == data.N_VAL


def test_tokenizer_loads_as_qwen2_with_single_token_newline():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model.ensure_model()))
    assert tok.encode("\n", add_special_tokens=False).__len__() == 1  # verl's Qwen CT builder needs it
    text = "3+4=? Put the answer in \\boxed{}."
    ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert tok.decode(ids) == f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"
    digits = sum(1 for t in tok.get_vocab() if t.isdigit())
    assert digits == 10 and len(tok) < 50  # a random model emits a digit ~1 in 4 tokens


@pytest.mark.parametrize(
    "response, truth, fmt, score",
    [
        ("so \\boxed{7}", "7", 0.0, 1.0),
        ("12 then 7", "7", 0.0, 1.0),
        ("7 then 12", "7", 0.1, 0.1),
        ("no digits", "7", 0.1, 0.0),
        ("\\boxed{3} 7", "7", 0.0, 0.0),
    ],
)
def test_fixture_reward(response, truth, fmt, score):
    result = reward.compute_score("math", response, truth, format_score=fmt)
    assert result["score"] == score
    assert result["acc"] == (score == 1.0)
