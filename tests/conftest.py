"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Directories of tiny random GPT-2, Llama and Qwen2 models saved with ``save_pretrained``."""
    pytest.importorskip("transformers")
    from .tiny_models import build_model

    root = tmp_path_factory.mktemp("models")
    return {family: str(build_model(root / family, family))
            for family in ("gpt2", "llama", "qwen2")}
