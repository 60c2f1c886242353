"""The arithmetic task family: determinism, layout, and a reward that cannot be gamed."""

import random

import pandas as pd
import pytest

from aspo.tasks.arithmetic import LEVELS, compute_score, make_problem, make_rows, write_dataset


def score(text, gt="42"):
    return compute_score("arith", text, gt)["score"]


def test_rows_are_deterministic_and_in_verl_layout():
    a = make_rows(5, level=2, seed=3, split="train")
    b = make_rows(5, level=2, seed=3, split="train")
    assert a == b
    assert make_rows(5, level=2, seed=4, split="train") != a
    row = a[0]
    assert set(row) == {"data_source", "prompt", "ability", "reward_model", "extra_info"}
    assert row["prompt"][0]["role"] == "system" and row["prompt"][1]["role"] == "user"
    assert row["reward_model"]["style"] == "rule"
    assert row["extra_info"]["split"] == "train"


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_answers_are_right(level):
    rng = random.Random(0)
    for _ in range(50):
        expression, answer = make_problem(rng, level)
        assert str(answer) == str(int(eval(expression)))


def test_write_dataset_splits_are_disjoint(tmp_path):
    paths = write_dataset(tmp_path, n_train=100, n_val=30, level=2, seed=1)
    train, val = pd.read_parquet(paths["train"]), pd.read_parquet(paths["val"])
    assert len(train) == 100 and len(val) == 30
    q = lambda df: {p[1]["content"] for p in df["prompt"]}  # noqa: E731
    assert not q(train) & q(val)
    assert list(train["extra_info"].map(lambda e: e["index"])) == list(range(100))


def test_scores():
    assert score("The answer is \\boxed{42}.") == 1.0
    assert score("40 + 2 = 42") == 0.5  # right, unboxed
    assert score("\\boxed{41} no wait 42") == 0.0  # the box is the answer
    assert score("\\boxed{}") == 0.0
    assert score("\\boxed{ 42 }") == 1.0
    assert score("<think>\\boxed{42}</think> I think 7") == 0.0  # thinking is ignored
    assert score("no number") == 0.0
    assert compute_score("arith", "\\boxed{42}", "42")["acc"] is True
    assert compute_score("arith", "42", "42")["acc"] is False


def test_gaming_never_pays():
    # For every answer shape, an empty or wrong box scores no more than a wrong unboxed answer,
    # and the boxed right answer scores strictly more than the unboxed right one.
    wrong_unboxed = min(score(t) for t in ("41", "it is 7", "13 then 41"))
    gamed = ["\\boxed{}", "\\boxed{x}", "\\boxed{41}", "42 \\boxed{}", "42 \\boxed{0}", "\\boxed{42} \\boxed{}"]
    for text in gamed:
        assert score(text) <= wrong_unboxed, text
    assert score("\\boxed{42}") > score("42")
    for credit in (0.0, 0.3, 0.9):
        assert compute_score("arith", "\\boxed{}", "42", unboxed_credit=credit)["score"] == 0.0
    with pytest.raises(ValueError, match="unboxed_credit"):
        compute_score("arith", "42", "42", unboxed_credit=1.0)


def test_random_strings_never_beat_the_rule():
    rng = random.Random(0)
    pieces = ["\\boxed{", "}", "42", "41", " ", "x", "-", "4", "2"]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        s = score(text)
        assert s in (0.0, 0.5, 1.0)
        if s == 1.0:
            assert "\\boxed{" in text
