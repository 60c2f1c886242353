"""Model locations: HF hub ids, local HF directories, and GGUF files converted once to HF."""

from aspo.models.gguf import resolve_model_path

__all__ = ["resolve_model_path"]
