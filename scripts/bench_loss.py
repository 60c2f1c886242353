#!/usr/bin/env python
"""Forward+backward cost of each policy loss against verl's ``vanilla`` on the same tensors.

Prints, per loss: median fwd+bwd time, its ratio to vanilla (measured interleaved in this one
run), and how many ``[batch, len]``-sized tensors autograd keeps alive for the backward pass.
Target: ``aspo`` <= 1.05x vanilla, only a few ``[batch, len]`` temporaries.

    python scripts/bench_loss.py                      # 64 x 4096 tokens, CPU (or CUDA if present)
    python scripts/bench_loss.py --batch 8 --len 512 --reps 5 --device cpu
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import verl  # noqa: F401  loads the aspo plugin through the verl.plugins entry point
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig

from aspo.config import AspoPolicyLossConfig

LOSSES = ["vanilla", "aspo", "no_is", "asympo", "spo", "cispo"]


def make_inputs(batch: int, length: int, device: str, seed: int = 0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    old = (torch.randn(batch, length, generator=g) - 2.0).to(device)
    lp = (old + 0.3 * torch.randn(batch, length, generator=g)).to(device)
    adv = torch.randn(batch, 1, generator=g).expand(batch, length).contiguous().to(device)
    lengths = torch.randint(length // 4, length + 1, (batch, 1), generator=g)
    mask = (torch.arange(length).unsqueeze(0) < lengths).to(device)
    return old, lp, adv, mask


def saved_tensor_count(fn, kwargs, lp0, unit_bytes: int) -> float:
    """Bytes autograd saves for backward, in units of one [batch, len] tensor of lp's dtype."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    lp = lp0.clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, _ = fn(log_prob=lp, **kwargs)
    seen, total = set(), 0
    for t in saved:
        key = (t.untyped_storage().data_ptr(), t.dtype)
        if key not in seen and t.data_ptr() != lp.data_ptr():
            seen.add(key)
            total += t.untyped_storage().nbytes()
    del loss
    return total / unit_bytes


def time_once(fn, kwargs, lp0, device: str) -> float:
    lp = lp0.clone().requires_grad_(True)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    loss, _metrics = fn(log_prob=lp, **kwargs)
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--len", type=int, default=4096)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--mode", default="token-mean")
    args = p.parse_args()

    old, lp0, adv, mask = make_inputs(args.batch, args.len, args.device)
    config = ActorConfig(
        strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=1, policy_loss=AspoPolicyLossConfig()
    )
    common = dict(old_log_prob=old, advantages=adv, response_mask=mask, loss_agg_mode=args.mode, config=config)
    fns = {name: get_policy_loss_fn(name) for name in LOSSES}

    import warnings

    warnings.filterwarnings("ignore", message="policy loss .* is defined per response")
    for name, fn in fns.items():  # warm-up
        for _ in range(3):
            time_once(fn, common, lp0, args.device)
    times: dict[str, list[float]] = {name: [] for name in LOSSES}
    for _ in range(args.reps):  # interleaved, so drift hits every loss alike
        for name, fn in fns.items():
            times[name].append(time_once(fn, common, lp0, args.device))

    unit = lp0.numel() * lp0.element_size()
    base = statistics.median(times["vanilla"])
    print(f"policy-loss fwd+bwd, {args.batch} x {args.len} tokens, {args.mode}, device={args.device}, "
          f"torch threads={torch.get_num_threads()}, {args.reps} interleaved reps")
    print(f"{'loss':<10} {'median ms':>10} {'vs vanilla':>11} {'saved [B,T] tensors':>20}")
    for name in LOSSES:
        med = statistics.median(times[name])
        saved = saved_tensor_count(fns[name], common, lp0, unit)
        print(f"{name:<10} {med * 1e3:>10.2f} {med / base:>10.3f}x {saved:>20.1f}")


if __name__ == "__main__":
    main()
