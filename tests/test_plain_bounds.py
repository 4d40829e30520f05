"""compress() makes a fallback's plain frame only when it may be smaller than the model's frame
(:mod:`llm_codecs.codecs.plain_bounds`), and returns what it returned when it made them all."""

from __future__ import annotations

import base64
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import llm_codecs
from llm_codecs.codecs import make_codec, plain_bounds
from llm_codecs.codecs.cm import ContextMixingCodec
from llm_codecs.codecs.lz77 import LZ77Codec
from llm_codecs.codecs.lzma import LZMACodec
from llm_codecs.frame import FrameReader

from .helpers import read_head


@pytest.fixture
def fallback_calls(monkeypatch):
    """Blocks coded by each classic codec: ``Counter`` of codec names."""
    calls = Counter()
    for cls in (LZ77Codec, LZMACodec, ContextMixingCodec):
        def counted(self, block, _original=cls.encode_block):
            calls[self.name] += 1
            return _original(self, block)

        monkeypatch.setattr(cls, "encode_block", counted)
    return calls


def _every_plain_frame(monkeypatch):
    """Make compress() code every plain frame again, as before the bounds."""
    monkeypatch.setattr(plain_bounds.PlainFrameBounds, "rules_out", lambda *args: False)


def test_plain_frames_that_cannot_win_are_not_made(fallback_calls, monkeypatch):
    prose = read_head("canterbury/alice29.txt", 12000)  # three 4 KiB blocks
    frame = llm_codecs.compress(prose, block_size=4096)
    assert FrameReader(frame).header.codec == "llm"
    # Each block coded once by each fallback (LZ77 at two levels), to choose per block; no
    # plain frame coded it again.
    assert fallback_calls == {"lz77": 6, "lzma": 3, "cm": 3}
    fallback_calls.clear()
    _every_plain_frame(monkeypatch)
    assert llm_codecs.compress(prose, block_size=4096) == frame
    assert fallback_calls == {"lz77": 12, "lzma": 6, "cm": 6}


@pytest.mark.parametrize(("rel", "size"), [("silesia/xml", 1500), ("loghub/Apache_2k.log", 3000),
                                           ("canterbury/alice29.txt", 300),
                                           ("canterbury/fields.c", 2500)])
def test_the_answer_is_the_one_every_plain_frame_gives(rel, size, monkeypatch):
    data = read_head(rel, size)
    frame = llm_codecs.compress(data)
    _every_plain_frame(monkeypatch)
    assert llm_codecs.compress(data) == frame
    assert llm_codecs.decompress(frame) == data


def test_a_plain_frame_smaller_than_the_model_frame_is_still_returned(fallback_calls):
    # Text (the model runs) that no model predicts: the block is coded by LZ77 either way, and
    # the model frame's header makes it the larger frame.
    data = base64.b64encode(random.Random(1).randbytes(1500))
    frame = llm_codecs.compress(data)
    assert FrameReader(frame).header.codec == "lz77"
    assert fallback_calls["lz77"] == 4  # the block at both levels, then both plain frames
    assert llm_codecs.decompress(frame) == data


def test_a_chunk_of_strings_makes_every_plain_frame(fallback_calls):
    # The model codes the strings' text view, the plain frames the chunk's bytes: other blocks,
    # so the bounds say nothing about them.
    strings = np.array([f"line {i}: user=alice action=login" for i in range(300)])
    frame = llm_codecs.compress(strings)
    assert FrameReader(frame).header.codec == "llm"
    assert fallback_calls["lzma"] == 2
    assert llm_codecs.decompress(frame) == strings.tobytes()


def test_calls_sharing_a_codec_keep_their_own_bounds():
    codec = make_codec("llm")
    inputs = [read_head("canterbury/alice29.txt", 6000), read_head("silesia/xml", 1500),
              read_head("canterbury/fields.c", 4000), read_head("silesia/xml", 1200)]
    alone = [llm_codecs.compress(data, codec, block_size=2048) for data in inputs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda d: llm_codecs.compress(d, codec, block_size=2048),
                                 inputs * 2))
    assert together == alone * 2


def test_bounds_count_stored_blocks_at_their_size_and_need_every_block():
    bounds = plain_bounds.PlainFrameBounds(2)
    bounds.add(100, [40, 130])  # the second codec's payload would be stored: 100 bytes
    bounds.add(50, [50, 10])
    assert bounds.sums == [90, 110] and bounds.blocks == 2
    assert bounds.rules_out(0, 90, 2) and not bounds.rules_out(0, 91, 2)
    assert bounds.rules_out(1, 110, 2)
    assert not bounds.rules_out(0, 10, 3)  # a block was coded without its fallbacks
    with pytest.raises(ValueError, match="2 payload sizes"):
        bounds.add(10, [1])
    assert plain_bounds.current() is None
    with plain_bounds.gathering(3) as gathered:
        assert plain_bounds.current() is gathered and gathered.sums == [0, 0, 0]
    assert plain_bounds.current() is None
