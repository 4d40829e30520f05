"""Models read straight from their files (llm_codecs.models.direct_loading) against
transformers' loading of the same directory: same hash, same numbers, same frames."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap

import pytest

import llm_codecs
from llm_codecs import ModelMismatchError
from llm_codecs.models import direct_loading, loading
from llm_codecs.models.direct_loading import DirectCausalLM, direct_refusal
from llm_codecs.models.loading import DEFAULT_MODEL_DIR

from .helpers import read_head

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from .tiny_models import build_model  # noqa: E402

#: Configuration values the codec and its engines read.
_READ = ("model_type", "hidden_size", "intermediate_size", "num_attention_heads",
         "num_hidden_layers", "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps",
         "hidden_act", "tie_word_embeddings", "max_position_embeddings", "bos_token_id",
         "eos_token_id", "attention_bias", "mlp_bias", "pretraining_tp", "use_sliding_window",
         "sliding_window", "layer_types")


@pytest.fixture(scope="module")
def directories(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("direct")
    return {"default": str(DEFAULT_MODEL_DIR), "llama": tiny_models["llama"],
            "qwen3": str(build_model(root / "qwen3", "qwen3"))}


def _both(directory: str, dtype: str = "float32"):
    direct = loading._load(directory, None, "cpu", dtype, True, directory)
    full = loading._load_transformers(directory, None, "cpu", dtype, True, directory)
    return direct, full


@pytest.mark.parametrize("name", ["default", "llama", "qwen3"])
def test_direct_loading_reads_what_transformers_reads(directories, name):
    from llm_codecs.models.llama_step import _rope_theta
    from llm_codecs.portable import portable_support
    from llm_codecs.portable.weights import integer_model

    direct, full = _both(directories[name])
    assert isinstance(direct.model, DirectCausalLM)
    assert not isinstance(full.model, DirectCausalLM)
    assert direct.identity["sha256"] == full.identity["sha256"]
    for key in _READ:
        assert getattr(direct.model.config, key, None) == getattr(full.model.config, key, None), key
    assert _rope_theta(direct.model.config) == _rope_theta(full.model.config)
    assert (direct.vocab_size, direct.max_positions) == (full.vocab_size, full.max_positions)
    assert direct.tokenizer.vocab_size == full.tokenizer.vocab_size
    assert portable_support(direct.model) is None and portable_support(full.model) is None
    assert _same(integer_model(direct.model), integer_model(full.model))


def _same(a, b) -> bool:
    """Equal integers throughout two portable-engine weight sets."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(
            _same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def test_direct_loading_keeps_the_hash_in_bfloat16():
    direct, full = _both(str(DEFAULT_MODEL_DIR), "bfloat16")
    assert isinstance(direct.model, DirectCausalLM)
    assert direct.identity["sha256"] == full.identity["sha256"]
    assert direct.model.lm_head.weight is direct.model.model.embed_tokens.weight  # tied


@pytest.mark.parametrize("name", ["llama", "qwen3"])
def test_frames_are_the_same_bytes_whichever_loader_read_the_model(directories, name,
                                                                    monkeypatch):
    data = read_head("canterbury/alice29.txt", 3000)
    settings = dict(model=directories[name], lanes=3, context=32, fallback=False, threads=1)
    loading.clear_cache()
    direct = llm_codecs.compress(data, "llm", **settings)
    monkeypatch.setattr(direct_loading, "load_direct", lambda directory, dtype: None)
    loading.clear_cache()
    try:
        full = llm_codecs.compress(data, "llm", **settings)
        assert not isinstance(loading.load_model(directories[name]).model, DirectCausalLM)
    finally:
        monkeypatch.undo()
        loading.clear_cache()
    assert direct == full
    assert llm_codecs.decompress(full) == data


def test_the_float_forward_gets_transformers_module_on_demand(directories):
    loading.clear_cache()
    loaded = loading.load_model(directories["llama"])
    assert isinstance(loaded.model, DirectCausalLM)
    module = loaded.torch_model()
    assert isinstance(module, torch.nn.Module) and loaded.torch_model() is module
    data = read_head("canterbury/alice29.txt", 1500)
    frame = llm_codecs.compress(data, "llm", model=directories["llama"], step="transformers",
                                lanes=2, context=16, fallback=False, threads=1)
    assert llm_codecs.decompress(frame) == data


def test_a_model_whose_module_hashes_otherwise_is_refused(directories, monkeypatch):
    loading.clear_cache()
    loaded = loading.load_model(directories["llama"])
    forged = loading.LoadedModel(loaded.model, loaded.tokenizer,
                                 dict(loaded.identity, sha256="0" * 64), "cpu", "float32",
                                 loaded.source)
    loaded.model._torch_model = None
    with pytest.raises(ModelMismatchError, match="through transformers"):
        forged.torch_model()
    loading.clear_cache()


def _copy(source: str, tmp_path, name: str):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def _edit(path, **changes):
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_what_transformers_would_fill_in_or_change_is_left_to_transformers(
        directories, tiny_models, tmp_path):
    assert direct_refusal(directories["default"]) is None
    assert direct_refusal(directories["qwen3"]) is None
    assert "model_type 'qwen2'" in direct_refusal(tiny_models["qwen2"])
    assert "model_type 'gpt2'" in direct_refusal(tiny_models["gpt2"])
    no_head_dim = _copy(directories["llama"], tmp_path, "no_head_dim")
    _edit(no_head_dim / "config.json", head_dim=None)
    assert "head_dim" in direct_refusal(str(no_head_dim))
    bos = _copy(directories["llama"], tmp_path, "bos")
    _edit(bos / "tokenizer_config.json", add_bos_token=True)
    assert "add_bos_token" in direct_refusal(str(bos))
    other_special = _copy(directories["llama"], tmp_path, "special")
    _edit(other_special / "tokenizer_config.json", pad_token="<pad>")
    assert "pad_token" in direct_refusal(str(other_special))
    biased = _copy(directories["llama"], tmp_path, "biased")
    _edit(biased / "config.json", attention_bias=True)
    assert direct_refusal(str(biased)) == "biases"
    # Refused directories still load, through transformers.
    loaded = loading._load(str(no_head_dim), None, "cpu", "float32", True, "x")
    assert not isinstance(loaded.model, DirectCausalLM)


def test_a_checkpoint_missing_a_weight_is_refused_as_before(directories, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = _copy(directories["llama"], tmp_path, "broken")
    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(broken / "model.safetensors"), metadata={"format": "pt"})
    assert direct_loading.load_direct(str(broken), "float32") is None
    with pytest.raises(ModelMismatchError, match="not a complete causal language model"):
        loading._load(str(broken), None, "cpu", "float32", True, "broken")
    garbage = _copy(directories["llama"], tmp_path, "garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 100)
    assert direct_loading.load_direct(str(garbage), "float32") is None
    with pytest.raises(ModelMismatchError):
        loading._load(str(garbage), None, "cpu", "float32", True, "garbage")


def test_the_default_model_codes_without_importing_transformers_models():
    # What the direct loader is for: a process that codes with the embedded model never imports
    # transformers (about two seconds of every start).
    code = textwrap.dedent("""
        import sys
        import llm_codecs
        data = open(sys.argv[1], "rb").read()[:3000]
        frame = llm_codecs.compress(data)
        assert llm_codecs.decompress(frame) == data
        assert llm_codecs.decompress(frame, 1000, 500) == data[1000:1500]
        print(sorted(m for m in sys.modules if m.split(".")[0] == "transformers"))
    """)
    from .helpers import CORPUS

    out = subprocess.run([sys.executable, "-c", code,
                          str(CORPUS / "bench" / "canterbury" / "alice29.txt")],
                         capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.strip() == "[]"
