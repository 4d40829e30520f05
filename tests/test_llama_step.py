"""The lean Llama-family forward against transformers' own, and the codec's choice between them."""

from __future__ import annotations

import pytest

import llm_codecs
from llm_codecs import CodecError, CorruptDataError, ModelMismatchError
from llm_codecs.codecs.llm import LanguageModelCodec
from llm_codecs.frame import FrameReader

from .helpers import read_head

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llm_codecs.models.llama_step import LlamaStep, supports  # noqa: E402

from .tiny_models import random_llama_family  # noqa: E402


@pytest.mark.parametrize(("family", "kv_heads"), [("llama", 4), ("llama", 2), ("qwen2", 1)])
def test_lean_steps_compute_what_transformers_computes(family, kv_heads):
    model = random_llama_family(family, kv_heads)
    ids = torch.randint(0, 97, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(ids).logits
        step = LlamaStep(model, lanes=3, slots=40)
        got = torch.stack([step.step(ids[:, t], t) for t in range(40)], dim=1)
    assert float(expected.std()) > 1.0  # the comparison is not between near-constant logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_ring_cache_is_a_sliding_window_at_every_layer():
    # Each token attends, at every layer, to the latest `slots` tokens, whose keys were computed
    # under the same window: transformers' forward with a banded causal mask.
    model = random_llama_family("llama", 2)
    slots, length = 8, 30
    ids = torch.randint(0, 97, (2, length), generator=torch.Generator().manual_seed(2))
    i = torch.arange(length)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - slots)
    with torch.inference_mode():
        expected = model(ids, attention_mask=band[None, None].expand(2, 1, -1, -1)).logits
        step = LlamaStep(model, lanes=2, slots=slots, positions=length)
        got = torch.stack([step.step(ids[:, t], t, slot=t % slots, filled=min(t + 1, slots))
                           for t in range(length)], dim=1)
        full = model(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(got[:, slots:], full[:, slots:], atol=1e-2)  # the window matters


def test_only_models_it_computes_exactly_are_supported(tiny_models):
    loaded = {f: transformers.AutoModelForCausalLM.from_pretrained(d)
              for f, d in tiny_models.items()}
    assert supports(loaded["llama"]) and supports(loaded["qwen2"])
    assert not supports(loaded["gpt2"])
    scaled = random_llama_family("llama", 4)
    scaled.config.rope_parameters = {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}
    assert not supports(scaled)


def test_the_frame_records_which_forward_coded_it(tiny_models):
    data = read_head("canterbury/alice29.txt", 2000)
    llama = tiny_models["llama"]
    frames = {}
    for step in ("lean", "transformers"):
        frames[step] = llm_codecs.compress(data, "llm", model=llama, step=step, lanes=2,
                                           context=16, fallback=False, threads=1)
        assert llm_codecs.decompress(frames[step]) == data
        assert FrameReader(frames[step]).header.fingerprint["step"] == step
    # "auto" picks the lean forward for a Llama model and decodes its frames.
    auto = LanguageModelCodec(model=llama, threads=1, lanes=2, context=16)
    assert auto.resolved_step() == "lean"
    assert FrameReader(frames["lean"], codec=auto).read(100, 50) == data[100:150]
    with pytest.raises(ModelMismatchError, match="'lean' forward"):
        FrameReader(frames["lean"], codec=LanguageModelCodec(model=llama, step="transformers"))
    with pytest.raises(ModelMismatchError, match="'transformers' forward"):
        FrameReader(frames["transformers"], codec=auto)
    # Frames from before the choice existed cannot be replayed: a clear error, not garbage.
    old = dict(FrameReader(frames["transformers"]).header.fingerprint)
    del old["step"]
    with pytest.raises(CorruptDataError, match="earlier, incompatible"):
        LanguageModelCodec(model=llama, step="transformers", cache=False).check_fingerprint(old)
    # Nor can those with one rANS stream per lane (no "coder" in the fingerprint).
    old = dict(FrameReader(frames["transformers"]).header.fingerprint)
    del old["coder"]
    with pytest.raises(CorruptDataError, match="earlier, incompatible"):
        LanguageModelCodec(model=llama, step="transformers").check_fingerprint(old)


def test_lean_is_refused_for_other_architectures(tiny_models):
    codec = LanguageModelCodec(model=tiny_models["gpt2"], step="lean", threads=1)
    with pytest.raises(CodecError, match="Llama-family"):
        codec.encode_block(b"some text to code")
    with pytest.raises(CodecError, match="step must be one of"):
        LanguageModelCodec(step="fast")
