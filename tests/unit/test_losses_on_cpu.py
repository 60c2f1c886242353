"""Gradients and metrics of our policy losses on hand-built batches.

Every expected weight below is written out by hand from the contract (shared/design/aspo.md):
``d loss / d log_prob_t = -A_t * w_t / N`` under ``token-mean`` with N valid tokens.
"""

import math
import subprocess
import sys

import pytest
import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig

from aspo.config import AspoPolicyLossConfig



@pytest.fixture(autouse=True)
def float64_default():
    """Hand-computed expectations are checked in float64; restore the default for other modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def actor_config(**kw) -> ActorConfig:
    policy_loss = kw.pop("policy_loss", None) or AspoPolicyLossConfig()
    return ActorConfig(strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=1, policy_loss=policy_loss, **kw)


# One row per branch. Columns: ratio r, advantage A, mask. old_log_prob = 0, log_prob = log r.
# eps_low = eps_high = 0.2, c = 3.
BRANCHES = [
    # r,    A,    mask   aspo w      no_is w   what it hits
    (1.10, +1.0, 1, 1 / 1.10, 1.0),  # A>0 inside: flipped weight 1/r
    (1.50, +1.0, 1, 0.0, 0.0),  # A>0 r > 1.2: hard clip
    (0.25, +1.0, 1, 3.0, 1.0),  # A>0 r < 1/c: soft dual clip, weight c
    (0.50, +1.0, 1, 2.0, 1.0),  # A>0 inside, r just above 1/c: 1/r = 2
    (0.90, -1.0, 1, 0.90, 1.0),  # A<0 inside: weight r
    (0.50, -1.0, 1, 0.0, 0.0),  # A<0 r < 0.8: hard clip
    (4.00, -1.0, 1, 3.0, 1.0),  # A<0 r > c: soft dual clip, weight c
    (2.00, -1.0, 1, 2.0, 1.0),  # A<0 inside (no upper clip for A<0): weight r
    (1.30, 0.0, 1, 0.0, 0.0),  # A = 0: no gradient
    (1.10, +1.0, 0, 0.0, 0.0),  # masked token: no gradient
]


def branch_batch(rows=2):
    """The BRANCHES laid out as a [rows, len] batch (row-major)."""
    n = len(BRANCHES)
    r = torch.tensor([b[0] for b in BRANCHES]).view(rows, n // rows)
    adv = torch.tensor([b[1] for b in BRANCHES]).view(rows, n // rows)
    mask = torch.tensor([b[2] for b in BRANCHES], dtype=torch.bool).view(rows, n // rows)
    log_prob = r.log().clone().requires_grad_(True)
    old = torch.zeros_like(log_prob)
    return old, log_prob, adv, mask


def grad_of(loss_name, old, log_prob, adv, mask, mode="token-mean", config=None, **kw):
    config = config or actor_config()
    loss, metrics = get_policy_loss_fn(loss_name)(
        old_log_prob=old,
        log_prob=log_prob,
        advantages=adv,
        response_mask=mask,
        loss_agg_mode=mode,
        config=config,
        **kw,
    )
    (g,) = torch.autograd.grad(loss, log_prob)
    return loss.detach(), g, metrics


@pytest.mark.parametrize("loss_name,col", [("aspo", 3), ("no_is", 4)])
def test_token_mean_gradient_per_branch(loss_name, col):
    old, lp, adv, mask = branch_batch()
    _, g, _ = grad_of(loss_name, old, lp, adv, mask)
    n_valid = 9
    expected = torch.tensor([-b[1] * b[col] / n_valid for b in BRANCHES]).view_as(g)
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)


def test_aspo_numbers_spelled_out():
    old, lp, adv, mask = branch_batch()
    _, g, _ = grad_of("aspo", old, lp, adv, mask)
    # -A * w / 9, by hand.
    expected = torch.tensor(
        [
            [-1 / 1.1 / 9, 0.0, -3 / 9, -2 / 9, 0.9 / 9],
            [0.0, 3 / 9, 2 / 9, 0.0, 0.0],
        ]
    )
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)


def test_aspo_seq_mean_token_mean():
    old, lp, adv, mask = branch_batch()
    _, g, _ = grad_of("aspo", old, lp, adv, mask, mode="seq-mean-token-mean")
    # Row 0 has 5 valid tokens, row 1 has 4; two sequences.
    n_row = torch.tensor([[5.0], [4.0]])
    w = torch.tensor([b[3] for b in BRANCHES]).view_as(g)
    expected = -adv * w / n_row / 2
    # verl's agg_loss divides by (tokens + 1e-8) in this mode: relative error ~1e-9.
    torch.testing.assert_close(g, expected, rtol=1e-7, atol=1e-12)


def test_rollout_is_weights_scale_each_token():
    old, lp, adv, mask = branch_batch()
    is_w = torch.linspace(0.5, 1.5, 10).view_as(adv)
    _, g_plain, _ = grad_of("aspo", old, lp, adv, mask)
    _, g_w, _ = grad_of("aspo", old, lp, adv, mask, rollout_is_weights=is_w)
    torch.testing.assert_close(g_w, g_plain * is_w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "token-sum", "seq-mean-token-sum"])
def test_aspo_on_policy_equals_vanilla(mode):
    torch.manual_seed(0)
    lp0 = torch.randn(6, 11) - 2.0
    adv = torch.randn(6, 1).expand(6, 11).contiguous()
    mask = torch.rand(6, 11) > 0.2
    results = []
    for name in ("aspo", "vanilla"):
        lp = lp0.clone().requires_grad_(True)
        loss, g, _ = grad_of(name, lp0.clone(), lp, adv, mask, mode=mode)
        results.append((loss, g))
    (loss_a, g_a), (loss_v, g_v) = results
    torch.testing.assert_close(g_a, g_v, rtol=0, atol=1e-15)
    torch.testing.assert_close(loss_a, loss_v, rtol=0, atol=1e-15)


@pytest.mark.filterwarnings("ignore:policy loss .* is defined per response")
@pytest.mark.parametrize("loss_name", ["aspo", "no_is", "asympo", "spo", "vanilla"])
@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_micro_batches_with_global_info_match_one_batch(loss_name, mode):
    torch.manual_seed(1)
    B, T = 8, 7
    lp0 = torch.randn(B, T) - 1.5
    old = lp0 + 0.4 * torch.randn(B, T)
    adv = torch.randn(B, 1).expand(B, T).contiguous()
    mask = torch.rand(B, T) > 0.3
    mask[:, 0] = True

    lp = lp0.clone().requires_grad_(True)
    _, g_full, _ = grad_of(loss_name, old, lp, adv, mask, mode=mode)

    config = actor_config()
    config.global_batch_info.update(dp_size=1, batch_num_tokens=int(mask.sum()), global_batch_size=B)
    lp = lp0.clone().requires_grad_(True)
    total = 0.0
    for rows in (slice(0, 3), slice(3, B)):
        loss, _ = get_policy_loss_fn(loss_name)(
            old_log_prob=old[rows],
            log_prob=lp[rows],
            advantages=adv[rows],
            response_mask=mask[rows],
            loss_agg_mode=mode,
            config=config,
        )
        total = total + loss
    (g_micro,) = torch.autograd.grad(total, lp)
    torch.testing.assert_close(g_micro, g_full, rtol=1e-10, atol=1e-14)


def test_contract_metrics_on_branch_batch():
    old, lp, adv, mask = branch_batch()
    _, _, m = grad_of("aspo", old, lp, adv, mask)
    expected = {
        "actor/pg_clipfrac_upper": 1 / 9,
        "actor/pg_clipfrac_lower": 1 / 9,
        "actor/pg_clipfrac": 2 / 9,
        "actor/pg_dualclipfrac_pos": 1 / 9,
        "actor/pg_dualclipfrac_neg": 1 / 9,
        "actor/ppo_kl": -sum(math.log(b[0]) for b in BRANCHES if b[2]) / 9,
        "actor/is_weight_pos_mean": (1 / 1.1 + 0 + 3 + 2) / 4,
        "actor/is_weight_neg_mean": (0.9 + 0 + 3 + 2) / 4,
        "actor/is_weight_max": 3.0,
        "actor/pos_token_frac": 4 / 9,
    }
    assert set(m) == set(expected)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("loss_name", ["aspo", "no_is", "asympo", "spo"])
def test_every_loss_returns_the_contract_metrics(loss_name):
    old, lp, adv, mask = branch_batch()
    _, _, m = grad_of(loss_name, old, lp, adv, mask)
    for key in (
        "pg_clipfrac_upper",
        "pg_clipfrac_lower",
        "pg_clipfrac",
        "pg_dualclipfrac_pos",
        "pg_dualclipfrac_neg",
        "ppo_kl",
        "is_weight_pos_mean",
        "is_weight_neg_mean",
        "is_weight_max",
        "pos_token_frac",
    ):
        assert math.isfinite(m[f"actor/{key}"]), key


def test_entropy_aware_clip_widens_only_high_entropy_tokens():
    # Five valid tokens, all A>0 with r = 1.3 (outside 0.2, inside 0.4). Entropies: one clear outlier.
    lp = torch.full((1, 5), math.log(1.3)).requires_grad_(True)
    old = torch.zeros(1, 5)
    adv = torch.ones(1, 5)
    mask = torch.ones(1, 5, dtype=torch.bool)
    entropy = torch.tensor([[0.1, 0.2, 0.3, 0.4, 5.0]])  # 0.8-quantile = 1.32: only the last is "high"
    cfg = actor_config(policy_loss=AspoPolicyLossConfig(loss_mode="aspo", entropy_clip=True))
    _, g, m = grad_of("aspo", old, lp, adv, mask, config=cfg, entropy=entropy)
    expected = torch.tensor([[0.0, 0.0, 0.0, 0.0, -1 / 1.3 / 5]])
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=1e-12)
    assert m["actor/pg_clipfrac_upper"] == pytest.approx(4 / 5)
    # Uniform clip (the default) clips all five.
    _, g_uniform, _ = grad_of("aspo", old, lp, adv, mask)
    assert torch.count_nonzero(g_uniform) == 0


def test_entropy_clip_without_entropy_is_a_clear_error():
    old, lp, adv, mask = branch_batch()
    cfg = actor_config(policy_loss=AspoPolicyLossConfig(loss_mode="aspo", entropy_clip=True))
    with pytest.raises(ValueError, match="entropy_clip=true needs the per-token entropy"):
        grad_of("aspo", old, lp, adv, mask, config=cfg)


def sequence_batch():
    """Two responses: A=+1 with log-probs [-1, -3] (l=2), A=-1 with [-0.5, -0.5, -2] (l=1)."""
    lp = torch.tensor([[-1.0, -3.0, 0.0], [-0.5, -0.5, -2.0]]).requires_grad_(True)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    adv = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    return lp, mask, adv


def test_asympo_gradient_and_value():
    lp, mask, adv = sequence_batch()
    loss, g, m = grad_of("asympo", torch.zeros_like(lp), lp, adv, mask, mode="seq-mean-token-mean")
    # d/dlp_t = -A / (l_g * T_g * G): row 0: -1/(2*2*2); row 1: +1/(1*3*2).
    expected = torch.tensor([[-0.125, -0.125, 0.0], [1 / 6, 1 / 6, 1 / 6]])
    torch.testing.assert_close(g, expected, rtol=1e-7, atol=1e-12)  # agg_loss's +1e-8
    assert loss.item() == pytest.approx(0.0, abs=1e-8)  # value = mean_g A_g, zero-sum here
    assert m["actor/is_weight_pos_mean"] == pytest.approx(0.5)  # w = 1 / l_g
    assert m["actor/is_weight_neg_mean"] == pytest.approx(1.0)


def test_asympo_does_not_depend_on_old_log_prob():
    lp, mask, adv = sequence_batch()
    out = []
    for old in (torch.zeros_like(lp), torch.randn(lp.shape) * 5, lp.detach().clone()):
        loss, g, _ = grad_of("asympo", old, lp, adv, mask, mode="seq-mean-token-mean")
        out.append((loss, g))
    for loss, g in out[1:]:
        assert torch.equal(loss, out[0][0]) and torch.equal(g, out[0][1])


def test_spo_gradient():
    lp, mask, adv = sequence_batch()
    cfg = actor_config(policy_loss=AspoPolicyLossConfig(loss_mode="spo", spo_lambda=0.5))
    loss, g, m = grad_of("spo", torch.zeros_like(lp), lp, adv, mask, mode="seq-mean-token-mean", config=cfg)
    # d/dlp_t = -s_g * A_g / (T_g * G): row 0: -1/(2*2); row 1: +0.5/(3*2).
    expected = torch.tensor([[-0.25, -0.25, 0.0], [0.5 / 6, 0.5 / 6, 0.5 / 6]])
    torch.testing.assert_close(g, expected, rtol=1e-7, atol=1e-12)  # agg_loss's +1e-8
    # value: mean_g s_g A_g l_g = (1*1*2 + 0.5*(-1)*1) / 2
    assert loss.item() == pytest.approx(0.75, rel=1e-7)
    assert m["actor/is_weight_neg_mean"] == pytest.approx(0.5)


def test_sequence_losses_warn_under_token_mean():
    lp, mask, adv = sequence_batch()
    with pytest.warns(UserWarning, match="seq-mean-token-mean"):
        from aspo.losses import sequence_nll

        sequence_nll._warned.clear()
        grad_of("spo", torch.zeros_like(lp), lp, adv, mask, mode="token-mean")


def test_plugins_registered_in_fresh_interpreter():
    # verl swallows plugin import errors, so check the registry itself after a bare `import verl`.
    code = (
        "import verl\n"
        "from verl.trainer.ppo.core_algos import POLICY_LOSS_REGISTRY as R\n"
        "print(','.join(sorted(R)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names = set(out.strip().splitlines()[-1].split(","))
    assert {"aspo", "no_is", "asympo", "spo", "vanilla", "cispo", "gspo"} <= names


def archer_reference(old, lp, adv, mask, eps=0.2, c=3.0):
    """The contract's formulation (= Archer2.0's compute_policy_loss_archer, uniform clip), token-mean."""
    ratio = torch.exp(torch.clamp(lp - old, -20, 20))
    neg_clip = torch.clamp(ratio, min=1 - eps)
    neg_loss = torch.where(neg_clip > c, -adv * c * lp, -adv * neg_clip)
    rc = torch.clamp(ratio, max=1 + eps)
    pos_loss = torch.where(1 / rc > c, -adv * c * lp, -adv * (rc / rc.detach()) / rc.detach())
    loss_mat = torch.where(adv < 0, neg_loss, pos_loss)
    return (loss_mat * mask).sum() / mask.sum()


def test_aspo_matches_reference_formulation_off_policy():
    torch.manual_seed(3)
    B, T = 16, 33
    old = torch.randn(B, T) - 2.0
    lp0 = old + 0.8 * torch.randn(B, T)  # wide spread: every branch is hit
    adv = torch.randn(B, 1).expand(B, T).contiguous()
    mask = torch.rand(B, T) > 0.25
    lp = lp0.clone().requires_grad_(True)
    loss, g, _ = grad_of("aspo", old, lp, adv, mask)
    lp_ref = lp0.clone().requires_grad_(True)
    ref = archer_reference(old, lp_ref, adv, mask)
    (g_ref,) = torch.autograd.grad(ref, lp_ref)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)
