"""The LLMZ container: header, independently coded blocks, block index and footer.

The frame knows nothing about any codec beyond the :class:`~llm_codecs.codecs.BlockCodec`
contract. It owns everything the codecs share: block splitting, the per-block method choice
(stored when coding does not pay), checksums, size limits, streaming writes and random-access
reads. ``docs/format.md`` specifies the layout byte by byte; the constants below are that spec.
"""

from __future__ import annotations

import io
import json
import operator
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from .codecs import METHOD_STORED, BlockCodec, codec_class, make_codec
from .coding.varint import MAX_BYTES as VARINT_MAX_BYTES
from .coding.varint import get_varint, put_varint
from .errors import CodecError, CorruptDataError, ModelMismatchError, NumericsMismatchError
from .strings import StringLayout

MAGIC = b"LLMZ"
FOOTER_MAGIC = b"ZMLL"
#: Version of frames whose blocks hold the original bytes (every frame without a string layout).
FORMAT_VERSION = 1
#: Version of frames whose blocks hold the text view of a chunk of strings, restored through the
#: header's ``layout`` (:mod:`llm_codecs.strings`). A reader that predates it refuses such a
#: frame instead of returning the text view as if it were the data.
FORMAT_VERSION_STRINGS = 2
#: Version of compact frames: at most one block, described in the header itself, with no block
#: index and no footer (a one-block classic frame costs 26-28 bytes instead of 81). Written for
#: every input of at most one block; the JSON may carry a ``layout`` as in version 2.
FORMAT_VERSION_COMPACT = 3
#: Every version this build reads.
READABLE_VERSIONS = (FORMAT_VERSION, FORMAT_VERSION_STRINGS, FORMAT_VERSION_COMPACT)

#: magic, version, flags: how every frame starts.
_PREFIX = struct.Struct("<4sBB")
#: magic, version, flags, length of the JSON header that follows (versions 1 and 2).
_PREAMBLE = struct.Struct("<4sBBI")
_CRC = struct.Struct("<I")
#: A compact frame's block description after its method and sizes: CRC-32 of the original
#: bytes, CRC-32 of the payload (then the head's own CRC-32).
_COMPACT_CRCS = struct.Struct("<II")
#: offset, compressed length, original length, method, payload CRC-32, data CRC-32.
_INDEX_ENTRY = struct.Struct("<QIIBII")
#: index offset, block count, original size, index CRC-32, footer CRC-32, footer magic.
_FOOTER = struct.Struct("<QQQII4s")

INDEX_ENTRY_SIZE = _INDEX_ENTRY.size
FOOTER_SIZE = _FOOTER.size
#: Longest JSON header a reader accepts; real headers are a few hundred bytes.
MAX_HEADER_JSON = 1 << 16
#: Header flag: the JSON is stored deflated (zlib format). Written by earlier versions; read
#: by this one.
FLAG_DEFLATED = 0x01
#: Header flag: the JSON is stored as raw deflate (RFC 1951) primed with
#: :data:`HEADER_DICTIONARY`, which the writer does whenever that is shorter. A model
#: fingerprint is ~500 bytes of JSON, ~300 deflated alone and ~80 with the dictionary: much of
#: a frame's fixed cost, paid by every Zarr chunk.
FLAG_DICTIONARY = 0x02
#: The preset dictionary of :data:`FLAG_DICTIONARY` headers: the JSON of typical headers (part
#: of the format, never to change).
HEADER_DICTIONARY = (
    b'{"block_size":262144,"codec":"huffman","fingerprint":null,"params":{}}'
    b'{"block_size":1048576,"codec":"lz77","fingerprint":null,"params":{"level":5}}'
    b'{"block_size":65536,"codec":"llm","fingerprint":{"coder":"rans64-shared","model":'
    b'{"name":"default","revision":null,"sha256":""},"numerics":{"attention":"sdpa",'
    b'"device":"cpu","device_name":"x86_64","dtype":"float32","threads":1,'
    b'"torch":"2.13.0+cpu","transformers":"5.24.0"},"step":"lean"},"params":{"cache":true,'
    b'"context":64,"device":"cpu","dtype":"float32","fallback":true,"lanes":64,'
    b'"model":"default","revision":null,"scale_bits":28,"step":"auto","threads":1}}'
)
#: Header flag: raw deflate primed with :data:`HEADER_DICTIONARY_2` (written since the portable
#: engine: its headers, the default model's among them, then cost about 20 bytes).
FLAG_DICTIONARY_2 = 0x04
#: The preset dictionary of :data:`FLAG_DICTIONARY_2` headers (part of the format, never to
#: change): the first dictionary, then typical native and portable ``llm`` headers, the default
#: model's last (deflate reaches recent text with the shortest distances).
HEADER_DICTIONARY_2 = HEADER_DICTIONARY + (
    b'{"block_size":65536,"codec":"llm","fingerprint":{"coder":"rans64-shared","model":'
    b'{"name":"","revision":null,"sha256":""},"numerics":{"attention":"sdpa","blas":"mkl",'
    b'"blas_isa":"auto","cpu":"","cpu_capability":"AVX2","device":"cpu",'
    b'"device_name":"x86_64","dtype":"float32","threads":1,"torch":"2.13.0+cpu",'
    b'"transformers":"5.24.0"},"step":"lean"},"params":{"cache":true,"context":64,'
    b'"device":"cpu","dtype":"float32","fallback":true,"lanes":96,"model":"",'
    b'"numerics":"native","revision":null,"scale_bits":28,"step":"auto","threads":1}}'
    b'{"block_size":65536,"codec":"llm","fingerprint":{"coder":"rans64-shared",'
    b'"engine":"int8-v1","model":{"name":"default","revision":null,"sha256":'
    b'"0221751d61cd6556bca462f7d6e03ba01efccc5ff6dc7d8a2ca383f130f2dd9f"}},"params":'
    b'{"cache":true,"context":64,"device":"cpu","dtype":"float32","fallback":true,'
    b'"lanes":96,"model":"default","numerics":"auto","revision":null,"scale_bits":28,'
    b'"step":"auto","threads":1}}'
)
#: Header flag: raw deflate primed with :data:`HEADER_DICTIONARY_3`; written for frames of
#: strings (version 2), whose headers also carry a ``layout``.
FLAG_DICTIONARY_3 = 0x08
#: The preset dictionary of :data:`FLAG_DICTIONARY_3` headers (part of the format, never to
#: change): the second dictionary, then the default model's header with each kind of layout.
HEADER_DICTIONARY_3 = HEADER_DICTIONARY_2 + b"".join(
    b'{"block_size":65536,"codec":"llm","fingerprint":{"coder":"rans64-shared",'
    b'"engine":"int8-v1","model":{"name":"default","revision":null,"sha256":'
    b'"0221751d61cd6556bca462f7d6e03ba01efccc5ff6dc7d8a2ca383f130f2dd9f"}},"layout":'
    + layout
    + b',"params":{"cache":true,"context":64,"device":"cpu","dtype":"float32",'
    b'"fallback":true,"lanes":96,"model":"default","numerics":"auto","revision":null,'
    b'"scale_bits":28,"step":"auto","threads":1}}'
    for layout in (
        b'{"kind":"vlen","separator":10}',
        b'{"itemsize":400,"kind":"fixed-utf32le","separator":10}',
        b'{"itemsize":100,"kind":"fixed-bytes","separator":10}',
    )
)
#: Header flag of compact frames only, beside the JSON's encoding: the frame holds a chunk of
#: strings (its JSON has a ``layout``), so the chunk's size follows the block's.
FLAG_COMPACT_STRINGS = 0x10
#: Header flag: raw deflate primed with :data:`HEADER_DICTIONARY_4`; written for frames of the
#: portable engine ``int8-v2``, which no reader before that engine could decode anyway (the
#: older dictionaries spell ``int8-v1``: three bytes more per frame).
FLAG_DICTIONARY_4 = 0x20
#: The preset dictionary of :data:`FLAG_DICTIONARY_4` headers (part of the format, never to
#: change): the third dictionary, then the default model's ``int8-v2`` header without and
#: with each kind of layout.
HEADER_DICTIONARY_4 = HEADER_DICTIONARY_3 + b"".join(
    b'{"block_size":65536,"codec":"llm","fingerprint":{"coder":"rans64-shared",'
    b'"engine":"int8-v2","model":{"name":"default","revision":null,"sha256":'
    b'"0221751d61cd6556bca462f7d6e03ba01efccc5ff6dc7d8a2ca383f130f2dd9f"}},'
    + layout
    + b'"params":{"cache":true,"context":64,"device":"cpu","dtype":"float32",'
    b'"fallback":true,"lanes":96,"model":"default","numerics":"auto","revision":null,'
    b'"scale_bits":28,"step":"auto","threads":1}}'
    for layout in (
        b'',
        b'"layout":{"kind":"vlen","separator":10},',
        b'"layout":{"itemsize":400,"kind":"fixed-utf32le","separator":10},',
        b'"layout":{"itemsize":100,"kind":"fixed-bytes","separator":10},',
    )
)
_DICTIONARIES = {FLAG_DICTIONARY: HEADER_DICTIONARY, FLAG_DICTIONARY_2: HEADER_DICTIONARY_2,
                 FLAG_DICTIONARY_3: HEADER_DICTIONARY_3, FLAG_DICTIONARY_4: HEADER_DICTIONARY_4}
#: Largest block size any frame may declare (and so the most one block decode allocates).
MAX_BLOCK_SIZE = 64 << 20
#: The shortest frame there can be: a compact one with a one-byte JSON length, one byte of
#: (deflated) JSON, the method, a one-byte size and the CRCs.
MIN_FRAME_SIZE = _PREFIX.size + 1 + 1 + 1 + 1 + _COMPACT_CRCS.size + _CRC.size


def _deflate_header(body: bytes, flag: int) -> bytes:
    """``body`` as raw deflate primed with the dictionary of header flag ``flag``."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY,
                                _DICTIONARIES[flag])
    return deflater.compress(body) + deflater.flush()


def _inflate_header(body: bytes, flags: int) -> bytes:
    """The deflated header JSON, refusing more than :data:`MAX_HEADER_JSON` bytes of it."""
    if flags in _DICTIONARIES:
        inflater = zlib.decompressobj(-15, zdict=_DICTIONARIES[flags])
    else:
        inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(body, MAX_HEADER_JSON + 1)
    except zlib.error as exc:
        raise CorruptDataError(f"malformed frame header: {exc}") from None
    if len(text) > MAX_HEADER_JSON or not inflater.eof or inflater.unused_data:
        raise CorruptDataError("malformed frame header: bad deflated JSON")
    return text


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise CorruptDataError("malformed frame header: a JSON key appears twice")
    return dict(pairs)


def _no_constant(name: str):
    raise CorruptDataError(f"malformed frame header: {name} is not JSON")


def _strict_json(body: bytes) -> Any:
    """The header's JSON as the format defines it: UTF-8 (``json.loads`` would also take UTF-16
    or 32 and a byte order mark), each key once in an object (``json`` keeps the last of
    duplicates, so two readers could disagree on what a header says), no ``NaN``/``Infinity``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptDataError("malformed frame header: the JSON is not UTF-8") from None
    if text.startswith("\ufeff"):
        raise CorruptDataError("malformed frame header: the JSON starts with a byte order mark")
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)


def _crc(data) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class FrameHeader:
    """What a frame says about itself before its first block.

    Attributes
    ----------
    codec : str
        Registered codec name (``"huffman"``, ``"lz77"``, ``"llm"``).
    params : dict
        The codec's parameters, enough to rebuild it.
    block_size : int
        Original bytes per block; every block but the last holds exactly this many.
    fingerprint : dict or None
        Identity facts the decoder must match (model hash, numerics), codec-defined.
    layout : StringLayout or None
        How the blocks' text is restored to a chunk of strings (format version 2), or None
        when the blocks hold the original bytes.
    """

    codec: str
    params: dict[str, Any]
    block_size: int
    fingerprint: dict[str, Any] | None = None
    layout: StringLayout | None = None

    @property
    def version(self) -> int:
        """The version of a frame with a block index written with this header: the lowest
        that can express it (a compact frame is version 3 whatever its header)."""
        return FORMAT_VERSION if self.layout is None else FORMAT_VERSION_STRINGS

    def _json(self) -> tuple[int, bytes]:
        """The header's JSON as stored: ``(flags, bytes)``, deflated when that is shorter."""
        fields = {
            "codec": self.codec,
            "params": self.params,
            "block_size": self.block_size,
            "fingerprint": self.fingerprint,
        }
        if self.layout is not None:
            fields["layout"] = self.layout.to_json()
        body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        if len(body) > MAX_HEADER_JSON:
            raise CodecError(f"frame header too large ({len(body)} bytes)")
        # The oldest dictionary a reader of this frame must know: older readers still read
        # what they could decode.
        engine = (self.fingerprint or {}).get("engine")
        if engine not in (None, "int8-v1"):
            flag = FLAG_DICTIONARY_4
        else:
            flag = FLAG_DICTIONARY_2 if self.layout is None else FLAG_DICTIONARY_3
        deflated = _deflate_header(body, flag)
        return (flag, deflated) if len(deflated) < len(body) else (0, body)

    def to_bytes(self) -> bytes:
        """Serialise the header of a frame with a block index (preamble, JSON, CRC-32)."""
        flags, body = self._json()
        head = _PREAMBLE.pack(MAGIC, self.version, flags, len(body)) + body
        return head + _CRC.pack(_crc(head))

    def to_compact_bytes(self, entry: CompactEntry) -> bytes:
        """Serialise the head of a compact frame (version 3): all that precedes its payload."""
        flags, body = self._json()
        if self.layout is not None:
            flags |= FLAG_COMPACT_STRINGS
        head = bytearray(_PREFIX.pack(MAGIC, FORMAT_VERSION_COMPACT, flags))
        put_varint(head, len(body))
        head += body
        head.append(entry.method)
        put_varint(head, entry.size)
        if self.layout is not None:
            put_varint(head, entry.original_size)
        head += _COMPACT_CRCS.pack(entry.data_crc, entry.payload_crc)
        return bytes(head + _CRC.pack(_crc(head)))

    @classmethod
    def parse(cls, read_at, total: int) -> tuple[FrameHeader, int]:
        """Parse the header through ``read_at(offset, n)``; return it and its length (for a
        compact frame, the length of everything before the payload)."""
        head = parse_head(read_at, total)
        return head.header, head.end

    @classmethod
    def _from_json(cls, body: bytes, flags: int, version: int) -> FrameHeader:
        """The header a (possibly deflated) JSON document describes, its fields checked."""
        if flags:
            body = _inflate_header(body, flags)
        try:
            fields = _strict_json(body)
            if not isinstance(fields, dict):
                raise CorruptDataError("malformed frame header: the JSON is not an object")
            if "layout" in fields and version == FORMAT_VERSION:
                raise CorruptDataError(
                    f"malformed frame header: a string layout needs format version "
                    f"{FORMAT_VERSION_STRINGS} or {FORMAT_VERSION_COMPACT}"
                )
            if "layout" not in fields and version == FORMAT_VERSION_STRINGS:
                raise CorruptDataError(
                    f"malformed frame header: a version {FORMAT_VERSION_STRINGS} frame needs a "
                    f"string layout"
                )
            header = cls(
                codec=fields["codec"],
                params=fields["params"],
                block_size=fields["block_size"],
                fingerprint=fields.get("fingerprint"),
                layout=StringLayout.from_json(fields["layout"]) if "layout" in fields else None,
            )
        except CorruptDataError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptDataError(f"malformed frame header: {exc}") from None
        except RecursionError:  # JSON nested deeper than the interpreter recurses
            raise CorruptDataError("malformed frame header: JSON nested too deeply") from None
        if (
            not isinstance(header.codec, str)
            or not isinstance(header.params, dict)
            or not isinstance(header.fingerprint, dict | None)
            or isinstance(header.block_size, bool)
            or not isinstance(header.block_size, int)
            or not 1 <= header.block_size <= MAX_BLOCK_SIZE
        ):
            raise CorruptDataError("malformed frame header fields")
        return header


@dataclass(frozen=True)
class CompactEntry:
    """The one block of a compact frame, as its head describes it.

    Attributes
    ----------
    method : int
        How the payload is coded (0 when there is no block).
    size : int
        Original bytes of the block (0: the frame holds no block).
    original_size : int
        The frame's original size: ``size``, or the chunk's size for a frame of strings.
    data_crc, payload_crc : int
        CRC-32 of the block's original bytes and of its payload.
    """

    method: int
    size: int
    original_size: int
    data_crc: int
    payload_crc: int


@dataclass(frozen=True)
class FrameHead:
    """What a frame's first bytes say: its version, header and, for a compact frame, its
    block. ``end`` is where the first payload starts."""

    version: int
    header: FrameHeader
    end: int
    compact: CompactEntry | None = None


#: Bytes read at once for a frame's head: a typical compact head (about 30 bytes) in one read.
HEAD_READ_SIZE = 64


def parse_head(read_at, total: int) -> FrameHead:
    """Parse and verify a frame's head through ``read_at(offset, n)`` (``total``: the frame's
    length): the header, and for a compact frame the description of its block.

    Raises
    ------
    CorruptDataError
        The bytes are not the head of an LLMZ frame this build reads.
    """
    first = read_at(0, min(total, HEAD_READ_SIZE))
    if len(first) < _PREFIX.size:
        raise CorruptDataError("truncated frame: no room for a header")
    magic, version, flags = _PREFIX.unpack(first[: _PREFIX.size])
    if magic != MAGIC:
        raise CorruptDataError("not an LLMZ frame (bad magic)")
    if version not in READABLE_VERSIONS:
        raise CorruptDataError(
            f"unsupported LLMZ format version {version} (this build reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; a newer llm_codecs may read it)"
        )
    strings = version == FORMAT_VERSION_COMPACT and bool(flags & FLAG_COMPACT_STRINGS)
    encoding = flags & ~FLAG_COMPACT_STRINGS if strings else flags
    if encoding not in (0, FLAG_DEFLATED, *_DICTIONARIES):
        raise CorruptDataError(f"unknown header flags {flags:#x}")
    if version == FORMAT_VERSION_COMPACT:
        return _parse_compact_head(read_at, total, first, encoding, strings)
    if len(first) < _PREAMBLE.size:
        raise CorruptDataError("truncated frame: no room for a header")
    json_len = _PREAMBLE.unpack(first[: _PREAMBLE.size])[3]
    end = _PREAMBLE.size + json_len + _CRC.size
    if json_len > MAX_HEADER_JSON or end + FOOTER_SIZE > total:
        raise CorruptDataError(f"declared header length {json_len} does not fit the frame")
    raw = _read_head(read_at, first, end)
    if _crc(raw[: end - _CRC.size]) != _CRC.unpack(raw[end - _CRC.size : end])[0]:
        raise CorruptDataError("frame header checksum mismatch")
    body = raw[_PREAMBLE.size : end - _CRC.size]
    return FrameHead(version, FrameHeader._from_json(body, flags, version), end)


def _read_head(read_at, first: bytes, end: int) -> bytes:
    """The frame's first ``end`` bytes (already checked to lie within the frame)."""
    raw = first if end <= len(first) else read_at(0, end)
    if len(raw) < end:
        raise CorruptDataError("truncated frame header")
    return raw


def _parse_compact_head(read_at, total: int, first: bytes, encoding: int,
                        strings: bool) -> FrameHead:
    what = "compact frame header"
    json_len, pos = get_varint(first, _PREFIX.size, what)
    sizes = 2 if strings else 1
    # Method, then at least one byte per size, then the CRCs: the least the head can take.
    shortest = pos + json_len + 1 + sizes + _COMPACT_CRCS.size + _CRC.size
    if json_len > MAX_HEADER_JSON or shortest > total:
        raise CorruptDataError(f"declared header length {json_len} does not fit the frame")
    longest = min(total, shortest + sizes * (VARINT_MAX_BYTES - 1))
    raw = _read_head(read_at, first, longest)
    body = raw[pos : pos + json_len]
    pos += json_len
    method = raw[pos]
    size, pos = get_varint(raw, pos + 1, what)
    original = size
    if strings:
        original, pos = get_varint(raw, pos, what)
    end = pos + _COMPACT_CRCS.size + _CRC.size
    if end > len(raw):
        raise CorruptDataError("truncated frame header")
    data_crc, payload_crc = _COMPACT_CRCS.unpack(raw[pos : pos + _COMPACT_CRCS.size])
    if _crc(raw[: end - _CRC.size]) != _CRC.unpack(raw[end - _CRC.size : end])[0]:
        raise CorruptDataError("frame header checksum mismatch")
    header = FrameHeader._from_json(body, encoding, FORMAT_VERSION_COMPACT)
    if (header.layout is not None) != strings:
        raise CorruptDataError("malformed frame header: the layout does not match its flag")
    entry = CompactEntry(method, size, original, data_crc, payload_crc)
    return FrameHead(FORMAT_VERSION_COMPACT, header, end, entry)


@dataclass(frozen=True)
class BlockEntry:
    """One row of the block index."""

    offset: int
    compressed_size: int
    size: int
    method: int
    payload_crc: int
    data_crc: int


def check_block_size(codec: BlockCodec | type[BlockCodec], block_size: int | None) -> int:
    """Return the block size to use with ``codec`` (instance or class), validated."""
    if block_size is None:
        return codec.default_block_size
    limit = min(MAX_BLOCK_SIZE, codec.max_block_size)
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise CodecError(f"block_size must be an integer, got {block_size!r}")
    if not 1 <= block_size <= limit:
        raise CodecError(f"block_size must be between 1 and {limit}, got {block_size}")
    return block_size


def parse_footer(footer: bytes) -> tuple[int, int, int, int]:
    """Unpack and verify a frame's last :data:`FOOTER_SIZE` bytes.

    Returns
    -------
    index_offset, block_count, original_size, index_crc : int

    Raises
    ------
    CorruptDataError
        The bytes are not a valid LLMZ footer.
    """
    if len(footer) != FOOTER_SIZE:
        raise CorruptDataError("truncated frame: no room for a footer")
    index_offset, count, size, index_crc, footer_crc, magic = _FOOTER.unpack(footer)
    if magic != FOOTER_MAGIC or _crc(footer[: FOOTER_SIZE - 8]) != footer_crc:
        raise CorruptDataError("truncated or damaged frame: bad footer")
    return index_offset, count, size, index_crc


def frame_original_size(read_at, total: int) -> int:
    """The original size a frame of ``total`` bytes records, read through ``read_at(offset,
    n)`` from its head (a compact frame) or its footer, each checked by its CRC-32; the rest of
    the frame is not read.

    Raises
    ------
    CorruptDataError
        Not an LLMZ frame this build reads, or its head or footer is damaged.
    """
    head = parse_head(read_at, total)
    if head.compact is not None:
        return head.compact.original_size
    return parse_footer(read_at(total - FOOTER_SIZE, FOOTER_SIZE))[2]


class FrameWriter:
    """Write an LLMZ frame to a binary stream, one block at a time.

    Memory use is bounded by a few blocks whatever the total size, and the stream is only ever
    appended to (the index and footer go at the end), so ``fileobj`` need not be seekable. Input
    of at most one block becomes a compact frame (format version 3: no index, no footer), so
    nothing is written before more than one block has arrived or the writer is closed.

    Parameters
    ----------
    fileobj : binary file-like
        Destination; only ``write`` is used. It is not closed by :meth:`close`.
    codec : BlockCodec
        The codec that encodes each block.
    block_size : int, optional
        Original bytes per block; the codec's default when omitted.
    batch_blocks : int, optional
        How many full blocks to hand to :meth:`BlockCodec.encode_blocks` at once; by default
        the codec's :attr:`~llm_codecs.codecs.BlockCodec.workers` (the LLM codec codes that many
        blocks in parallel threads).
    layout : StringLayout, optional
        The bytes written are the text view of a chunk of strings with this layout (see
        :func:`llm_codecs.strings.text_view`); the frame is then version 2 and its footer
        records ``original_size``, the chunk's size, which the reader restores.
    original_size : int, optional
        Required with ``layout``.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        codec: BlockCodec,
        block_size: int | None = None,
        batch_blocks: int | None = None,
        *,
        layout: StringLayout | None = None,
        original_size: int | None = None,
    ):
        if (layout is None) != (original_size is None):
            raise ValueError("layout and original_size go together")
        self._out = fileobj
        self._codec = codec
        self.block_size = check_block_size(codec, block_size)
        self._batch_blocks = max(1, int(codec.workers if batch_blocks is None else batch_blocks))
        self._pending = bytearray()
        self._index: list[BlockEntry] = []
        self._position = 0
        self._size = 0
        self.closed = False
        self._original_size = original_size
        self._header = FrameHeader(
            codec.name, codec.params(), self.block_size, codec.fingerprint(), layout
        )
        # Written before the first payload, once the frame is known to need a block index; a
        # frame of at most one block is written compact at close (version 3). Serialised now
        # so that a header too large fails before any data is taken.
        self._header_bytes: bytes | None = self._header.to_bytes()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._position += len(data)

    def write(self, data) -> int:
        """Append ``data`` (any bytes-like) to the original stream; return its length."""
        if self.closed:
            raise ValueError("write to a closed FrameWriter")
        view = memoryview(data).cast("B")
        self._pending += view
        chunk = self.block_size * self._batch_blocks
        # Nothing is coded while all the input still fits one block: it may become a compact frame.
        if len(self._pending) >= chunk and self._size + len(self._pending) > self.block_size:
            whole = len(self._pending) - len(self._pending) % self.block_size
            self._encode(self._pending[:whole])
            del self._pending[:whole]
        return len(view)

    def _coded(self, blocks: list[bytes]) -> list[tuple[int, bytes]]:
        """``(method, payload)`` of each block: stored where coding does not make it smaller."""
        return [
            (METHOD_STORED, block) if method == METHOD_STORED or len(payload) >= len(block)
            else (method, payload)
            for block, (method, payload) in zip(
                blocks, self._codec.encode_blocks(blocks), strict=True
            )
        ]

    def _encode(self, data: bytearray) -> None:
        if self._header_bytes is not None:
            self._emit(self._header_bytes)
            self._header_bytes = None
        bs = self.block_size
        blocks = [bytes(data[i : i + bs]) for i in range(0, len(data), bs)]
        for block, (method, payload) in zip(blocks, self._coded(blocks), strict=True):
            entry = BlockEntry(
                self._position, len(payload), len(block), method, _crc(payload), _crc(block)
            )
            self._index.append(entry)
            self._size += len(block)
            self._emit(payload)

    def close(self) -> None:
        """Encode what is buffered, then write the block index and footer."""
        if self.closed:
            return
        if self._header_bytes is not None and len(self._pending) <= self.block_size:
            self._close_compact()
            return
        if self._pending:
            self._encode(self._pending)
            self._pending = bytearray()
        index = b"".join(
            _INDEX_ENTRY.pack(
                e.offset, e.compressed_size, e.size, e.method, e.payload_crc, e.data_crc
            )
            for e in self._index
        )
        index_offset = self._position
        self._emit(index)
        size = self._size if self._original_size is None else self._original_size
        fields = (index_offset, len(self._index), size, _crc(index))
        partial = struct.pack("<QQQI", *fields)
        self._emit(_FOOTER.pack(*fields, _crc(partial), FOOTER_MAGIC))
        self.closed = True

    def _close_compact(self) -> None:
        """Write the whole frame as a compact one: its head, then its one payload (if any)."""
        block = bytes(self._pending)
        self._pending = bytearray()
        method, payload = self._coded([block])[0] if block else (METHOD_STORED, b"")
        size = len(block) if self._original_size is None else self._original_size
        entry = CompactEntry(method, len(block), size, _crc(block), _crc(payload))
        self._emit(self._header.to_compact_bytes(entry))
        self._emit(payload)
        self._header_bytes = None
        self._size = len(block)
        self.closed = True

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


class FrameReader:
    """Random-access reader of an LLMZ frame.

    Opening a frame reads and verifies only its header, footer and block index; blocks are read
    and decoded on demand, so a range read touches only the blocks that hold it.

    Parameters
    ----------
    source : bytes-like or binary file-like
        The frame. A file object must support ``seek`` and ``read``; reads through it are
        serialised by a lock, so one reader can serve several threads.
    codec : BlockCodec, optional
        A codec to decode with, e.g. one whose model is already loaded; it must have the model
        the frame names. By default one is built from the header, and finds the model the
        frame's fingerprint names by its hash (:mod:`llm_codecs.models.finding`). Either way
        its fingerprint check runs before any block is decoded, when a block needs the codec
        itself (an llm frame whose blocks all fell back to LZ77 needs no model, and none is
        loaded).
    model : str or path, optional
        A model to decode with (a directory, a cached hub id or ``"default"``), tried first
        when the frame's codec needs one; used only if it has the hash the frame records. Not
        with ``codec``.
    """

    def __init__(self, source, codec: BlockCodec | None = None, *, model=None):
        self._lock = threading.Lock()
        if isinstance(source, bytes | bytearray | memoryview):
            self._buffer = memoryview(source).cast("B")
            self._file = None
            total = len(self._buffer)
        else:
            self._buffer = None
            self._file = source
            total = source.seek(0, io.SEEK_END)
        self.frame_size = total
        if total < MIN_FRAME_SIZE:
            raise CorruptDataError(f"truncated frame: {total} bytes is too short for LLMZ")
        head = parse_head(self._read_at, total)
        #: The frame's format version (1, 2 for strings, 3 for a compact frame).
        self.version = head.version
        self.header = head.header
        self._check_block_size(codec)
        #: How the blocks' text becomes the original bytes, for a frame of strings.
        self.layout = self.header.layout
        if head.compact is None:
            self.blocks, self.size = self._read_index(head.end, total)
        else:
            self.blocks, self.size = self._compact_block(head.compact, head.end, total)
        #: Bytes the blocks hold: :attr:`size` unless the frame has a string layout.
        self.stored_size = sum(e.size for e in self.blocks)
        self._restored: bytes | None = None
        if codec is not None and model is not None:
            raise CodecError("give FrameReader a codec or a model, not both")
        self._model = model
        self._codec: BlockCodec | None = None
        self._codec_lock = threading.Lock()
        if codec is not None:
            # A codec the caller made (a loaded model, say) is checked now, before any work.
            self._codec = self._bound(codec, models=None)
            self._unbound = None
        else:
            # Built now, cheaply (no model is loaded): parameters out of their ranges are
            # refused when the frame opens. A codec this build does not know is refused only
            # when a block needs it, so the frame can still be described.
            self._unbound = self._make_codec() if self._known_codec() else None

    @property
    def codec(self) -> BlockCodec:
        """The codec that decodes the blocks, built from the header when first needed.

        Opening a frame, reading its header, index and sizes, needs no codec: ``info`` works
        where the codec is not installed, and a model is looked for (by the hash the header
        names) only when a block the model coded is read.
        """
        if self._codec is None:
            with self._codec_lock:
                if self._codec is None:
                    models = () if self._model is None else (self._model,)
                    self._codec = self._bound(self._unbound or self._make_codec(), models)
        return self._codec

    def _bound(self, codec: BlockCodec, models) -> BlockCodec:
        # A frame whose blocks are all classic or stored needs nothing the fingerprint names
        # (an llm frame kept entirely as LZ77 decodes without loading the model).
        if any(entry.method == codec.method_id for entry in self.blocks):
            return codec.bind(self.header.fingerprint, models=models)
        return codec

    def _read_at(self, offset: int, n: int) -> bytes:
        if self._buffer is not None:
            return bytes(self._buffer[offset : offset + n])
        with self._lock:
            self._file.seek(offset)
            return self._file.read(n)

    def _check_block_size(self, codec: BlockCodec | None) -> None:
        # A block is decoded whole, so its size bounds what one decode allocates: the codec's
        # own limit applies, not just the format's 64 MiB (the llm codec's is 4 MiB).
        try:
            cls = type(codec) if codec is not None else codec_class(self.header.codec)
        except CodecError:
            return  # an unknown codec: refused when a block needs it (opening needs none)
        if self.header.block_size > cls.max_block_size:
            raise CorruptDataError(
                f"frame header declares blocks of {self.header.block_size} bytes; the "
                f"{self.header.codec!r} codec makes at most {cls.max_block_size}"
            )

    def _known_codec(self) -> bool:
        try:
            codec_class(self.header.codec)
        except CodecError:
            return False
        return True

    def _make_codec(self) -> BlockCodec:
        try:
            return make_codec(self.header.codec, **self.header.params)
        except ModelMismatchError:
            raise
        except CodecError as exc:
            raise CorruptDataError(f"frame header names an unusable codec: {exc}") from None

    def _read_index(self, header_end: int, total: int) -> tuple[list[BlockEntry], int]:
        raw = self._read_at(total - FOOTER_SIZE, FOOTER_SIZE)
        index_offset, count, size, index_crc = parse_footer(raw)
        index_end = index_offset + count * INDEX_ENTRY_SIZE
        if index_offset < header_end or index_end != total - FOOTER_SIZE:
            raise CorruptDataError("frame footer does not match the frame's length")
        index = self._read_at(index_offset, count * INDEX_ENTRY_SIZE)
        if _crc(index) != index_crc:
            raise CorruptDataError("block index checksum mismatch")
        block_size = self.header.block_size
        entries, position, covered = [], header_end, 0
        for i, fields in enumerate(_INDEX_ENTRY.iter_unpack(index)):
            entry = BlockEntry(*fields)
            last = i == count - 1
            if (
                entry.offset != position
                or not (1 <= entry.size <= block_size if last else entry.size == block_size)
                or (entry.method == METHOD_STORED and entry.compressed_size != entry.size)
            ):
                raise CorruptDataError(f"block index entry {i} is inconsistent")
            position += entry.compressed_size
            covered += entry.size
            entries.append(entry)
        # With a string layout the footer records the restored chunk's size, checked against
        # the text when it is restored (StringLayout.restore).
        if position != index_offset or (covered != size and self.layout is None):
            raise CorruptDataError("block index does not cover the frame")
        return entries, size

    def _compact_block(self, entry: CompactEntry, end: int, total: int
                       ) -> tuple[list[BlockEntry], int]:
        """The block list of a compact frame: its payload is all that follows the head."""
        block = BlockEntry(end, total - end, entry.size, entry.method, entry.payload_crc,
                           entry.data_crc)
        if entry.size == 0:
            if (block.compressed_size or entry.method != METHOD_STORED or entry.data_crc
                    or entry.payload_crc):
                raise CorruptDataError("compact frame: an empty frame with a payload")
            return [], entry.original_size if self.layout is not None else 0
        if (
            entry.size > self.header.block_size
            or (entry.method == METHOD_STORED and block.compressed_size != entry.size)
        ):
            raise CorruptDataError("compact frame: the block does not match the frame")
        return [block], entry.original_size

    def read_block(self, i: int) -> bytes:
        """Return the original bytes of block ``i``, verified against its checksums.

        Raises
        ------
        CorruptDataError
            The block does not decode to its checksum; :class:`NumericsMismatchError` when the
            codec says an intact frame can fail this way here (a native frame from another
            machine).
        """
        try:
            return self._read_block(i)
        except CorruptDataError as exc:
            hint = self.codec.decode_failure_hint()
            if hint is None:
                raise
            raise NumericsMismatchError(f"{exc}: {hint}") from exc

    def _read_block(self, i: int) -> bytes:
        entry = self.blocks[i]
        payload = self._read_at(entry.offset, entry.compressed_size)
        if len(payload) != entry.compressed_size or _crc(payload) != entry.payload_crc:
            raise CorruptDataError(f"block {i}: payload checksum mismatch")
        if entry.method == METHOD_STORED:
            data = payload
        elif entry.method in self.codec.allowed_methods:
            data = self.codec.decode_method(entry.method, payload, entry.size)
        else:
            raise CorruptDataError(f"block {i}: method {entry.method} not valid for this codec")
        if len(data) != entry.size or _crc(data) != entry.data_crc:
            raise CorruptDataError(f"block {i}: decoded data checksum mismatch")
        return data

    def _read_blocks(self, first: int, last: int) -> Iterator[bytes]:
        """Blocks ``first .. last`` in order, decoded ``codec.workers`` at a time in threads."""
        workers = min(self.codec.workers, last - first + 1)
        if workers <= 1:
            for i in range(first, last + 1):
                yield self.read_block(i)
            return
        from concurrent.futures import ThreadPoolExecutor

        with (self.codec.side_by_side(workers),
              ThreadPoolExecutor(workers, thread_name_prefix="llmz-decode") as pool):
            # Bounded look-ahead: memory stays at a few blocks per worker.
            for start in range(first, last + 1, 2 * workers):
                stop = min(last + 1, start + 2 * workers)
                yield from pool.map(self.read_block, range(start, stop))

    def iter_blocks(self) -> Iterator[bytes]:
        """Yield the original bytes in order: block by block, or whole for a frame of strings."""
        for i in range(self.unit_count):
            yield self.read_unit(i)

    @property
    def unit_size(self) -> int:
        """Original bytes per unit of random access: the block size, or the whole size for a
        frame of strings (its text is restored all at once)."""
        return self.header.block_size if self.layout is None else max(1, self.size)

    @property
    def unit_count(self) -> int:
        """Units of :attr:`unit_size` original bytes (the last may be shorter)."""
        return len(self.blocks) if self.layout is None else int(self.size > 0)

    def read_unit(self, i: int) -> bytes:
        """The original bytes of unit ``i``: block ``i``, or the restored chunk of strings."""
        if self.layout is None:
            return self.read_block(i)
        if i != 0 or not self.size:
            raise IndexError(f"unit {i} out of range")
        return self._restore()

    def _restore(self) -> bytes:
        if self._restored is None:
            last = len(self.blocks) - 1
            text = self._gather(0, last, 0, self.stored_size) if self.blocks else b""
            restored = self.layout.restore(text, self.size)
            if len(restored) != self.size:
                raise CorruptDataError("string layout: the restored chunk has the wrong size")
            self._restored = restored
        return self._restored

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        """Return ``size`` original bytes from ``offset`` (to the end when ``size`` is None).

        Only the blocks overlapping the range are decoded (all of them for a frame of strings,
        once). A range past the end is clipped, as slicing a bytes object would be. Any integer
        type is accepted (``numpy.int64`` included, ``bool`` not). Each decoded block is copied
        once, into the result: the peak memory is the result and a few blocks.
        """
        offset = _index_argument("offset", offset)
        if offset < 0:
            raise CodecError(f"offset must be a non-negative integer, got {offset!r}")
        if size is not None:
            size = _index_argument("size", size)
            if size < 0:
                raise CodecError(f"size must be a non-negative integer or None, got {size!r}")
        stop = self.size if size is None else min(self.size, offset + size)
        if offset >= stop:
            return b""
        if self.layout is not None:
            return self._restore()[offset:stop]
        bs = self.header.block_size
        first, last = offset // bs, (stop - 1) // bs
        if first == last:
            start = offset - first * bs
            return self.read_block(first)[start : start + (stop - offset)]
        return self._gather(first, last, offset - first * bs, stop - offset)

    def _gather(self, first: int, last: int, skip: int, length: int) -> bytes:
        """``length`` bytes of blocks ``first .. last`` after the first ``skip``, each block
        copied once, as it is decoded, into a buffer whose bytes become the result: CPython's
        ``BytesIO.getvalue`` hands over its buffer when nothing else holds it, and growing it
        moves pages rather than copying them (``b"".join`` of the blocks, then a slice,
        peaked at 2-3 times the result)."""
        out = io.BytesIO()
        for block in self._read_blocks(first, last):
            piece = memoryview(block)[skip : skip + length - out.tell()]
            out.write(piece)
            piece.release()
            skip = 0
        return out.getvalue()


def _index_argument(name: str, value) -> int:
    """``value`` as a Python int: any integer type (``operator.index``), but not ``bool``."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise CodecError(f"{name} must be a non-negative integer, got {value!r}")
