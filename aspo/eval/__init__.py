"""Evaluation: k samples per problem, scored by our verifiers, reported as avg@k and unbiased pass@k.

- ``metrics``: the estimators (pure functions).
- ``benchmarks``: per-benchmark sampling defaults (the official Archer2.0 eval) and the paper's numbers.
- ``generate``: the generation backends, ``hf`` (transformers, CPU) and ``vllm`` (GPU, imported lazily).
- ``runner``: load parquet -> generate -> score -> aggregate -> write samples, JSON and Markdown.
- ``report``: the JSON and Markdown reports beside the paper's numbers.

``scripts/eval.py`` is the command line.
"""
