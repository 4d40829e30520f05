"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def model_hash_memo(tmp_path_factory):
    """The session's own memo of model hashes (and no model search path), so that tests
    neither read nor fill the user's (``llm_codecs.models.hashes``); subprocesses inherit it."""
    saved = {k: os.environ.get(k) for k in ("LLM_CODECS_CACHE_DIR", "LLM_CODECS_MODEL_PATH")}
    os.environ["LLM_CODECS_CACHE_DIR"] = str(tmp_path_factory.mktemp("llm_codecs_cache"))
    os.environ.pop("LLM_CODECS_MODEL_PATH", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Directories of tiny random GPT-2, Llama and Qwen2 models saved with ``save_pretrained``."""
    pytest.importorskip("transformers")
    from .tiny_models import build_model

    root = tmp_path_factory.mktemp("models")
    return {family: str(build_model(root / family, family))
            for family in ("gpt2", "llama", "qwen2")}
