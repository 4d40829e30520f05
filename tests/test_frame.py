"""The LLMZ container on its own, driven by a stand-in codec (zlib) so it is tested apart from
the real codecs: layout, stored fallback, range reads, streaming, limits, corruption."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CodecError, CorruptDataError
from llm_codecs import codecs as registry
from llm_codecs.codecs.base import BlockCodec
from llm_codecs.frame import FOOTER_SIZE, INDEX_ENTRY_SIZE, FrameReader, FrameWriter

from .helpers import assert_rejects_or_exact, mutate, read_head


class ZlibStandIn(BlockCodec):
    name = "zlib-test"
    method_id = 200
    default_block_size = 1000

    def encode_block(self, block: bytes) -> bytes:
        return zlib.compress(block)

    def decode_block(self, payload: bytes, size: int) -> bytes:
        try:
            return zlib.decompress(payload, bufsize=size)
        except zlib.error as exc:
            raise CorruptDataError(str(exc)) from None


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "zlib-test", (__name__, "ZlibStandIn", 200))
    monkeypatch.setitem(registry._BY_METHOD, 200, "zlib-test")


TEXT = b"the quick brown fox jumps over the lazy dog\n" * 200


def test_layout_is_self_describing():
    frame = llm_codecs.compress(TEXT, "zlib-test", block_size=1000)
    reader = FrameReader(frame)
    assert frame[:4] == b"LLMZ" and frame[-4:] == b"ZMLL"
    assert reader.header.codec == "zlib-test" and reader.header.block_size == 1000
    assert reader.size == len(TEXT)
    assert len(reader.blocks) == -(-len(TEXT) // 1000)
    assert all(b.method == 200 for b in reader.blocks)
    assert llm_codecs.decompress(frame) == TEXT


def test_incompressible_blocks_are_stored_with_small_overhead():
    data = random.Random(1).randbytes(50_000)
    frame = llm_codecs.compress(data, "zlib-test", block_size=4096)
    reader = FrameReader(frame)
    assert all(b.method == 0 for b in reader.blocks)
    overhead = len(frame) - len(data)
    assert overhead <= 200 + INDEX_ENTRY_SIZE * len(reader.blocks)
    assert llm_codecs.decompress(frame) == data


def test_empty_input():
    frame = llm_codecs.compress(b"", "zlib-test")
    assert FrameReader(frame).blocks == []
    assert llm_codecs.decompress(frame) == b""
    assert llm_codecs.decompress(frame, offset=5, size=3) == b""


@given(st.binary(max_size=5000), st.integers(0, 6000), st.integers(0, 6000))
@settings(max_examples=200, deadline=None)
def test_range_reads_match_slicing(data, offset, size):
    frame = llm_codecs.compress(data, "zlib-test", block_size=333)
    assert llm_codecs.decompress(frame, offset=offset, size=size) == data[offset : offset + size]
    assert llm_codecs.decompress(frame, offset=offset) == data[offset:]


def test_range_read_decodes_only_touched_blocks(monkeypatch):
    frame = llm_codecs.compress(TEXT, "zlib-test", block_size=1000)
    decoded = []
    original = ZlibStandIn.decode_block
    monkeypatch.setattr(ZlibStandIn, "decode_block",
                        lambda self, p, n: decoded.append(n) or original(self, p, n))
    assert llm_codecs.decompress(frame, offset=4990, size=20) == TEXT[4990:5010]
    assert len(decoded) == 2


def test_streaming_writer_accepts_any_chunking():
    rng = random.Random(7)
    out = io.BytesIO()
    with FrameWriter(out, ZlibStandIn(), block_size=777) as writer:
        pos = 0
        while pos < len(TEXT):
            n = rng.randint(0, 3000)
            writer.write(TEXT[pos : pos + n])
            pos += n
    assert out.getvalue() == llm_codecs.compress(TEXT, "zlib-test", block_size=777)


def test_reader_over_a_file_object(tmp_path):
    path = tmp_path / "x.llmz"
    path.write_bytes(llm_codecs.compress(TEXT, "zlib-test", block_size=1000))
    with open(path, "rb") as f:
        reader = FrameReader(f)
        assert reader.read(123, 4567) == TEXT[123 : 123 + 4567]


def test_bad_parameters_raise_codec_error():
    with pytest.raises(CodecError, match="unknown codec"):
        llm_codecs.compress(b"x", "nope")
    with pytest.raises(CodecError, match="block_size"):
        llm_codecs.compress(b"x", "zlib-test", block_size=0)
    with pytest.raises(CodecError, match="block_size"):
        llm_codecs.compress(b"x", "zlib-test", block_size=1 << 40)
    with pytest.raises(CodecError, match="parameters"):
        llm_codecs.compress(b"x", "zlib-test", bogus=1)
    with pytest.raises(CodecError):
        llm_codecs.decompress(llm_codecs.compress(b"x", "zlib-test"), offset=-1)
    assert issubclass(CorruptDataError, CodecError) and issubclass(CodecError, ValueError)


@pytest.mark.parametrize("frame", [b"", b"LLMZ", b"\0" * 100, b"PK\x03\x04" + b"\0" * 60])
def test_garbage_is_rejected(frame):
    with pytest.raises(CorruptDataError):
        llm_codecs.decompress(frame)


def test_every_truncation_is_rejected():
    frame = llm_codecs.compress(TEXT[:3000], "zlib-test", block_size=1000)
    for n in range(len(frame)):
        with pytest.raises(CorruptDataError):
            llm_codecs.decompress(frame[:n])


def test_every_single_bit_flip_is_caught():
    data = TEXT[:2500]
    frame = llm_codecs.compress(data, "zlib-test", block_size=1000)
    for i in range(len(frame)):
        for bit in (0, 3, 7):
            damaged = bytearray(frame)
            damaged[i] ^= 1 << bit
            with pytest.raises(CorruptDataError):
                llm_codecs.decompress(bytes(damaged))


def test_random_mutations_never_give_wrong_bytes():
    rng = random.Random(0)
    data = TEXT[:5000] + rng.randbytes(1000)
    frame = llm_codecs.compress(data, "zlib-test", block_size=700)
    for _ in range(1000):
        assert_rejects_or_exact(mutate(frame, rng), data)


def test_forged_index_cannot_claim_huge_blocks():
    frame = bytearray(llm_codecs.compress(TEXT, "zlib-test", block_size=1000))
    # Rewrite the first index entry's original size, fixing up both CRCs as an attacker would.
    index_offset, count, size, _, _, magic = struct.unpack("<QQQII4s", frame[-FOOTER_SIZE:])
    entry = bytearray(frame[index_offset : index_offset + INDEX_ENTRY_SIZE])
    entry[12:16] = struct.pack("<I", 1 << 31)
    frame[index_offset : index_offset + INDEX_ENTRY_SIZE] = entry
    index = frame[index_offset : index_offset + count * INDEX_ENTRY_SIZE]
    fields = struct.pack("<QQQI", index_offset, count, size, zlib.crc32(index))
    frame[-FOOTER_SIZE:] = fields + struct.pack("<I", zlib.crc32(fields)) + magic
    with pytest.raises(CorruptDataError, match="inconsistent"):
        llm_codecs.decompress(bytes(frame))


def test_unknown_codec_in_header_is_a_clear_error(monkeypatch):
    frame = llm_codecs.compress(TEXT, "zlib-test")
    monkeypatch.delitem(registry._REGISTRY, "zlib-test")
    with pytest.raises(CorruptDataError, match="unknown codec 'zlib-test'"):
        llm_codecs.decompress(frame)


def _frame_with_header_body(body: bytes, flags: int, rest: bytes) -> bytes:
    """A frame whose header carries ``body`` (CRC made valid) followed by ``rest``."""
    head = struct.pack("<4sBBI", b"LLMZ", 1, flags, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head)) + rest


def _raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush()


def test_long_headers_are_stored_deflated_and_read_back():
    from llm_codecs.frame import FLAG_DICTIONARY_2, FrameHeader

    header = FrameHeader("zlib-test", {"note": "x" * 2000}, 1000, {"model": {"sha256": "0" * 64}})
    raw = header.to_bytes()
    assert raw[5] == FLAG_DICTIONARY_2 and len(raw) < 300
    parsed, end = FrameHeader.parse(lambda o, n: raw[o : o + n], len(raw) + FOOTER_SIZE)
    assert parsed == header and end == len(raw)
    # Stored as plain JSON only when deflating would not pay; never longer than the JSON.
    for note in ("", "q", "xz" * 7):
        short = FrameHeader("zlib-test", {"n": note}, 1000).to_bytes()
        plain = len(f'{{"block_size":1000,"codec":"zlib-test","fingerprint":null,'
                    f'"params":{{"n":"{note}"}}}}')
        assert len(short) <= 10 + plain + 4
        assert FrameHeader.parse(lambda o, n, s=short: s[o : o + n],
                                 len(short) + FOOTER_SIZE)[0].params == {"n": note}


@pytest.mark.parametrize(("fallback", "most"), [(True, 30), (False, 35)])
def test_the_default_models_one_block_frame_costs_about_thirty_bytes(fallback, most):
    from llm_codecs.frame import FLAG_DICTIONARY_4
    from llm_codecs.portable import ENGINE

    # Prose the model codes better than any fallback (a repeated sentence is the context
    # mixer's, and the model's probe gives it up whatever the process did before).
    data = read_head("canterbury/alice29.txt", 6500)[5000:]
    frame = llm_codecs.compress(data, "llm", fallback=fallback)
    reader = FrameReader(frame)
    assert reader.header.fingerprint["engine"] == ENGINE
    assert reader.version == 3 and reader.blocks[0].method == 3
    assert frame[5] == FLAG_DICTIONARY_4  # the dictionary that spells this engine
    # Header, block description and checksums: all a Zarr chunk pays beyond its payload (the
    # defaults' header is the dictionary's; fallback=False differs from it in one value).
    assert len(frame) - reader.blocks[0].compressed_size <= most
    assert llm_codecs.decompress(frame) == data


def test_frames_older_readers_could_decode_keep_the_dictionaries_they_know():
    from llm_codecs.frame import FLAG_DICTIONARY_2, FrameHeader

    # The newest dictionary only where the engine is new: a classic frame, or one of the first
    # engine, stays readable by every reader that can decode it.
    assert llm_codecs.compress(TEXT * 4, "lz77", block_size=500)[5] == FLAG_DICTIONARY_2
    v1 = {"coder": "rans64-shared", "engine": "int8-v1",
          "model": {"name": "default", "revision": None, "sha256": "0" * 64}}
    params = {"lanes": 96, "model": "default", "note": "x" * 200}
    assert FrameHeader("llm", params, 65536, v1).to_bytes()[5] == FLAG_DICTIONARY_2


def test_a_model_fingerprint_costs_about_a_hundred_bytes_with_the_dictionary():
    from llm_codecs.frame import FrameHeader

    # An llm frame's header, as the default model on a CPU writes it (hash made up): the preset
    # dictionary holds its keys and usual values, so little more than the hash is coded.
    params = {"cache": True, "context": 64, "device": "cpu", "dtype": "float32",
              "fallback": True, "lanes": 64, "model": "default", "revision": None,
              "scale_bits": 28, "step": "auto", "threads": 1}
    fingerprint = {
        "coder": "rans64-shared",
        "model": {"name": "default", "revision": None,
                  "sha256": random.Random(5).randbytes(32).hex()},
        "numerics": {"attention": "sdpa", "device": "cpu", "device_name": "x86_64",
                     "dtype": "float32", "threads": 2, "torch": "2.14.1+cpu",
                     "transformers": "5.30.0"},
        "step": "lean",
    }
    header = FrameHeader("llm", params, 65536, fingerprint)
    raw = header.to_bytes()
    assert len(raw) < 120  # about 300 with plain deflate
    assert FrameHeader.parse(lambda o, n: raw[o : o + n], len(raw) + FOOTER_SIZE)[0] == header


def test_headers_deflated_by_earlier_versions_still_read(monkeypatch):
    from llm_codecs import frame as frame_module

    # A fingerprint long enough to be deflated, accepted as is.
    monkeypatch.setattr(ZlibStandIn, "fingerprint", lambda self: {"note": "fingerprint " * 40},
                        raising=False)
    monkeypatch.setattr(ZlibStandIn, "check_fingerprint", lambda self, fp: None, raising=False)
    # Write as versions before the preset dictionary did: zlib format, flag bit 0.
    with monkeypatch.context() as patch:
        patch.setattr(frame_module, "_deflate_header", lambda body, flag: zlib.compress(body, 9))
        patch.setattr(frame_module, "FLAG_DICTIONARY_2", frame_module.FLAG_DEFLATED)
        old = llm_codecs.compress(TEXT, "zlib-test", block_size=500)
    assert old[5] == frame_module.FLAG_DEFLATED
    assert llm_codecs.decompress(old) == TEXT
    # ... and as versions with the first preset dictionary did (flag 2).
    def first_dictionary(body, flag):
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY,
                                    frame_module.HEADER_DICTIONARY)
        return deflater.compress(body) + deflater.flush()

    with monkeypatch.context() as patch:
        patch.setattr(frame_module, "_deflate_header", first_dictionary)
        patch.setattr(frame_module, "FLAG_DICTIONARY_2", frame_module.FLAG_DICTIONARY)
        old = llm_codecs.compress(TEXT, "zlib-test", block_size=500)
    assert old[5] == frame_module.FLAG_DICTIONARY
    assert llm_codecs.decompress(old) == TEXT
    assert llm_codecs.compress(TEXT, "zlib-test", block_size=500)[5] == \
        frame_module.FLAG_DICTIONARY_2


@pytest.mark.parametrize(("forge", "why"), [
    (lambda deflate: deflate(b"[" * 70_000), "bad deflated"),  # inflates past the 64 KiB limit
    (lambda deflate: deflate(b'{"codec":"zlib-test"}') + b"junk", "bad deflated"),  # data after
    (lambda deflate: deflate(b'{"codec":"zlib-test"}')[:-3], "bad deflated"),  # cut short
    (lambda deflate: b"not deflate at all", "malformed frame header"),
], ids=["too-long", "data-after", "cut-short", "not-deflate"])
def test_forged_deflated_headers_are_refused(forge, why):
    rest = llm_codecs.compress(TEXT, "zlib-test")  # room for the index the header precedes
    frame = _frame_with_header_body(forge(zlib.compress), 1, rest)
    with pytest.raises(CorruptDataError, match=why):
        FrameReader(frame)
    # The dictionary flags read raw deflate: the same forgeries made that way (a zlib stream
    # deflated again would only inflate to bytes that are not JSON).
    for flags in (2, 4):
        with pytest.raises(CorruptDataError, match=why):
            FrameReader(_frame_with_header_body(forge(_raw_deflate), flags, rest))
    for flags in (3, 5, 0x80):
        with pytest.raises(CorruptDataError, match="flags"):
            FrameReader(_frame_with_header_body(b"{}", flags, rest))


def test_deeply_nested_header_json_is_corrupt_data_not_recursion():
    rest = llm_codecs.compress(TEXT, "zlib-test")
    body = b"[" * 30000 + b"]" * 30000
    with pytest.raises(CorruptDataError, match="nested"):
        FrameReader(_frame_with_header_body(body, 0, rest))
    with pytest.raises(CorruptDataError):
        llm_codecs.decompress(_frame_with_header_body(body, 0, rest))
