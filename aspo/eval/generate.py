"""Generation backends: ``n`` samples for each chat-templated prompt.

``hf`` runs ``transformers.generate`` (CPU, or one GPU without vLLM) in left-padded batches;
``vllm`` runs vLLM's offline ``LLM`` (GPU). vLLM is imported only when chosen, so this module
loads on machines without it. Both return, per prompt, its ``n`` decoded responses (special tokens
removed) and the number of generated tokens (for throughput).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass
class Generations:
    texts: list[list[str]]  # [prompt][sample]
    tokens: int = 0  # generated tokens in total
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class Generator(Protocol):
    tokenizer: object

    def generate(self, prompts: Sequence[str], n: int, temperature: float, top_p: float,
                 max_new_tokens: int, seed: int) -> Generations: ...


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


class HFGenerator:
    """``transformers`` sampling; left padding so a batch's prompts end where generation starts."""

    def __init__(self, model_path: str, batch_size: int = 8, dtype: str = "float32", device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        self.tokenizer = load_tokenizer(model_path)
        self.tokenizer.padding_side = "left"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(self.device)
        self.model.eval()
        self.batch_size = batch_size

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed) -> Generations:
        import torch

        torch.manual_seed(seed)
        texts: list[list[str]] = []
        tokens, start = 0, time.perf_counter()
        pad_id = self.tokenizer.pad_token_id
        for i in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(list(prompts[i:i + self.batch_size]), return_tensors="pt", padding=True,
                                   add_special_tokens=False).to(self.device)
            with torch.no_grad():
                out = self.model.generate(**batch, do_sample=temperature > 0, temperature=temperature or None,
                                          top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
                                          num_return_sequences=n, pad_token_id=pad_id)
            new = out[:, batch["input_ids"].shape[1]:]
            tokens += int((new != pad_id).sum())
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            texts.extend(decoded[j * n:(j + 1) * n] for j in range(len(decoded) // n))
        return Generations(texts, tokens, time.perf_counter() - start)


class VLLMGenerator:
    """vLLM offline inference; one engine per process (tensor parallel over ``tp`` GPUs)."""

    def __init__(self, model_path: str, tp: int = 1, max_model_len: int = 34816, gpu_memory_utilization: float = 0.9,
                 dtype: str = "bfloat16"):
        try:
            from vllm import LLM
        except ImportError:
            raise RuntimeError("the vllm backend needs vLLM: install the gpu extra (pip install -e '.[gpu]') "
                               "or use --backend hf") from None
        self.tokenizer = load_tokenizer(model_path)
        self.llm = LLM(model=model_path, tensor_parallel_size=tp, max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization, dtype=dtype, enable_prefix_caching=True)

    def generate(self, prompts, n, temperature, top_p, max_new_tokens, seed) -> Generations:
        from vllm import SamplingParams

        params = SamplingParams(n=n, temperature=temperature, top_p=top_p, top_k=-1, max_tokens=max_new_tokens,
                                seed=seed)
        start = time.perf_counter()
        outputs = self.llm.generate(list(prompts), params)
        texts = [[c.text for c in o.outputs] for o in outputs]
        tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
        return Generations(texts, tokens, time.perf_counter() - start)


def make_generator(backend: str, model_path: str, **kwargs) -> Generator:
    """``auto`` = vllm when torch sees a GPU and vLLM imports, else hf."""
    if backend == "auto":
        import importlib.util

        import torch

        backend = "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") else "hf"
    if backend == "hf":
        return HFGenerator(model_path, **{k: v for k, v in kwargs.items() if k in ("batch_size", "dtype", "device")})
    if backend == "vllm":
        return VLLMGenerator(model_path, **{k: v for k, v in kwargs.items()
                                            if k in ("tp", "max_model_len", "gpu_memory_utilization")})
    raise ValueError(f"unknown generation backend {backend!r}; use auto, hf or vllm")
