"""Frames committed once (tests/data/golden): every later version must decode them exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

import llm_codecs
from llm_codecs import NumericsMismatchError
from llm_codecs.frame import FrameReader

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
FRAMES = sorted(p.name for p in GOLDEN.glob("*.llmz"))


def _original(frame_name: str) -> bytes:
    stem = frame_name[: -len(".llmz")]
    return (GOLDEN / stem.rsplit(".", 1)[0]).read_bytes()


def test_every_kind_of_golden_frame_is_there():
    assert len(FRAMES) >= 17
    engines = {(FrameReader((GOLDEN / n).read_bytes()).header.fingerprint or {}).get("engine")
               for n in FRAMES}
    assert {"int8-v1", "int8-v2"} <= engines
    layouts = {FrameReader((GOLDEN / n).read_bytes()).layout.kind for n in FRAMES
               if n.startswith("strings-")}
    assert layouts == {"fixed-bytes", "fixed-utf32le", "vlen"}
    compact = [FrameReader((GOLDEN / n).read_bytes()) for n in FRAMES if "-compact" in n]
    assert {r.version for r in compact} == {3}
    assert {b.method for r in compact for b in r.blocks} == {0, 1, 2, 3}
    assert any(not r.blocks for r in compact) and any(r.layout for r in compact)
    methods = {(FrameReader((GOLDEN / n).read_bytes()).header.codec, b.method) for n in FRAMES
               for b in FrameReader((GOLDEN / n).read_bytes()).blocks}
    # Context mixing: versions 1 to 5 (methods 5 to 9) all decode.
    assert {("lzma", 4), ("llm", 3), ("llm", 4), ("cm", 5), ("llm", 5), ("cm", 6),
            ("llm", 6), ("cm", 7), ("llm", 7), ("cm", 8), ("llm", 8), ("cm", 9),
            ("llm", 9)} <= methods


@pytest.mark.parametrize("name", [n for n in FRAMES if not n.startswith("legacy-native")])
def test_golden_frame_decodes_exactly(name):
    frame = (GOLDEN / name).read_bytes()
    data = _original(name)
    assert llm_codecs.decompress(frame) == data
    if data:
        middle = len(data) // 2
        assert llm_codecs.decompress(frame, offset=middle, size=100) == data[middle:middle + 100]


@pytest.mark.parametrize("name", [n for n in FRAMES if n.startswith("legacy-native")])
def test_legacy_native_frame_decodes_where_it_did_or_says_why(name):
    frame = (GOLDEN / name).read_bytes()
    try:
        assert llm_codecs.decompress(frame) == _original(name)
    except NumericsMismatchError as exc:  # another CPU kind than the encoder's
        assert "numerics='portable'" in str(exc)
