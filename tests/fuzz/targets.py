"""Fuzz targets: every decoder of llm_codecs fed bytes from a stranger.

Each target takes arbitrary bytes and must either return or raise
:class:`~llm_codecs.CodecError` (a ``ValueError``): any other exception, a crash or a hang is a
defect. ``fuzz.py`` runs them under atheris (coverage-guided); ``tests/test_fuzz.py`` replays
the committed corpus in every test run.
"""

from __future__ import annotations

import contextlib
import struct

import llm_codecs
from llm_codecs import CodecError
from llm_codecs.codecs import make_codec
from llm_codecs.frame import FrameHeader, FrameReader
from llm_codecs.strings import KINDS, StringLayout

#: Largest output a block target asks a decoder for: big enough for every code path, small
#: enough that thousands of inputs a second stay cheap.
_MAX_BLOCK = 1 << 16


def frame(data: bytes) -> None:
    """A whole frame of a classic codec: open, read everything, read a range."""
    try:
        reader = FrameReader(data)
        if reader.header.codec == "llm":
            return  # the model decoder has its own (slow) tests; its payload is fuzzed below
        whole = reader.read()
        assert len(whole) == reader.size
        if reader.size:
            middle = reader.size // 2
            assert reader.read(middle, 7) == whole[middle : middle + 7]
    except CodecError:
        pass


def _block(name: str, data: bytes, **params) -> None:
    if len(data) < 2:
        return
    (size,) = struct.unpack_from("<H", data)
    try:
        out = make_codec(name, **params).decode_block(data[2:], 1 + size % _MAX_BLOCK)
        assert len(out) == 1 + size % _MAX_BLOCK
    except CodecError:
        pass


def huffman_block(data: bytes) -> None:
    """A Huffman payload (method 1), the first two bytes choosing the declared size."""
    _block("huffman", data)


def lz77_block(data: bytes) -> None:
    """An LZ77 payload (method 2), the first two bytes choosing the declared size."""
    _block("lz77", data)


def lzma_block(data: bytes) -> None:
    """An LZMA payload (method 4, raw LZMA2 through liblzma), the first two bytes choosing the
    declared size."""
    _block("lzma", data)


def cm_block(data: bytes) -> None:
    """A context-mixing payload of the current version (method 9), the first two bytes choosing
    the declared size."""
    _block("cm", data)


def header(data: bytes) -> None:
    """A frame header: preamble, JSON (maybe deflated with a dictionary), CRC."""
    with contextlib.suppress(CodecError):
        FrameHeader.parse(lambda offset, n: data[offset : offset + n], len(data) + 36)


def strings(data: bytes) -> None:
    """A string layout restoring a text view: kind, width, separator and size from the input."""
    if len(data) < 8:
        return
    kind = KINDS[data[0] % len(KINDS)]
    itemsize = 0 if kind == "vlen" else 4 * (1 + data[1] % 16)
    layout = StringLayout(kind, itemsize, data[2])
    (size,) = struct.unpack_from("<I", data, 3)
    try:
        out = layout.restore(data[7:], size % (1 << 20))
        assert len(out) == size % (1 << 20)
    except CodecError:
        pass


def roundtrip(data: bytes) -> None:
    """Any bytes round-trip through the classic codecs and the text views of strings."""
    codec = ("lz77", "huffman", "lzma", "cm")[len(data) % 4]
    frame_bytes = llm_codecs.compress(data, codec, block_size=512)
    assert llm_codecs.decompress(frame_bytes) == data
    from llm_codecs.strings import strings_hint, text_view

    for hint in ("auto", "S3", "<U1", ">U2"):
        view = text_view(data, strings_hint(hint))
        if view is not None:
            layout, text = view
            assert layout.restore(text, len(data)) == data


TARGETS = {f.__name__: f for f in (frame, huffman_block, lz77_block, lzma_block, cm_block, header,
                                    strings, roundtrip)}
