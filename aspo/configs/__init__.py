"""Hydra configs of ``aspo-train`` (the repository's top-level ``configs/`` links here).

A package so Hydra finds them as ``pkg://aspo.configs`` from an installed, non-editable copy too.
"""
