"""Per-step metrics verl does not log: entropy and n-gram repetition split by advantage sign.

ASPO treats positive- and negative-advantage tokens differently, so their entropy (exploration
collapse shows up first on the positive side) and their degeneration into repetition are logged
separately. Pure tensor functions; ``aspo.runner.AspoTrainer`` feeds them the step's batch.

Names, logged every step:
- ``response/share_pos_adv``, ``response/share_neg_adv``: share of the step's responses whose mean
  advantage is positive / negative (the rest, advantage 0, carry no learning signal: a group whose
  responses all got the same reward). Always logged, 0 included.

Omitted for a sign no response has (a mean over nothing):
- ``actor/entropy_pos_adv``, ``actor/entropy_neg_adv``: token-mean entropy of the old policy.
- ``response/repetition_{n}gram_pos_adv``, ``..._neg_adv``: mean over responses of the share of
  their n-grams that repeat an earlier n-gram of the same response (0 for responses shorter than n).
"""

from __future__ import annotations

import torch

from aspo.ngram import repetition_ratios


def response_sign(advantages: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Sign (+1, -1, 0) of each response's mean advantage over its valid tokens."""
    mask = response_mask.to(advantages.dtype)
    mean = (advantages * mask).sum(-1) / mask.sum(-1).clamp_min(1)
    return torch.sign(mean)


def sign_shares(advantages: torch.Tensor, response_mask: torch.Tensor) -> dict[str, float]:
    sign = response_sign(advantages, response_mask)
    n = max(sign.numel(), 1)
    return {
        "response/share_pos_adv": (sign > 0).sum().item() / n,
        "response/share_neg_adv": (sign < 0).sum().item() / n,
    }


def entropy_by_sign(entropy: torch.Tensor, advantages: torch.Tensor, response_mask: torch.Tensor) -> dict[str, float]:
    sign = response_sign(advantages, response_mask)
    mask = response_mask.bool()
    out = {}
    for name, s in (("pos", 1.0), ("neg", -1.0)):
        tokens = mask & (sign == s).unsqueeze(-1)
        if tokens.any():
            out[f"actor/entropy_{name}_adv"] = entropy[tokens].float().mean().item()
    return out


def repetition_ratio(tokens: list[int], n: int) -> float:
    """Share of the response's n-grams that already occurred earlier in it.

    The definition, kept as the reference for ``aspo.ngram.repetition_ratios`` (the vectorised
    version ``repetition_by_sign`` uses; pure Python takes about a minute for 1024 x 32k tokens).
    """
    if len(tokens) < n:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    total = len(tokens) - n + 1
    for i in range(total):
        gram = tuple(tokens[i : i + n])
        if gram in seen:
            repeats += 1
        seen.add(gram)
    return repeats / total


def repetition_by_sign(
    responses: torch.Tensor, advantages: torch.Tensor, response_mask: torch.Tensor, n: int = 20
) -> dict[str, float]:
    sign = response_sign(advantages, response_mask)
    ratios = repetition_ratios(responses.cpu().numpy(), response_mask.bool().cpu().numpy(), n).tolist()
    out = {}
    for name, s in (("pos", 1.0), ("neg", -1.0)):
        chosen = [r for r, sg in zip(ratios, sign.tolist(), strict=True) if sg == s]
        if chosen:
            out[f"response/repetition_{n}gram_{name}_adv"] = sum(chosen) / len(chosen)
    return out
