"""Context mixing, version by version: what each writes, that each still decodes, and that the
models of version 3 pay where they were built to (fixed records, fields of log lines).

The round trips, damaged payloads and hostile frames of every version-3 block are in
test_codecs.py (``cm`` is in its battery) and test_hostile.py; the golden frames of all three
versions in test_golden.py."""

from __future__ import annotations

import random
import struct

import pytest

import llm_codecs
from llm_codecs import CorruptDataError
from llm_codecs.codecs import make_codec


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


@pytest.mark.parametrize(("name", "method"), [("cm", 7), ("cm-v2", 6), ("cm-v1", 5)])
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
