"""Context mixing, version by version: what each writes, that each still decodes, and that the
models of versions 3 and 4 pay where they were built to (fixed records, fields of log lines,
baseline JPEGs), and that the JPEG model survives any bytes.

The round trips, damaged payloads and hostile frames of every version-3 block are in
test_codecs.py (``cm`` is in its battery) and test_hostile.py; the golden frames of all three
versions in test_golden.py."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CorruptDataError
from llm_codecs.codecs import make_codec

from .jpeg_maker import encode, picture


def _records() -> bytes:
    """2,000 fixed-size binary records (28 bytes: an id, a code, a flag, a float, a name)."""
    rng = random.Random(3)
    return b"".join(
        struct.pack("<IHBxd12s", 1000 + i, rng.choice([7, 8, 9, 300]), rng.randrange(4),
                    rng.choice([0.5, 1.25, 2.0, 3.75]) * (i % 5),
                    rng.choice([b"alpha", b"beta", b"gamma"]).ljust(12, b"\0"))
        for i in range(2000))


def _access_log() -> bytes:
    """900 lines of an access log whose fields vary in width."""
    rng = random.Random(4)
    return "".join(
        f"10.0.{rng.randrange(256)}.{rng.randrange(256)} - - [{rng.randrange(10, 28)}/Nov/2026:"
        f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}] "
        f"\"{rng.choice(['GET', 'POST', 'PUT'])} "
        f"{rng.choice(['/', '/index.html', '/api/v1/users', '/static/app.js'])}\" "
        f"{rng.choice([200, 200, 304, 404])} {rng.randrange(99999)}\n"
        for _ in range(900)).encode()


@pytest.mark.parametrize(("name", "method"), [("cm", 8), ("cm-v3", 7), ("cm-v2", 6),
                                             ("cm-v1", 5)])
def test_each_version_writes_its_method_and_the_cm_reader_decodes_it(name, method):
    data = _access_log()[:20_000]
    frame = llm_codecs.compress(data, name, block_size=8192)
    assert {b.method for b in llm_codecs.open_frame(frame).blocks} == {method}
    assert llm_codecs.decompress(frame) == data
    # A block of any version decodes through the current codec (what a frame of "cm" made
    # by an older release needs).
    block = data[:8192]
    payload = make_codec(name).encode_block(block)
    assert make_codec("cm").decode_method(method, payload, len(block)) == block


@pytest.mark.parametrize(("data", "at_most"), [(_records(), 0.75), (_access_log(), 0.92)],
                         ids=["fixed records", "access log"])
def test_version_3_models_pay_on_records_and_fields(data, at_most):
    v2 = make_codec("cm-v2").encode_block(data)
    v3 = make_codec("cm").encode_block(data)
    assert make_codec("cm").decode_block(v3, len(data)) == data
    assert len(v3) <= at_most * len(v2), (len(v3), len(v2))


def test_a_version_2_payload_is_not_read_as_version_3():
    data = _access_log()[:8192]
    payload = make_codec("cm-v2").encode_block(data)
    try:
        decoded = make_codec("cm").decode_block(payload, len(data))
    except CorruptDataError:
        return
    assert decoded != data  # the frame's data CRC refuses it


def test_version_3_on_a_single_repeated_byte_and_on_tiny_blocks():
    codec = make_codec("cm")
    for data in (b"\x00" * 100_000, b"ab", b"\n" * 3, bytes(range(256)) * 3):
        payload = codec.encode_block(data)
        assert len(payload) <= len(data) + 1
        if len(payload) <= len(data):
            assert codec.decode_block(payload, len(data)) == data
    assert len(codec.encode_block(b"\x00" * 100_000)) < 100


@pytest.mark.parametrize("gray", [False, True], ids=["YCbCr 4:2:0", "grayscale"])
def test_version_4_models_baseline_jpegs(gray):
    data = encode(picture(384, 512, 2), gray=gray)
    v3 = make_codec("cm-v3").encode_block(data)
    v4 = make_codec("cm").encode_block(data)
    assert make_codec("cm").decode_block(v4, len(data)) == data
    # The JPEG model follows the scan's Huffman codes: about 10-13% smaller here.
    assert len(v4) <= 0.93 * len(v3), (len(v4), len(v3))


def test_version_4_is_version_3_where_there_is_no_jpeg():
    data = _access_log()[:30_000] + _records()[:20_000]
    assert make_codec("cm").encode_block(data) == make_codec("cm-v3").encode_block(data)


_JPEG = encode(picture(64, 96, 5))
_SCAN = _JPEG.index(b"\xff\xda")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(edits=st.lists(st.tuples(st.integers(0, len(_JPEG) - 1), st.integers(0, 255)),
                      min_size=1, max_size=8),
       in_headers=st.booleans(), cut=st.integers(0, 300))
def test_the_jpeg_model_survives_damaged_and_forged_jpegs(edits, in_headers, cut):
    # Headers (tables, frame, scan) and scan data edited at random, then cut short: the model
    # may get lost, but every block still round-trips exactly.
    data = bytearray(_JPEG[: len(_JPEG) - cut])
    for at, value in edits:
        at = at % (_SCAN + 20) if in_headers else at
        if at < len(data):
            data[at] = value
    data = bytes(data)
    codec = make_codec("cm")
    payload = codec.encode_block(data)
    if len(payload) <= len(data):
        assert codec.decode_block(payload, len(data)) == data


@pytest.mark.parametrize("forged", [
    b"\xff\xc4\x00\x13\x00" + b"\xff" * 16,             # table counts past 256 symbols
    b"\xff\xc4\x00\x14\x00" + bytes([2] * 16),           # more codes than lengths allow
    b"\xff\xc0\x00\x0b\x08\x00\x10\x00\x10\x09",    # nine components
    b"\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03" + bytes([1, 0x44, 0] * 3),  # 48 blocks
    b"\xff\xda\xff\xff" + bytes(300),                     # a scan segment of 65,533 bytes
])
def test_forged_jpeg_headers_only_switch_the_model_off(forged):
    data = b"\xff\xd8" + forged + _JPEG[_SCAN:] + bytes(range(256)) * 8
    codec = make_codec("cm")
    payload = codec.encode_block(data)
    assert codec.decode_block(payload, len(data)) == data
