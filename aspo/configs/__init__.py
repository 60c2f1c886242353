"""Hydra configs of ``aspo-train`` (the repository's top-level ``configs/`` links here).

A package so Hydra finds them as ``pkg://aspo.configs`` from an installed, non-editable copy too.
"""

from __future__ import annotations

from typing import Any


def compose(config_name: str, *overrides: str, resolve: bool = False):
    """The config ``aspo-train --config-name <config_name> <overrides>`` starts from, composed
    in-process (before preflight and the run-directory set-up): for notebooks, scripts and tests.

    ``resolve=True`` also resolves interpolations (``${aspo_arith:...}`` makes its dataset then)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from aspo.train import register_resolvers

    register_resolvers()
    with initialize_config_module("aspo.configs", version_base=None):
        cfg = hydra_compose(config_name, overrides=list(overrides))
    if resolve:
        OmegaConf.resolve(cfg)
    return cfg


def flatten(cfg: Any) -> dict[str, Any]:
    """``{"a.b.c": leaf}`` of a config, interpolations left as written: for diffing two configs."""
    from omegaconf import OmegaConf

    out: dict[str, Any] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return out
