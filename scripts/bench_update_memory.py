#!/usr/bin/env python
"""Peak memory of one actor-update micro-batch, ASPO (entropy-aware clip) vs GRPO, with and without
verl's entropy chunking and checkpointing (``actor.entropy_from_logits_with_chunking`` /
``actor.entropy_checkpointing``, on by default in ``configs/base.yaml``).

The ASPO recipes' entropy-aware clip needs each token's entropy in the update, which the GRPO
baselines do not compute there. Computed plainly, entropy keeps several ``[tokens, vocab]`` fp32
temporaries alive for the backward pass (softmax, its product with the logits): at the recipes'
34,816-token micro-batch and a 152k vocabulary, one such tensor is ~10.6 GB in bf16. What differs
between the variants is only that logits-side memory, so this measures it directly: a ``[tokens,
hidden]`` activation goes through an LM head to logits, then log-probs (verl's
``logprobs_from_logits``), entropy exactly as verl's FSDP engine computes it (its branch on the two
flags, mirrored in ``entropy_like_verl_engine``), the registered policy loss, and backward. Each
variant runs in a fresh process; its peak is the rise of the process's peak RSS over the resident
size just before the step.

    python scripts/bench_update_memory.py                        # 2048 tokens x 151,936 vocab (CPU)
    python scripts/bench_update_memory.py --tokens 512 --vocab 32000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

# (name, loss_mode, entropy in the update, chunking + checkpointing)
VARIANTS = [
    ("grpo", "vanilla", False, False),
    ("grpo+chunk/ckpt", "vanilla", False, True),
    ("aspo", "aspo", True, False),
    ("aspo+chunk/ckpt", "aspo", True, True),
]


def entropy_like_verl_engine(logits, chunking: bool, checkpointing: bool, chunk_size: int):
    """verl 0.9.1 FSDP engine (``transformer_impl.py``, ``calculate_entropy`` branch), for one flag pair."""
    import torch
    from verl.utils import torch_functional as verl_F

    fn = verl_F.entropy_from_logits_with_chunking if chunking else verl_F.entropy_from_logits
    if not checkpointing:
        return fn(logits, chunk_size=chunk_size) if chunking else fn(logits)
    return torch.utils.checkpoint.checkpoint(fn, logits)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_variant(name: str, tokens: int, vocab: int, hidden: int, chunk_size: int) -> dict:
    import warnings

    import torch
    import verl  # noqa: F401  loads the aspo losses (verl.plugins entry point)
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    from verl.utils import torch_functional as verl_F
    from verl.workers.config import ActorConfig

    from aspo.config import AspoPolicyLossConfig

    warnings.filterwarnings("ignore", message=".*use_reentrant.*")
    _, loss_mode, with_entropy, chunk_ckpt = next(v for v in VARIANTS if v[0] == name)
    torch.manual_seed(0)
    act = torch.randn(tokens, hidden, requires_grad=True)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    labels = torch.randint(vocab, (1, tokens))
    adv = torch.randn(1, 1).expand(1, tokens).contiguous()
    mask = torch.ones(1, tokens, dtype=torch.bool)
    config = ActorConfig(
        strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=1,
        policy_loss=AspoPolicyLossConfig(loss_mode=loss_mode, entropy_clip=with_entropy),
    )
    loss_fn = get_policy_loss_fn(loss_mode)
    with torch.no_grad():
        old = verl_F.logprobs_from_logits(head(act), labels[0]).unsqueeze(0) + 0.05 * torch.randn(1, tokens)

    before = _rss_bytes()
    resource_peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    logits = head(act)  # [tokens, vocab]: the activation every variant has
    log_prob = verl_F.logprobs_from_logits(logits, labels[0]).unsqueeze(0)
    kwargs = {}
    if with_entropy:
        entropy = entropy_like_verl_engine(logits, chunk_ckpt, chunk_ckpt, chunk_size)
        kwargs["entropy"] = entropy.unsqueeze(0).detach()  # what aspo.patches.entropy_to_loss passes
    loss, _ = loss_fn(old_log_prob=old, log_prob=log_prob, advantages=adv, response_mask=mask,
                      loss_agg_mode="token-mean", config=config, **kwargs)
    loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "name": name,
        "peak_rise_bytes": peak - before,
        "peak_was_earlier": peak <= resource_peak_before,
        "logits_bytes": tokens * vocab * 4,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=151936)  # Qwen2.5 / DeepSeek-R1-Distill-Qwen
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--chunk-size", type=int, default=2048)
    p.add_argument("--variant", help=argparse.SUPPRESS)  # child process
    args = p.parse_args()
    sizes = (args.tokens, args.vocab, args.hidden, args.chunk_size)
    if args.variant:
        print(json.dumps(run_variant(args.variant, *sizes)))
        return

    results = {}
    for name, *_ in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", name, "--tokens", str(args.tokens), "--vocab", str(args.vocab),
               "--hidden", str(args.hidden), "--chunk-size", str(args.chunk_size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    logits = results["grpo"]["logits_bytes"]
    base = results["grpo"]["peak_rise_bytes"]
    print(f"update micro-batch peak memory, {args.tokens} tokens x {args.vocab} vocab (fp32 logits "
          f"{logits / 2**30:.2f} GiB), CPU, one process per variant")
    print(f"{'variant':<18} {'peak rise GiB':>14} {'x logits':>9} {'vs grpo':>8}")
    for name, r in results.items():
        rise = r["peak_rise_bytes"]
        print(f"{name:<18} {rise / 2**30:>14.2f} {rise / logits:>9.2f} {rise / base:>7.2f}x")
    a, b = results["aspo"]["peak_rise_bytes"], results["aspo+chunk/ckpt"]["peak_rise_bytes"]
    print(f"ASPO extra over GRPO: {(a - base) / 2**30:.2f} GiB without, "
          f"{(b - base) / 2**30:.2f} GiB with chunking+checkpointing ({b / a:.2f}x of ASPO's peak)")


if __name__ == "__main__":
    main()
