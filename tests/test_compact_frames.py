"""Compact frames (format version 3): one block described in the header, no index, no footer."""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import llm_codecs
from llm_codecs import CorruptDataError
from llm_codecs.codecs.lz77 import LZ77Codec
from llm_codecs.coding.varint import put_varint
from llm_codecs.frame import (
    FORMAT_VERSION,
    FORMAT_VERSION_COMPACT,
    FrameReader,
    FrameWriter,
    frame_original_size,
    parse_head,
)

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
TEXT = (GOLDEN / "dpkg.log").read_bytes()


class _TextLZ77(LZ77Codec):
    models_text = True  # frames of strings without loading a model


def _head(frame: bytes):
    return parse_head(lambda offset, n: frame[offset : offset + n], len(frame))


@pytest.mark.parametrize("codec", ["huffman", "lz77"])
@pytest.mark.parametrize("data", [b"", b"x", TEXT, TEXT * 10], ids=["empty", "1B", "6KB", "60KB"])
def test_a_one_block_classic_frame_costs_under_32_bytes(codec, data):
    frame = llm_codecs.compress(data, codec)
    reader = FrameReader(frame)
    assert reader.version == FORMAT_VERSION_COMPACT == frame[4]
    payload = sum(b.compressed_size for b in reader.blocks)
    assert len(frame) - payload < 32
    assert llm_codecs.decompress(frame) == data
    assert frame_original_size(lambda o, n: frame[o : o + n], len(frame)) == len(data)


def test_more_than_one_block_keeps_the_block_index():
    frame = llm_codecs.compress(TEXT, "lz77", block_size=4096)
    reader = FrameReader(frame)
    assert reader.version == FORMAT_VERSION and len(reader.blocks) == 2
    assert llm_codecs.decompress(frame, offset=4000, size=200) == TEXT[4000:4200]
    assert frame_original_size(lambda o, n: frame[o : o + n], len(frame)) == len(TEXT)


@pytest.mark.parametrize("pieces", [[6000], [1000, 5000], [5999, 1], [6000, 0]])
def test_a_writer_makes_a_compact_frame_only_for_at_most_one_block(pieces):
    out = io.BytesIO()
    data = TEXT[: sum(pieces)]
    writer = FrameWriter(out, LZ77Codec(), block_size=6000, batch_blocks=1)
    at = 0
    for n in pieces:
        writer.write(data[at : at + n])
        at += n
    # Until it is closed, the writer cannot know the frame will hold only one block.
    assert out.getvalue() == b""
    writer.close()
    frame = out.getvalue()
    assert frame[4] == FORMAT_VERSION_COMPACT
    assert frame == llm_codecs.compress(data, "lz77", block_size=6000)
    assert llm_codecs.decompress(frame) == data


def test_a_writer_switches_to_the_block_index_at_the_second_block():
    out = io.BytesIO()
    writer = FrameWriter(out, LZ77Codec(), block_size=6000, batch_blocks=1)
    writer.write(TEXT)
    writer.write(b"!")  # one byte more than a block: the frame needs an index
    assert out.getvalue()[4] == FORMAT_VERSION  # the first block is out before close
    writer.close()
    assert llm_codecs.decompress(out.getvalue()) == TEXT + b"!"
    assert len(FrameReader(out.getvalue()).blocks) == 2


def test_every_damaged_byte_of_the_head_is_detected():
    frame = llm_codecs.compress(TEXT, "lz77")
    end = _head(frame).end
    for i in range(end):
        for bit in (0x01, 0x80):
            damaged = bytearray(frame)
            damaged[i] ^= bit
            with pytest.raises(CorruptDataError):
                llm_codecs.decompress(bytes(damaged))


def test_every_truncation_and_extension_is_detected():
    frame = llm_codecs.compress(TEXT[:300], "huffman")
    for n in range(len(frame)):
        with pytest.raises(CorruptDataError):
            llm_codecs.decompress(frame[:n])
    with pytest.raises(CorruptDataError):
        llm_codecs.decompress(frame + b"\0")


def test_damaged_payloads_are_detected_by_both_checksums():
    frame = llm_codecs.compress(TEXT, "lz77")
    head = _head(frame)
    payload = bytearray(frame[head.end :])
    payload[len(payload) // 2] ^= 0x10
    with pytest.raises(CorruptDataError, match="payload checksum"):
        llm_codecs.decompress(frame[: head.end] + bytes(payload))
    # The payload CRC forged too: the data CRC stands (the original's CRC is wrong for it).
    other = llm_codecs.compress(TEXT[::-1], "lz77")
    forged = dataclasses.replace(head.compact, payload_crc=zlib.crc32(other[_head(other).end :]))
    with pytest.raises(CorruptDataError, match="data checksum"):
        llm_codecs.decompress(head.header.to_compact_bytes(forged) + other[_head(other).end :])


def _forge(frame: bytes, payload: bytes | None = None, **changes) -> bytes:
    """``frame`` with its block description changed, every CRC right (an attacker's frame)."""
    head = _head(frame)
    payload = frame[head.end :] if payload is None else payload
    entry = dataclasses.replace(head.compact, payload_crc=zlib.crc32(payload), **changes)
    return head.header.to_compact_bytes(entry) + payload


def test_forged_descriptions_are_refused_before_decoding():
    frame = llm_codecs.compress(TEXT, "lz77", block_size=8192)
    with pytest.raises(CorruptDataError, match="does not match"):
        llm_codecs.decompress(_forge(frame, size=8193))  # more than the declared block size
    with pytest.raises(CorruptDataError, match="does not match"):
        llm_codecs.decompress(_forge(frame, method=0))  # stored, but not the original's length
    with pytest.raises(CorruptDataError, match="not valid"):
        llm_codecs.decompress(_forge(frame, method=3))  # the llm method in an lz77 frame
    empty = llm_codecs.compress(b"", "lz77")
    with pytest.raises(CorruptDataError, match="empty frame"):
        llm_codecs.decompress(_forge(empty, payload=b"x"))
    assert llm_codecs.decompress(_forge(empty)) == b""


def test_a_compact_frame_of_strings_records_the_chunks_size():
    chunk = np.array([b"alpha", b"", b"gamma\x00", b"delta delta"], dtype="S12")
    frame = llm_codecs.compress(chunk, _TextLZ77())
    reader = FrameReader(frame)
    assert reader.version == FORMAT_VERSION_COMPACT and reader.layout.kind == "fixed-bytes"
    assert reader.size == chunk.nbytes > reader.stored_size
    assert frame_original_size(lambda o, n: frame[o : o + n], len(frame)) == chunk.nbytes
    assert llm_codecs.decompress(frame) == chunk.tobytes()
    # The string flag and the header's layout must agree: a head written without the flag (and
    # so without the chunk's size), every CRC right, is refused.
    head = _head(frame)
    flags, body = head.header._json()
    forged = bytearray(b"LLMZ" + bytes([FORMAT_VERSION_COMPACT, flags]))
    put_varint(forged, len(body))
    forged += body + bytes([head.compact.method])
    put_varint(forged, head.compact.size)
    forged += struct.pack("<II", head.compact.data_crc, head.compact.payload_crc)
    forged += struct.pack("<I", zlib.crc32(forged)) + frame[head.end :]
    with pytest.raises(CorruptDataError, match="layout does not match"):
        llm_codecs.decompress(bytes(forged))
