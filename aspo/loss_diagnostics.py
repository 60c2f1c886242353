"""Per-micro-batch diagnostics of any policy loss: ASymPO's scale imbalance and ASPO's credit view.

Both come from one number per token, read off autograd rather than re-derived per loss, so they
mean the same for verl's ``vanilla``, ``aspo``, ``no_is``, ``asympo``, ``spo`` or a new loss:

- ``g_t = d pg_loss / d log_prob_t``: the gradient the policy loss actually sends to token t;
- ``s_t = d agg(loss_mat) / d loss_mat_t``: the weight the aggregation mode gives token t.

A plain REINFORCE loss ``agg(-A * log_prob)`` would send ``-A_t * s_t``; the **gradient weight**
``w_t = g_t / (-A_t * s_t)`` is what the loss does on top of that (PPO: ``r`` inside the clip, 0
clipped; ASPO: ``1/r`` for A > 0; SPO: ``lambda`` for A < 0 responses; ASymPO: ``1 / l_g``). It is
the ``w`` of ``shared/design/aspo.md``, rollout-correction weights included.

Metrics (omitted when no token has that sign / falls in that bucket):

- ``actor/nll_pos_adv``, ``actor/nll_neg_adv``: mean over responses of each advantage sign of the
  response's mean token NLL under the current policy (``-log_prob``); ``actor/nll_ratio_neg_pos``
  their ratio. ASymPO's point: under staleness the two signs sit at different NLL scales, so
  zero-sum advantages no longer give balanced contributions.
- ``actor/pg_grad_share_pos``, ``actor/pg_grad_share_neg``: each sign's share of the policy
  loss's gradient, ``sum |g_t|`` over that sign's tokens over the sum over all (they add up to 1).
- ``actor/credit_w_pos_oldp_<lo>_<hi>``, ``actor/credit_w_neg_oldp_<lo>_<hi>``: mean ``w`` of A > 0 / A < 0
  tokens whose old-policy probability ``exp(old_log_prob)`` lies in ``[lo, hi)`` (deciles of
  probability, fixed so runs compare). The ASPO paper's view: GRPO gives low-probability positive
  tokens a small weight (``w = r``, and ``r`` tends to be small there); ASPO does not.

Cost: one ``autograd.grad`` through the loss's own small graph (``[batch, len]`` elementwise ops,
not the model) and a few reductions, per micro-batch.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from aspo.losses.common import aggregate

BUCKET_EDGES = tuple(i / 10 for i in range(11))


def bucket_name(sign: str, lo: float, hi: float) -> str:
    return f"actor/credit_w_{sign}_oldp_{lo:.1f}_{hi:.1f}"


def aggregation_weights(response_mask: torch.Tensor, loss_agg_mode: str, config: Any) -> torch.Tensor:
    """``s_t``: the gradient of the aggregated loss with respect to each token's loss (linear in it)."""
    with torch.enable_grad():
        probe = torch.zeros(response_mask.shape, dtype=torch.float64, device=response_mask.device, requires_grad=True)
        (s,) = torch.autograd.grad(aggregate(probe, response_mask, loss_agg_mode, config, None), probe)
    return s


def loss_diagnostics(
    *,
    grad_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    old_log_prob: Optional[torch.Tensor],
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    agg_weights: torch.Tensor,
) -> dict[str, float]:
    """The metrics above from ``g`` (``grad_log_prob``), the step's tensors and ``s`` (``agg_weights``)."""
    with torch.no_grad():
        mask = response_mask.bool()
        adv = advantages.double()
        pos, neg = (adv > 0) & mask, (adv < 0) & mask
        out: dict[str, torch.Tensor] = {}

        lengths = mask.sum(-1).clamp_min(1)
        nll = -(log_prob.detach().double() * mask).sum(-1) / lengths  # per response
        resp_pos, resp_neg = pos.any(-1), neg.any(-1)
        if resp_pos.any():
            out["actor/nll_pos_adv"] = nll[resp_pos].mean()
        if resp_neg.any():
            out["actor/nll_neg_adv"] = nll[resp_neg].mean()
        if resp_pos.any() and resp_neg.any():
            out["actor/nll_ratio_neg_pos"] = out["actor/nll_neg_adv"] / out["actor/nll_pos_adv"].clamp_min(1e-12)

        g = grad_log_prob.detach().double()
        total = (g.abs() * mask).sum()
        if total > 0:
            out["actor/pg_grad_share_pos"] = (g.abs() * pos).sum() / total
            out["actor/pg_grad_share_neg"] = (g.abs() * neg).sum() / total

        if old_log_prob is not None:
            reinforce = -adv * agg_weights.double()
            valid = (pos | neg) & (reinforce != 0)
            w = torch.where(valid, g / torch.where(valid, reinforce, torch.ones_like(reinforce)), torch.zeros_like(g))
            bucket = torch.bucketize(old_log_prob.detach().double().exp().clamp(0, 1 - 1e-12),
                                     torch.tensor(BUCKET_EDGES[1:-1], dtype=torch.float64, device=g.device))
            for sign, chosen in (("pos", pos & valid), ("neg", neg & valid)):
                counts = torch.zeros(10, dtype=torch.float64, device=g.device).index_add_(0, bucket[chosen], torch.ones_like(w[chosen]))
                sums = torch.zeros(10, dtype=torch.float64, device=g.device).index_add_(0, bucket[chosen], w[chosen])
                for i in torch.nonzero(counts).flatten().tolist():
                    out[bucket_name(sign, BUCKET_EDGES[i], BUCKET_EDGES[i + 1])] = sums[i] / counts[i]
        if not out:
            return {}
        values = torch.stack(list(out.values())).tolist()  # one host sync
    return dict(zip(out.keys(), values, strict=True))
