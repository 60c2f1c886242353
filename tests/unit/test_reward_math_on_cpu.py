"""Math verifier: answer extraction, math-verify equivalence in killable worker processes, hostile
inputs that must come back within the timeout, and calls from a non-main thread and a Ray actor."""

from __future__ import annotations

import threading
import time

import pytest

import reward
from reward import _runtime
from reward.math.extract import extract_math_answer, last_boxed

TIMEOUT_S = 3.0
WALL_BOUND_S = TIMEOUT_S + 15.0  # worker (re)spawn imports sympy; slack for a loaded 2-core box


@pytest.fixture(scope="module", autouse=True)
def math_settings():
    reward.configure(math_timeout_s=TIMEOUT_S, math_workers=2)
    yield
    reward.configure(math_timeout_s=reward.RewardConfig().math_timeout_s, math_workers=0)


def score(resp: str, gt, source: str = "math") -> dict:
    return reward.compute_score(data_source=source, solution_str=resp, ground_truth=gt, extra_info={})


# ---------------------------------------------------------------------------------- extraction
def test_last_box_after_think_wins():
    assert extract_math_answer(r"<think>\boxed{1}</think> a \boxed{2} then \boxed{ \frac{3}{4} }") == r"\frac{3}{4}"
    assert extract_math_answer(r"\fbox{7}") == "7"
    assert extract_math_answer(r"<think>so \boxed{5}") is None  # answer only inside the reasoning
    assert extract_math_answer("the answer is 5") is None
    assert last_boxed(r"\boxed{\{1,2\}}") == r"\{1,2\}"
    assert last_boxed(r"\boxed{a^{b^{c}}}") == "a^{b^{c}}"
    assert last_boxed(r"\boxed{1} \boxed{2") is None  # malformed last box: no fallback to an earlier one


# ---------------------------------------------------------------------------- positives/negatives
@pytest.mark.parametrize("answer, gt", [
    ("0.5", r"\frac{1}{2}"),
    (r"\dfrac{1}{2}", "1/2"),
    (r"\sqrt{8}", r"2\sqrt{2}"),
    (r"\frac{1}{\sqrt{2}}", r"\frac{\sqrt{2}}{2}"),
    (r"\{2, 1\}", r"\{1,2\}"),
    ("1,000,000", "1000000"),
    ("1+x^2", "x^2+1"),
    ("10.0", "10"),
])
def test_equivalent_answers_score_one(answer, gt):
    res = score(rf"<think>scratch \boxed{{999}}</think> The answer is $\boxed{{{answer}}}$.", gt)
    assert res["score"] == 1.0 and res["acc"] is True and res["reason"] == "correct", res


@pytest.mark.parametrize("resp, gt, reason", [
    (r"\boxed{3}", "0.5", "wrong"),
    (r"\boxed{3.14}", r"\pi", "wrong"),
    (r"\boxed{(2, 1)}", "(1, 2)", "wrong"),  # ordered pairs are not sets
    (r"\boxed{1/2} then finally \boxed{1/3}", "1/2", "wrong"),  # last box wins
    (r"<think>\boxed{1/2}</think> I give up.", "1/2", "no_answer"),  # answer inside <think> ignored
    ("The answer is 1/2.", "1/2", "no_answer"),
])
def test_wrong_or_missing_answers_score_zero(resp, gt, reason):
    res = score(resp, gt)
    assert res["score"] == 0.0 and res["acc"] is False and res["reason"] == reason, res


def test_several_accepted_ground_truths():
    assert score(r"\boxed{6}", ["5", "6"])["score"] == 1.0
    assert score(r"\boxed{7}", ["5", "6"])["score"] == 0.0


# -------------------------------------------------------------------------------------- hostile
HOSTILE = {
    "power_tower": r"\boxed{2^{2^{2^{2^{2^{2}}}}}}",
    "power_tower_factorial": r"\boxed{9^{9^{9^{9}}}!}",
    "answer_100kb": r"\boxed{" + "1+" * 50_000 + "1}",
    "deep_nesting": r"\boxed{" + r"\frac{1}{" * 400 + "2" + "}" * 400 + "}",
    "many_boxes": r"\boxed{1} " * 20_000 + r"\boxed{\sqrt{2}}",
    "unbalanced": r"\boxed{\frac{1}{2}" + "{" * 5000,
    "nul_bytes": "\x00\\boxed{\x001\x00/2}\x00",
    "lone_surrogates": "\ud800 \\boxed{\udfff}\udc00",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_return_in_time(name):
    t0 = time.monotonic()
    res = score(HOSTILE[name], "5")
    wall = time.monotonic() - t0
    assert wall < WALL_BOUND_S, (name, wall, res)
    assert res["score"] == 0.0 and set(res) == {"score", "acc", "pred", "reason"}, res


def test_hostile_inputs_do_not_break_right_answers():
    # NUL bytes are dropped, so the genuinely right answer still counts.
    assert score(HOSTILE["nul_bytes"], "1/2")["score"] == 1.0
    assert score(HOSTILE["many_boxes"], r"\sqrt{2}")["score"] == 1.0


def test_100kb_answer_goes_through_the_pool_when_uncapped():
    reward.configure(math_max_answer_chars=0)
    try:
        t0 = time.monotonic()
        res = score(HOSTILE["answer_100kb"], "5")
        assert time.monotonic() - t0 < WALL_BOUND_S and res["score"] == 0.0, res
        assert res["reason"] in ("wrong", "timeout", "verifier_error"), res
    finally:
        reward.configure(math_max_answer_chars=reward.RewardConfig().math_max_answer_chars, math_timeout_s=TIMEOUT_S,
                         math_workers=2)


def test_stuck_worker_is_killed_and_replaced():
    """Work that ignores math-verify's alarm (C code) is killed by the parent; the pool recovers."""
    from concurrent.futures import TimeoutError as FutureTimeout

    pool = _runtime.math_pool()
    pool_obj = pool._get()
    t0 = time.monotonic()
    fut = pool_obj.schedule(time.sleep, args=(1000,), timeout=1.0)
    with pytest.raises(FutureTimeout):
        fut.result(timeout=WALL_BOUND_S)
    assert time.monotonic() - t0 < WALL_BOUND_S
    assert score(r"\boxed{\frac{2}{4}}", "0.5")["score"] == 1.0  # a fresh worker took over


def test_timeout_reason_for_a_power_tower():
    res = score(r"\boxed{2^{2^{2^{2^{2^{2}}}}}}", "2")
    assert res["score"] == 0.0 and res["reason"] in ("timeout", "wrong"), res


# ------------------------------------------------------------------------------ calling contexts
def test_works_from_a_non_main_thread():
    out = {}

    def work():
        out["ok"] = score(r"\boxed{\dfrac{3}{6}}", "0.5")
        out["tower"] = score(HOSTILE["power_tower"], "2")

    t = threading.Thread(target=work)
    t.start()
    t.join(2 * WALL_BOUND_S)
    assert not t.is_alive()
    assert out["ok"]["score"] == 1.0 and out["tower"]["score"] == 0.0


def test_outer_alarm_of_the_caller_is_untouched():
    import signal

    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.alarm(30)
        score(HOSTILE["power_tower"], "2")
        remaining = signal.alarm(0)
        assert 0 < remaining <= 30 and not fired  # math-verify never touched our alarm
    finally:
        signal.signal(signal.SIGALRM, old)


def test_works_inside_a_ray_actor():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=1, include_dashboard=False, object_store_memory=80 * 1024 * 1024,
             log_to_driver=False, configure_logging=False)
    try:
        @ray.remote(num_cpus=0)
        class Scorer:
            def run(self, timeout_s):
                import reward as r

                r.configure(math_timeout_s=timeout_s, math_workers=1)
                good = r.compute_score("math500", r"\boxed{\frac{1}{2}}", "0.5")
                tower = r.compute_score("math500", r"\boxed{2^{2^{2^{2^{2^{2}}}}}}", "2")
                batch = r.compute_score_batch(["math", "aime"], [r"\boxed{2}", r"\boxed{3}"], ["2", "4"])
                return good, tower, batch

        actor = Scorer.remote()
        good, tower, batch = ray.get(actor.run.remote(TIMEOUT_S), timeout=120)
        assert good["score"] == 1.0
        assert tower["score"] == 0.0
        assert [b["score"] for b in batch] == [1.0, 0.0]
    finally:
        ray.shutdown()


# ------------------------------------------------------------------------------- parent fast path
@pytest.mark.parametrize("answer, gt, verdict", [
    ("42", "42", True), ("1,000", "1000", True), ("0.25", r"\frac{1}{4}", True), (r"\dfrac{1}{4}", "1/4", True),
    (r"-\frac{1}{2}", "-0.5", True), ("3", "4", False),
    ("0.3333333", "1/3", None),  # math-verify rounds decimals: its call, not ours
    ("1,2", "12", None),  # a set for math-verify, not a thousands separator
    (r"\sqrt{2}", "1.414", None),
])
def test_fast_path_only_decides_certain_cases(answer, gt, verdict):
    from reward.math.fastpath import quick_verdict

    assert quick_verdict(answer, gt) is verdict


def test_fast_path_agrees_with_math_verify():
    """Every verdict the fast path gives, the pool gives too (checked by forcing the pool)."""
    from reward.math.fastpath import quick_verdict

    pool = _runtime.math_pool()
    for answer, gt in [("1,000", "1000"), ("0.25", r"\frac{1}{4}"), (r"-\frac{1}{2}", "-0.5"), ("3", "4"), ("007", "7")]:
        fast = quick_verdict(answer, gt)
        slow = pool.submit(answer, gt, TIMEOUT_S).result(timeout=WALL_BOUND_S)
        assert fast is not None and (slow == "correct") == fast, (answer, gt, slow)
