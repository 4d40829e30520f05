"""LZ77 with Huffman-coded token streams, in the spirit of deflate, one block at a time.

A hash-chain match finder with lazy matching (:mod:`llm_codecs.coding.lz77`) turns the block
into literal/length, distance and extra-bit streams; the first two are coded with the canonical
Huffman coder of :mod:`llm_codecs.coding.huffman`, each with its own table. The payload layout is
specified in ``docs/format.md`` ("LZ77 payload").
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..coding import lz77 as _lz
from ..coding.huffman import decode_symbols, encode_symbols
from ..coding.varint import get_varint, put_varint
from ..errors import CorruptDataError
from .base import BlockCodec, check_int_param

#: Search effort per level, the keyword arguments of :func:`llm_codecs.coding.lz77.parse`
#: (``window`` as log2; 0 = the whole block).
_FIELDS = ("window", "chain", "nice", "good", "lazy_depth", "max_lazy", "lazy_margin",
           "max_insert", "hash_bits", "min_score")
_LEVELS: dict[int, dict[str, int]] = {
    level: dict(zip(_FIELDS, row, strict=True))
    for level, row in {
        #   window chain nice good depth max_lazy margin max_insert hash_bits min_score
        1: (16, 4, 16, 8, 0, 0, 0, 16, 15, 14),
        2: (16, 8, 32, 8, 0, 0, 0, 32, 15, 14),
        3: (17, 8, 64, 8, 1, 16, 4, 64, 16, 14),
        4: (17, 16, 96, 8, 1, 32, 4, 258, 16, 14),
        5: (18, 16, 96, 8, 1, 32, 4, 258, 16, 14),
        6: (20, 32, 128, 8, 1, 64, 4, 1 << 16, 17, 14),
        7: (0, 64, 258, 32, 1, 128, 4, 1 << 16, 17, 14),
        8: (0, 128, 258, 32, 2, 258, 8, 1 << 16, 17, 14),
        9: (0, 256, 512, 64, 2, 512, 8, 1 << 16, 17, 14),
    }.items()
}
DEFAULT_LEVEL = 5
_HEADER = "LZ77 payload header"


class LZ77Codec(BlockCodec):
    """Hash-chain LZ77 with lazy matching and Huffman-coded streams (method byte 2).

    Parameters
    ----------
    level : int, optional
        Search effort, 1 (fastest) to 9 (smallest output). Higher levels search longer hash
        chains, evaluate matches lazily over more positions, and reach farther back: 64 KiB at
        level 1, 1 MiB at levels 5-6, the whole block from level 7 on. Default 5.

    Notes
    -----
    Besides deflate's literals, lengths and distances, the format has two repeat-distance
    symbols (the last two distances used), which structured data (logs, XML, tables) uses a lot,
    and matches up to 65,538 bytes long. Each block gets its own Huffman tables, so blocks decode
    independently. The default block size, 1 MiB, is also the window of the default level.
    Decoding speed does not depend on the level.
    """

    name: ClassVar[str] = "lz77"
    method_id: ClassVar[int] = 2
    default_block_size: ClassVar[int] = 1 << 20

    def __init__(self, level: int = DEFAULT_LEVEL):
        self.level = check_int_param("level", level, 1, 9)

    def params(self) -> dict[str, Any]:
        """Return ``{"level": level}``."""
        return {"level": self.level}

    def encode_block(self, block: bytes) -> bytes:
        """LZ77-parse one block and Huffman-code its token streams.

        Parameters
        ----------
        block : bytes
            The block to code; any length up to :attr:`max_block_size`.

        Returns
        -------
        bytes
            The payload (empty for an empty block); a pure function of ``block`` and the level.
        """
        data = np.frombuffer(block, dtype=np.uint8)
        n = data.shape[0]
        if n == 0:
            return b""
        params = dict(_LEVELS[self.level])
        params["window"] = n if params["window"] == 0 else min(n, 1 << params["window"])
        litlen, dist, extra = _lz.parse(data, **params)
        ll_stream = encode_symbols(litlen, _lz.LITLEN_ALPHABET)
        d_stream = encode_symbols(dist, _lz.DIST_ALPHABET)
        out = bytearray()
        put_varint(out, litlen.shape[0])
        put_varint(out, len(ll_stream))
        put_varint(out, len(d_stream))
        out += ll_stream
        out += d_stream
        out += extra
        return bytes(out)

    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode a payload made by :meth:`encode_block` back into ``size`` bytes.

        Parameters
        ----------
        payload : bytes
            The coded block.
        size : int
            Length of the original block.

        Returns
        -------
        bytes
            The original block.

        Raises
        ------
        CorruptDataError
            If ``payload`` is not a valid LZ77 payload of ``size`` bytes: a bad header or
            Huffman stream, a match reaching before the block or past its end, a wrong number of
            extra bits, or too few or too many tokens.
        """
        buf = bytes(payload)
        if size == 0:
            if buf:
                raise CorruptDataError("LZ77 payload of an empty block must be empty")
            return b""
        nsym, pos = get_varint(buf, 0, _HEADER)
        ll_len, pos = get_varint(buf, pos, _HEADER)
        d_len, pos = get_varint(buf, pos, _HEADER)
        if not 1 <= nsym <= size:
            raise CorruptDataError(f"LZ77 token count {nsym} is impossible for {size} bytes")
        if ll_len + d_len > len(buf) - pos:
            raise CorruptDataError("LZ77 stream lengths exceed the payload")
        ll_end = pos + ll_len
        d_end = ll_end + d_len
        view = memoryview(buf)
        litlen = decode_symbols(view[pos:ll_end], nsym, _lz.LITLEN_ALPHABET)
        ndist = int(np.count_nonzero(litlen >= 256))
        dist = decode_symbols(view[ll_end:d_end], ndist, _lz.DIST_ALPHABET)
        out, err = _lz.rebuild(litlen, dist, view[d_end:], size)
        if err:
            raise CorruptDataError(f"corrupt LZ77 payload: {_lz.ERRORS.get(err, 'unknown error')}")
        return out.tobytes()
