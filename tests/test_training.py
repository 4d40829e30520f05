"""The training script's banded forward is the codec's ring: what the model is trained on is what
it is asked at coding time."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "train_default_model.py"


@pytest.fixture(scope="module")
def training():
    spec = importlib.util.spec_from_file_location("train_default_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return transformers.LlamaForCausalLM(config).eval()


def test_at_full_width_it_is_the_model_s_own_forward(training, tiny_llama):
    ids = torch.randint(0, 97, (3, 40))
    with torch.no_grad():
        ours = training.window_logits(tiny_llama, ids, window=40)
        theirs = tiny_llama(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_a_band_equals_the_codec_s_ring(training, tiny_llama):
    from llm_codecs.models.llama_step import LlamaStep

    window, length = 8, 30
    ids = torch.randint(0, 97, (2, length))
    with torch.no_grad():
        banded = training.window_logits(tiny_llama, ids, window=window)
        full = training.window_logits(tiny_llama, ids, window=length)
        ring = LlamaStep(tiny_llama, lanes=2, slots=window, positions=length)
        for t in range(length):
            step = ring.step(ids[:, t], t, slot=t % window, filled=min(t + 1, window))
            assert torch.allclose(step, banded[:, t], atol=1e-4), t
    # The band matters once the sequence is longer than it (else this test could not fail).
    assert not torch.allclose(banded[:, window:], full[:, window:], atol=1e-3)
    assert torch.allclose(banded[:, :window], full[:, :window], atol=1e-5)
