"""String arrays reach the model: text views of chunks (llm_codecs.strings), frames of strings."""

from __future__ import annotations

import struct

import numcodecs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CodecError, CorruptDataError
from llm_codecs.codecs.lz77 import LZ77Codec
from llm_codecs.frame import (
    FORMAT_VERSION,
    FORMAT_VERSION_COMPACT,
    FORMAT_VERSION_STRINGS,
    FrameReader,
)
from llm_codecs.strings import StringLayout, strings_hint, text_view

from .helpers import read_head, rewrite_header

zarr = pytest.importorskip("zarr")
pytestmark = pytest.mark.filterwarnings(
    "ignore::zarr.core.dtype.common.UnstableSpecificationWarning"
)


class TextLZ77(LZ77Codec):
    """LZ77 that takes text views like the llm codec: frames of strings in milliseconds."""

    models_text = True


def _lines(n: int = 60) -> list[str]:
    text = read_head("canterbury/alice29.txt", 64 << 10).decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()][:n]


def _vlen(items: list[bytes]) -> bytes:
    return struct.pack("<I", len(items)) + b"".join(struct.pack("<I", len(i)) + i for i in items)


# -- text views ----------------------------------------------------------------------------


def test_fixed_bytes_view_is_the_lines():
    chunk = np.array([b"first line", b"", b"a\x00b", b"last"], dtype="S12")
    layout, text = text_view(chunk.tobytes(), strings_hint("auto", chunk))
    assert layout == StringLayout("fixed-bytes", 12, 0x0A)
    assert text == b"first line\n\na\x00b\nlast\n"
    assert layout.restore(text, chunk.nbytes) == chunk.tobytes()


def test_separator_avoids_bytes_the_items_hold():
    chunk = np.array(["two\nlines", "x"], dtype="<U9")
    layout, text = text_view(chunk.tobytes(), strings_hint(chunk.dtype))
    assert layout.kind == "fixed-utf32le" and layout.separator == 0x1E
    assert text == b"two\nlines\x1ex\x1e"


def test_utf32_byte_order_follows_the_data_not_the_hint():
    # zarr 3's bytes codec writes UTF-32 little-endian whatever the array's byte order.
    chunk = np.array(["é€", "ok"], dtype=">U3")
    layout, text = text_view(chunk.tobytes(), strings_hint("<U3"))
    assert layout.kind == "fixed-utf32be" and text == "é€\nok\n".encode()


def test_vlen_encoding_is_recognised_without_a_hint():
    encoded = numcodecs.VLenUTF8().encode(np.array(["\u00e9", "", "\u6587\u5b57"], dtype=object))
    layout, text = text_view(encoded, strings_hint("auto", encoded))
    assert layout.kind == "vlen" and text == "\u00e9\n\n\u6587\u5b57\n".encode()


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"", "auto"),
        (b"plain text, no length prefix", "auto"),
        (_vlen([b"ab", b"c"]) + b"!", "auto"),  # one byte too many for the encoding
        (b"12345", "S2"),  # not a whole number of items
        (np.array([0x110000, 65], dtype="<u4").tobytes(), "<U1"),  # beyond Unicode both ways
        (bytes(range(256)) * 2, "S256"),  # no byte is free for a separator
        (b"text", None),
        (np.arange(4, dtype="<i4").tobytes(), "<i4"),
    ],
    ids=["empty", "text", "vlen-plus-one", "ragged", "not-utf32", "every-byte", "off", "ints"],
)
def test_no_view_where_there_is_none(data, hint):
    assert text_view(data, strings_hint(hint)) is None


def test_bad_strings_argument_is_a_codec_error():
    with pytest.raises(CodecError, match="strings must be"):
        llm_codecs.compress(b"abc", "lz77", strings="utf8-please")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=20), st.integers(0, 4))
def test_fixed_bytes_views_restore_exactly(items, extra):
    width = max([len(i) for i in items] + [1]) + extra
    chunk = np.array(items, dtype=f"S{width}").tobytes()
    view = text_view(chunk, strings_hint(f"S{width}"))
    if view is not None:
        layout, text = view
        assert layout.restore(text, len(chunk)) == chunk
    else:
        assert not chunk or len(set(chunk)) == 256 or all(b == 0 for b in chunk)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.integers(0, 0x10FFFF) | st.integers(0xD800, 0xDFFF), max_size=6),
                max_size=12), st.booleans())
def test_utf32_views_restore_exactly_even_with_lone_surrogates(items, big_endian):
    # (Surrogates drawn on purpose: 2,048 of 1.1 million code points, often none in a run.)
    width = max([len(i) for i in items] + [1])
    units = np.zeros((len(items), width), dtype=">u4" if big_endian else "<u4")
    for row, item in zip(units, items, strict=True):
        row[: len(item)] = item
    chunk = units.tobytes()
    view = text_view(chunk, strings_hint(f"<U{width}"))
    if chunk and any(any(i) for i in items):
        assert view is not None  # always a view: a separator is always free in so few items
        layout, text = view
        assert layout.restore(text, len(chunk)) == chunk


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=20))
def test_vlen_views_restore_exactly(items):
    chunk = _vlen(items)
    layout, text = text_view(chunk, strings_hint("auto"))
    assert layout.kind == "vlen" and layout.restore(text, len(chunk)) == chunk


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["auto", "vlen", "S3", "<U2", ">U1", None]))
def test_any_bytes_with_any_hint_round_trip_through_a_frame(data, hint):
    frame = llm_codecs.compress(data, TextLZ77(), strings=hint)
    assert llm_codecs.decompress(frame) == data


# -- frames of strings ---------------------------------------------------------------------


def test_frame_of_strings_is_version_2_and_reads_back_in_ranges():
    chunk = np.array([line.encode() for line in _lines()], dtype="S80")
    frame = llm_codecs.compress(chunk, TextLZ77(), block_size=512)
    reader = FrameReader(frame)
    assert frame[4] == FORMAT_VERSION_STRINGS and reader.layout.kind == "fixed-bytes"
    assert reader.size == chunk.nbytes and reader.stored_size < chunk.nbytes
    assert len(reader.blocks) > 1
    data = chunk.tobytes()
    assert llm_codecs.decompress(frame) == data
    assert llm_codecs.decompress(frame, offset=1000, size=333) == data[1000:1333]
    # A chunk that is not strings stays a version 1 frame, byte for byte what it was.
    plain = llm_codecs.compress(b"no strings here. " * 100, TextLZ77(), block_size=512)
    assert plain[4] == FORMAT_VERSION
    assert plain == llm_codecs.compress(b"no strings here. " * 100, "lz77", block_size=512)
    # One block of strings is a compact frame (version 3) with the layout, and restores exactly.
    small = chunk[:4]
    compact = llm_codecs.compress(small, TextLZ77(), block_size=512)
    assert compact[4] == FORMAT_VERSION_COMPACT and FrameReader(compact).layout is not None
    assert FrameReader(compact).size == small.nbytes
    assert llm_codecs.decompress(compact) == small.tobytes()
    assert FrameReader(llm_codecs.compress(b"no strings", TextLZ77())).layout is None


@pytest.fixture(scope="module")
def strings_frame():
    chunk = np.array([line.encode() for line in _lines(20)], dtype="S80")
    frame = llm_codecs.compress(chunk, TextLZ77())
    # The forger is faithful: unedited, its frame (plain JSON header) decodes.
    assert llm_codecs.decompress(rewrite_header(frame, 2, lambda f: None)) == chunk.tobytes()
    return frame


@pytest.mark.parametrize(
    ("version", "edit"),
    [
        (1, lambda f: None),  # a layout in a version 1 header
        (2, lambda f: f.pop("layout")),  # version 2 without one
        (2, lambda f: f["layout"].update(kind="fixed-utf16")),
        (2, lambda f: f["layout"].update(separator=256)),
        (2, lambda f: f["layout"].update(separator=True)),
        (2, lambda f: f["layout"].update(itemsize=0)),
        (2, lambda f: f["layout"].update(itemsize=1 << 40)),
        (2, lambda f: f["layout"].update(extra=1)),
        (2, lambda f: f.update(layout=[1, 2])),
        (4, lambda f: None),  # a version no reader knows (3 is the compact frame)
    ],
    ids=["v1-with-layout", "v2-without", "kind", "separator", "bool-separator", "itemsize-0",
         "itemsize-huge", "extra-key", "not-an-object", "version-4"],
)
def test_forged_layouts_are_refused_when_the_frame_opens(strings_frame, version, edit):
    forged = rewrite_header(strings_frame, version, edit)
    with pytest.raises(CorruptDataError, match=r"string layout|format version 4"):
        FrameReader(forged)


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f["layout"].update(itemsize=40),  # items longer than the width
        lambda f: f["layout"].update(itemsize=1 << 30),  # 20 items of 1 GiB: refused unbuilt
        lambda f: f["layout"].update(separator=ord("e")),  # wrong item count for the size
        lambda f: f["layout"].update(kind="vlen", itemsize=0) or f["layout"].pop("itemsize"),
        lambda f: f["layout"].update(kind="fixed-utf32le"),
    ],
    ids=["too-narrow", "huge-width", "wrong-separator", "vlen", "utf32"],
)
def test_layouts_that_do_not_fit_the_text_are_corrupt_data(strings_frame, edit):
    forged = rewrite_header(strings_frame, 2, edit)
    with pytest.raises(CorruptDataError, match="string layout"):
        llm_codecs.decompress(forged)


def test_restore_checks_the_declared_size_before_allocating():
    layout = StringLayout("fixed-bytes", 1 << 30, 10)
    with pytest.raises(CorruptDataError, match="declared size"):
        layout.restore(b"a\n" * 1000, 1 << 30)  # 1000 items cannot make 1 GiB of width 1 GiB
    with pytest.raises(CorruptDataError, match="separator"):
        StringLayout("vlen", 0, 10).restore(b"no final separator", 30)


# -- the model sees the text -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lines():
    return _lines(60)


def _model_blocks(frame: bytes) -> int:
    return sum(e.method == 3 for e in FrameReader(frame).blocks)


def test_llm_codes_a_fixed_width_array_like_its_joined_text(lines):
    chunk = np.array([line.encode() for line in lines], dtype="S100")
    frame = llm_codecs.compress(chunk)
    joined = llm_codecs.compress("\n".join(lines).encode() + b"\n")
    assert _model_blocks(frame) == 1
    assert len(frame) <= 1.05 * len(joined)
    assert llm_codecs.decompress(frame) == chunk.tobytes()


@pytest.mark.parametrize("kind", ["S", "U", "str"])
def test_zarr3_string_arrays_reach_the_model(lines, kind):
    from llm_codecs.integrations.zarr3 import LLM

    values = {
        "S": np.array([line.encode() for line in lines], dtype="S100"),
        "U": np.array(lines, dtype="<U100"),
        "str": np.array(lines, dtype=object),
    }[kind]
    store = zarr.storage.MemoryStore()
    z = zarr.create_array(store, shape=values.shape, chunks=(40,), dtype=values.dtype
                          if kind != "str" else str, compressors=[LLM()])
    z[:] = values
    back = zarr.open_array(store, mode="r")[:]
    assert list(back) == list(values)
    chunks = [v.to_bytes() for k, v in store._store_dict.items() if k.startswith("c/")]
    assert len(chunks) == 2
    for chunk in chunks:
        reader = FrameReader(chunk)
        assert reader.layout is not None and _model_blocks(chunk) == 1


@pytest.mark.parametrize("kind", ["S", "U", "vlen-utf8", "vlen-bytes"])
def test_zarr2_string_arrays_reach_the_model(lines, kind, tmp_path):
    kwargs: dict = {}
    if kind == "S":
        values, dtype = np.array([line.encode() for line in lines], dtype="S100"), "S100"
    elif kind == "U":
        values, dtype = np.array(lines, dtype="<U100"), "<U100"
    elif kind == "vlen-utf8":
        values, dtype = np.array(lines, dtype=object), str
        kwargs["filters"] = [numcodecs.VLenUTF8()]
    else:
        from zarr.core.dtype import VariableLengthBytes

        values = np.array([line.encode() for line in lines], dtype=object)
        dtype = VariableLengthBytes()
        kwargs["filters"] = [numcodecs.VLenBytes()]
    path = tmp_path / "a.zarr"
    z = zarr.create_array(str(path), shape=values.shape, chunks=(60,), dtype=dtype,
                          zarr_format=2, compressors=llm_codecs.LLMCodec(), **kwargs)
    z[:] = values
    assert list(zarr.open_array(str(path), mode="r")[:]) == list(values)
    frame = (path / "0").read_bytes()
    assert FrameReader(frame).layout is not None and _model_blocks(frame) == 1


def test_xarray_string_variable_reaches_the_model(lines, tmp_path):
    xr = pytest.importorskip("xarray")
    from llm_codecs.integrations.zarr3 import LLM

    ds = xr.Dataset({"line": ("n", np.array(lines, dtype=object))})
    path = tmp_path / "ds.zarr"
    ds.to_zarr(str(path), encoding={"line": {"compressors": [LLM()]}}, zarr_format=3,
               consolidated=False)
    assert list(xr.open_zarr(str(path), consolidated=False)["line"].values) == lines
    frame = (path / "line" / "c" / "0").read_bytes()
    assert FrameReader(frame).layout.kind == "vlen" and _model_blocks(frame) == 1


def test_misspelt_parameter_fails_when_the_array_is_created():
    with pytest.raises(CodecError, match="modle"):
        zarr.create_array(zarr.storage.MemoryStore(), shape=(3,), dtype="S3", compressors=[
            {"name": "llm_codecs.llm", "configuration": {"modle": "default"}}])
    with pytest.raises(CodecError, match="modle"):
        numcodecs.get_codec({"id": "llm_codecs.llm", "modle": "default"})


def test_numcodecs_decode_checks_out_before_decoding():
    codec = llm_codecs.LLMCodec()
    frame = llm_codecs.compress(b"x" * 100, "lz77")
    with pytest.raises(CorruptDataError, match="100 bytes but the output buffer has 99"):
        codec.decode(frame, out=np.empty(99, dtype=np.uint8))
    out = np.empty(100, dtype=np.uint8)
    codec.decode(frame, out=out)
    assert out.tobytes() == b"x" * 100
