"""The fuzz targets' committed corpus replays cleanly (tests/fuzz; the coverage-guided runs are
``python tests/fuzz/fuzz.py``, which CI runs for a bounded time)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import targets  # noqa: E402

CASES = sorted((t, p) for t in targets.TARGETS for p in (FUZZ / "corpus" / t).glob("*"))


def test_every_target_has_seeds():
    assert {t for t, _ in CASES} == set(targets.TARGETS)


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}-{p.name}" for t, p in CASES])
def test_corpus_input_is_handled(target, path):
    targets.TARGETS[target](path.read_bytes())


def test_targets_let_only_codec_errors_through(monkeypatch):
    # A decoder that crashed with anything but CodecError must fail the target (and the fuzzer).
    from llm_codecs import frame

    def broken(*args, **kwargs):
        raise IndexError("a decoder bug")

    monkeypatch.setattr(frame.FrameHeader, "parse", broken)
    with pytest.raises(IndexError):
        targets.header(b"LLMZ\x01\x00" + b"\x00" * 40)
