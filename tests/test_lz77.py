"""LZ77-specific checks: parameters, long and far matches, window edges, and a decoder that
refuses hand-forged token streams."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CodecError, CorruptDataError
from llm_codecs.codecs import make_codec
from llm_codecs.codecs.lz77 import LZ77Codec
from llm_codecs.coding import lz77 as lz
from llm_codecs.coding.huffman import encode_symbols

from .helpers import assert_roundtrip, read_head, varint

LEVELS = range(1, 10)


def payload(litlen, dist, extra=b"", nsym=None) -> bytes:
    """A payload built by hand from token lists, bypassing the parser."""
    ll = encode_symbols(np.array(litlen, dtype=np.uint16), lz.LITLEN_ALPHABET)
    ds = encode_symbols(np.array(dist, dtype=np.uint8), lz.DIST_ALPHABET)
    n = len(litlen) if nsym is None else nsym
    return varint(n) + varint(len(ll)) + varint(len(ds)) + ll + ds + extra


def roundtrip_block(codec: LZ77Codec, data: bytes) -> bytes:
    coded = codec.encode_block(data)
    assert codec.decode_block(coded, len(data)) == data
    return coded


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 10, -1, "5", 5.0, True, None])
def test_bad_levels_are_refused(level):
    with pytest.raises(CodecError):
        make_codec("lz77", level=level)


def test_unknown_parameter_is_refused():
    with pytest.raises(CodecError):
        make_codec("lz77", window=5)


@pytest.mark.parametrize("level", LEVELS)
def test_params_rebuild_the_codec(level):
    codec = make_codec("lz77", level=level)
    assert codec.params() == {"level": level}
    assert make_codec("lz77", **codec.params()).params() == {"level": level}
    assert codec.method_id == 2 and codec.name == "lz77"


def test_default_level_and_block_size():
    codec = LZ77Codec()
    assert codec.level == 5  # docs/benchmarks.md measures level 5 as the default
    assert codec.default_block_size == 1 << 20


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_round_trips_text(level):
    data = read_head("canterbury/alice29.txt", 60_000)
    codec = make_codec("lz77", level=level)
    coded = roundtrip_block(codec, data)
    assert len(coded) < len(data) * 0.5


def test_higher_levels_compress_better():
    data = read_head("canterbury/lcet10.txt", 200_000)
    sizes = [len(make_codec("lz77", level=lv).encode_block(data)) for lv in (1, 5, 9)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_output_is_a_pure_function_of_block_and_level():
    data = read_head("canterbury/alice29.txt", 50_000)
    for level in (1, 5, 9):
        a = make_codec("lz77", level=level).encode_block(data)
        b = make_codec("lz77", level=level).encode_block(bytes(bytearray(data)))
        assert a == b


@pytest.mark.parametrize("level", [1, 5, 9])
def test_matches_longer_than_the_longest_code(level):
    codec = make_codec("lz77", level=level)
    for data in (b"a" * (3 * lz.MAX_MATCH + 17), b"abc" * 100_000,
                 random.Random(1).randbytes(1000) * 300):
        coded = roundtrip_block(codec, data)
        assert len(coded) < len(data) // 100


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("size", [*range(12), 255, 256, 257, 4096])
def test_tiny_and_boundary_blocks(level, size):
    rng = random.Random(size)
    codec = make_codec("lz77", level=level)
    for data in (rng.randbytes(size), b"x" * size, bytes(range(256))[:size]):
        roundtrip_block(codec, data)


@pytest.mark.parametrize("level", LEVELS)
def test_repeat_at_the_edge_of_the_window(level):
    # A 4 KiB chunk repeated at distances just inside and just outside 64 KiB, 256 KiB, 1 MiB.
    rng = random.Random(7)
    chunk = rng.randbytes(4096)
    for gap in (65536 - 4096, 65536 - 4095, 262144 - 4096, 262144 - 4095):
        data = chunk + rng.randbytes(gap) + chunk
        roundtrip_block(make_codec("lz77", level=level), data)


def test_top_level_reaches_across_the_whole_block():
    rng = random.Random(8)
    chunk = rng.randbytes(20_000)
    data = chunk + rng.randbytes((1 << 20) - 40_000) + chunk
    assert len(data) == 1 << 20
    top = roundtrip_block(make_codec("lz77", level=9), data)
    fast = roundtrip_block(make_codec("lz77", level=1), data)
    # Level 9 finds the copy ~1 MiB back; level 1 (64 KiB window) cannot.
    assert len(top) < len(fast) - 15_000


def test_repeat_distances_pay_on_columns():
    rng = random.Random(9)
    rows = b"".join(b"%08d,%s,ok\n" % (i, rng.choice([b"alpha", b"beta", b"gamma"]))
                    for i in range(20_000))
    coded = roundtrip_block(make_codec("lz77", level=9), rows)
    assert len(coded) < len(rows) // 4


@pytest.mark.parametrize("level", [1, 9])
@given(data=st.binary(max_size=3000))
@settings(max_examples=100, deadline=None)
def test_hypothesis_blocks(level, data):
    roundtrip_block(make_codec("lz77", level=level), data * 3)


def test_through_the_frame_with_many_blocks():
    data = read_head("loghub/Apache_2k.log", 100_000)
    assert_roundtrip(data, "lz77", level=9, block_size=7000)


# --- the decoder refuses forged payloads ---------------------------------------------------------


def decode(p: bytes, size: int) -> bytes:
    return LZ77Codec().decode_block(p, size)


def test_hand_made_payload_decodes():
    # "ab" then a match of length 4 at distance 2 -> "ababab"
    assert decode(payload([97, 98, 256 + 1], [2 + 1]), 6) == b"ababab"
    # rep0 is 1 at the start of a block: "a" then a 5-byte run of it.
    assert decode(payload([97, 256 + 2], [0]), 6) == b"a" * 6
    # rep1 is 1 too.
    assert decode(payload([97, 256 + 0], [1]), 4) == b"aaaa"


@pytest.mark.parametrize(
    ("litlen", "dist", "size", "why"),
    [
        ([97, 256 + 0], [2 + 1], 4, "before the start"),  # distance 2, 1 byte produced
        ([256 + 0, 97], [0], 4, "before the start"),  # a repeat distance before any byte
        ([97, 256 + 0], [1], 5, "ends before its size"),  # "aaaa" is 4 bytes, not 5
        ([97, 256 + 5], [0], 4, "runs past the end"),  # length 8 past the end of 4 bytes
        ([97, 98], [], 3, "ends before its size"),  # block ends early
        ([97, 256 + 0, 98], [0], 4, "runs past the end"),  # literal past the end
        ([97, 98, 99, 100], [], 3, "token count 4 is impossible"),  # more tokens than bytes
    ],
)
def test_forged_tokens_are_refused(litlen, dist, size, why):
    # Each by its own check: several forgeries fail some check or other.
    with pytest.raises(CorruptDataError, match=why):
        decode(payload(litlen, dist), size)


def test_far_explicit_distance_is_refused():
    # Distance code 2 + 2*20 (u = 2**20 .. 2**20 + 2**19 - 1), 19 extra bits of zeros.
    c = 2 * 20
    extra = bytes(3)  # 19 bits + 5 padding bits
    p = payload([97] * 10 + [256 + 0], [2 + c], extra)
    with pytest.raises(CorruptDataError, match="before the start"):
        decode(p, 13)


def test_extra_bits_must_end_exactly():
    good = payload([97, 98, 256 + 1], [2 + 1])
    assert decode(good, 6) == b"ababab"
    with pytest.raises(CorruptDataError):
        decode(good + b"\x00", 6)  # a stray extra byte
    # A length with extra bits but no extra stream.
    with pytest.raises(CorruptDataError, match="ends early"):
        decode(payload([97, 256 + 20], [0]), 40)
    # Non-zero padding after the last extra bit: length code 16 has 2 extra bits.
    assert decode(payload([97, 256 + 16], [0], b"\x00"), 20) == b"a" * 20
    with pytest.raises(CorruptDataError, match="padding"):
        decode(payload([97, 256 + 16], [0], b"\x80"), 20)


def test_counts_and_lengths_are_checked():
    good = payload([97, 98, 256 + 1], [2 + 1])
    with pytest.raises(CorruptDataError, match="truncated"):
        decode(b"", 6)  # empty payload for a non-empty block
    with pytest.raises(CorruptDataError, match="must be empty"):
        decode(b"\x00", 0)  # non-empty payload for an empty block
    assert decode(b"", 0) == b""
    with pytest.raises(CorruptDataError, match="truncated"):
        decode(good[:2], 6)  # truncated header
    with pytest.raises(CorruptDataError, match="token count 7 is impossible"):
        decode(payload([97, 98, 256 + 1], [2 + 1], nsym=7), 6)  # more tokens than bytes
    with pytest.raises(CorruptDataError, match="token count 0 is impossible"):
        decode(payload([97, 98, 256 + 1], [2 + 1], nsym=0), 6)
    with pytest.raises(CorruptDataError, match="longer than 5 bytes"):
        decode(b"\xff\xff\xff\xff\xff\x01" + good[1:], 6)  # over-long integer
    with pytest.raises(CorruptDataError, match="non-canonical"):
        decode(b"\x83\x00" + good[1:], 6)  # non-canonical integer
    with pytest.raises(CorruptDataError, match="exceed the payload"):
        decode(good[:1] + b"\xff\x7f" + good[2:], 6)  # stream longer than the payload
    with pytest.raises(CorruptDataError, match="exceed the payload"):
        decode(good[:-1], 6)


@given(junk=st.binary(max_size=200), size=st.integers(0, 5000))
@settings(max_examples=300, deadline=None)
def test_random_payloads_never_crash(junk, size):
    # Any other exception fails the test. (decode_block returns exactly `size` bytes whatever
    # the payload, so there is nothing to assert on what it returns.)
    with contextlib.suppress(CorruptDataError):
        decode(junk, size)


def test_damaged_real_payloads_are_mostly_refused_and_never_crash():
    data = read_head("canterbury/alice29.txt", 30_000)
    codec = make_codec("lz77", level=9)
    coded = codec.encode_block(data)
    rng = random.Random(5)
    rejected = 0
    for _ in range(300):
        buf = bytearray(coded)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        try:
            codec.decode_block(bytes(buf), len(data))
        except CorruptDataError:
            rejected += 1
    # A payload has no checksum of its own: some damage decodes to wrong bytes of the right
    # length, which only the frame's data checksum catches (test_codecs' forged payloads). The
    # payload's own structure refuses about two thirds of it (197 of these 300).
    assert rejected >= 150, rejected


def test_public_api_round_trip_named_codec():
    data = read_head("canterbury/cp.html")
    frame = llm_codecs.compress(data, "lz77")
    assert llm_codecs.open_frame(frame).header.codec == "lz77"
    assert llm_codecs.decompress(frame) == data
