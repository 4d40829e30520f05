"""Shared round-trip and corruption checks: every codec gets the whole battery in one line."""

from __future__ import annotations

import json
import os
import random
import struct
import zlib
from pathlib import Path

import pytest

import llm_codecs
from llm_codecs import CorruptDataError
from llm_codecs.coding.varint import put_varint
from llm_codecs.frame import FrameReader

CORPUS = Path(os.environ.get("LLM_CODECS_CORPUS", Path(__file__).resolve().parents[1].parent
                             / "shared" / "corpus"))
BENCH = CORPUS / "bench"


def bench_files() -> list[Path]:
    """Every file of the bench corpus, sorted; fails in CI if the corpus is missing."""
    files = sorted(p for p in BENCH.rglob("*") if p.is_file())
    if not files:
        if os.environ.get("CI"):
            raise RuntimeError(f"bench corpus not found at {BENCH}")
        pytest.skip(f"bench corpus not found at {BENCH}")
    return files


def bench_ids() -> list[str]:
    return [str(p.relative_to(BENCH)) for p in sorted(p for p in BENCH.rglob("*") if p.is_file())]


def read_head(rel: str, limit: int = 1 << 20) -> bytes:
    """The first ``limit`` bytes of a bench file."""
    with open(BENCH / rel, "rb") as f:
        return f.read(limit)


def assert_roundtrip(data: bytes, codec: str, **params) -> bytes:
    """Compress with ``codec`` and check that every byte comes back; return the frame."""
    frame = llm_codecs.compress(data, codec, **params)
    assert llm_codecs.decompress(frame) == data
    return frame


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """A random truncation, bit flip, byte overwrite, insertion, or appended garbage."""
    kind = rng.randrange(5)
    buf = bytearray(frame)
    if kind == 0 and buf:
        return bytes(buf[: rng.randrange(len(buf))])
    if kind == 1 and buf:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == 2 and buf:
        i = rng.randrange(len(buf))
        buf[i : i + 4] = rng.randbytes(min(4, len(buf) - i))
        return bytes(buf)
    if kind == 3:
        i = rng.randrange(len(buf) + 1)
        buf[i:i] = rng.randbytes(rng.randint(1, 8))
        return bytes(buf)
    return bytes(buf) + rng.randbytes(rng.randint(1, 64))


def assert_rejects_or_exact(frame: bytes, original: bytes) -> None:
    """A damaged frame must raise CorruptDataError, or (if the damage missed) decode exactly."""
    try:
        out = llm_codecs.decompress(frame)
    except CorruptDataError:
        return
    assert out == original, "damaged frame decoded to wrong bytes without an error"


def _damage(payload: bytes, rng: random.Random) -> bytes:
    """``payload`` with 1-3 random edits: a bit flipped, a byte replaced, or the tail replaced."""
    payload = bytearray(payload)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(3)
        i = rng.randrange(len(payload))
        if kind == 0:
            payload[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            payload[i] = rng.randrange(256)
        else:
            payload[i:] = rng.randbytes(len(payload) - i)
    return bytes(payload)


def forge_payload(frame: bytes, rng: random.Random) -> bytes:
    """Damage one block's payload and fix its payload CRC, as a careful attacker would.

    The frame's checksum of the payload no longer protects the decoder, so this reaches the
    codec's own validation; only the checksum of the decoded data stands behind it.
    """
    import dataclasses
    import struct
    import zlib

    from llm_codecs.frame import FOOTER_SIZE, FORMAT_VERSION_COMPACT, INDEX_ENTRY_SIZE, parse_head

    if frame[4] == FORMAT_VERSION_COMPACT:
        head = parse_head(lambda offset, n: frame[offset : offset + n], len(frame))
        if head.compact.method == 0:
            return frame
        payload = _damage(frame[head.end :], rng)
        entry = dataclasses.replace(head.compact, payload_crc=zlib.crc32(payload))
        return head.header.to_compact_bytes(entry) + payload
    buf = bytearray(frame)
    index_offset, count, size, _, _, magic = struct.unpack("<QQQII4s", buf[-FOOTER_SIZE:])
    coded = [i for i in range(count)
             if buf[index_offset + i * INDEX_ENTRY_SIZE + 16] != 0]  # method byte: not stored
    if not coded:
        return bytes(buf)
    at = index_offset + rng.choice(coded) * INDEX_ENTRY_SIZE
    offset, clen, olen, method, _, dcrc = struct.unpack("<QIIBII", buf[at : at + INDEX_ENTRY_SIZE])
    payload = _damage(buf[offset : offset + clen], rng)
    buf[offset : offset + clen] = payload
    buf[at : at + INDEX_ENTRY_SIZE] = struct.pack("<QIIBII", offset, clen, olen, method,
                                                  zlib.crc32(payload), dcrc)
    index = bytes(buf[index_offset : index_offset + count * INDEX_ENTRY_SIZE])
    fields = struct.pack("<QQQI", index_offset, count, size, zlib.crc32(index))
    buf[-FOOTER_SIZE:] = fields + struct.pack("<I", zlib.crc32(fields)) + magic
    return bytes(buf)


def varint(value: int) -> bytes:
    """Unsigned LEB128, as the LLM and LZ77 payloads write their counts."""
    out = bytearray()
    put_varint(out, value)
    return bytes(out)


def forge_frame(header, blocks, size: int | None = None) -> bytes:
    """A frame with ``header`` (a :class:`~llm_codecs.frame.FrameHeader`, or its bytes) and
    ``blocks``, every checksum right, as an attacker would build it: it reaches the decoders,
    not just the CRCs.

    ``blocks`` holds ``(method, payload, size)`` or ``(method, payload, size, data_crc)``;
    ``size`` is the footer's original size (the blocks' total by default).
    """
    from llm_codecs.frame import FOOTER_MAGIC

    out = bytearray(header if isinstance(header, bytes) else header.to_bytes())
    index = bytearray()
    for method, payload, original, *crc in blocks:
        index += struct.pack("<QIIBII", len(out), len(payload), original, method,
                             zlib.crc32(payload), crc[0] if crc else 0)
        out += payload
    index_offset = len(out)
    out += index
    total = sum(b[2] for b in blocks) if size is None else size
    fields = struct.pack("<QQQI", index_offset, len(blocks), total, zlib.crc32(bytes(index)))
    return bytes(out + fields + struct.pack("<I", zlib.crc32(fields)) + FOOTER_MAGIC)


def rans_stream(words: int, rng: random.Random) -> bytes:
    """A rANS64 stream with a well-formed initial state and ``words`` random words."""
    return rng.randrange(1 << 31, 1 << 39).to_bytes(5, "little") + rng.randbytes(4 * words)


def rewrite_header(frame: bytes, version: int, edit) -> bytes:
    """The frame with its header JSON edited, every CRC recomputed (a forged frame)."""
    reader = FrameReader(frame)
    fields = {
        "codec": reader.header.codec, "params": reader.header.params,
        "block_size": reader.header.block_size, "fingerprint": reader.header.fingerprint,
    }
    if reader.layout is not None:
        fields["layout"] = reader.layout.to_json()
    edit(fields)
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    head = b"LLMZ" + bytes([version, 0]) + struct.pack("<I", len(body)) + body
    blocks = [(e.method, frame[e.offset : e.offset + e.compressed_size], e.size, e.data_crc)
              for e in reader.blocks]
    return forge_frame(head + struct.pack("<I", zlib.crc32(head)), blocks, reader.size)
