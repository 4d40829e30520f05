"""Context mixing per block (methods 5 to 9): the strongest classic fallback, written here.

A bitwise context-mixing model (hashed contexts and a match model, mixed in the logistic
domain) drives a binary arithmetic coder, in the spirit of the PAQ family: on logs, markup,
tables and text in scripts the language model knows little of, it codes smaller than LZ77 and
LZMA. Version 3 (method 7, :mod:`llm_codecs.coding._cm3_kernel`) adds record, field, sparse
and byte-class contexts, checked table lines and four mixers; version 4 (method 8) adds a model
of baseline JPEG scans (:mod:`llm_codecs.coding._jpeg_model`); version 5 (method 9, written
now) a model of deflate streams (:mod:`llm_codecs.coding._deflate_model`: zlib streams as in
PDFs and PNGs, gzip members, zip entries); versions 1 and 2 (methods 5 and 6,
:mod:`llm_codecs.coding._cm_kernel`), 3 and 4 stay decodable and writable. The ``llm`` codec
tries it beside LZ77 and LZMA for every block. Specified in ``docs/format.md`` ("CM payload").
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import compile_helper
from ..coding import _cm3_kernel as _cm3
from ..coding import _cm_kernel as _cm
from ..errors import CorruptDataError
from .base import BlockCodec

_SQUASH = _cm.squash_table()
_STRETCH = _cm.stretch_table(_SQUASH)
_RATES = _cm.rate_table()
_RATES_V3 = _cm3.rate_table()
#: Bytes a decoder reads past a complete stream (its 4-byte window, less the flushed byte).
_OVERREAD = 3
_NO_OUTPUT = np.empty(1, dtype=np.uint8)


class ContextMixingV2Codec(BlockCodec):
    """Version 2 of :class:`ContextMixingCodec` (method byte 6: orders 1-6, word and column
    contexts, two mixers), kept so that every frame written with it decodes; it can still write
    it. No parameters.

    Notes
    -----
    Every block starts with empty models, so blocks decode independently; the models need a
    few KiB to learn, so very small blocks gain little. Memory: about 6 MiB of tables per
    block coded, whatever its size.
    """

    name: ClassVar[str] = "cm-v2"
    method_id: ClassVar[int] = 6
    #: The model's contexts (:mod:`llm_codecs.coding._cm_kernel`): part of the method.
    orders: ClassVar[np.ndarray] = _cm.ORDERS_V2
    default_block_size: ClassVar[int] = 1 << 20
    #: Decoding works bit by bit (about 0.5-2 MB/s): a frame from a stranger may declare
    #: blocks of at most this much, so no block costs more than seconds.
    max_block_size: ClassVar[int] = 4 << 20

    def params(self) -> dict[str, Any]:
        """No parameters: ``{}``."""
        return {}

    @property
    def allowed_methods(self) -> frozenset[int]:
        """Its own blocks only."""
        return frozenset({self.method_id})

    def _run(self, data, n, decode, payload, out) -> int:
        return _cm.run(data, n, decode, payload, out, _SQUASH, _STRETCH, _RATES, self.orders)

    def encode_block(self, block: bytes) -> bytes:
        """Code one block (empty for an empty block).

        A block the models cannot make smaller gets ``len(block) + 1`` zero bytes: longer than
        the block, so the frame stores it raw (the coder stops as soon as it knows).
        """
        n = len(block)
        if n == 0:
            return b""
        # Writable arrays on both sides: the kernel is compiled once for both directions.
        data = np.frombuffer(block, dtype=np.uint8).copy()
        # Room for the block itself: a longer payload would be stored raw by the frame anyway,
        # so the coder stops there (and this returns one byte more than the block).
        out = np.empty(n, dtype=np.uint8)
        size = self._run(data, n, False, out, out)
        if size < 0:
            return bytes(n + 1)
        return out[:size].tobytes()

    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode a payload made by :meth:`encode_block` back into ``size`` bytes.

        Raises
        ------
        CorruptDataError
            If the stream does not end exactly where a complete stream of ``size`` bytes ends
            (damage elsewhere decodes to other bytes, which the frame's data CRC refuses).
        """
        if size == 0:
            if payload:
                raise CorruptDataError("CM payload of an empty block must be empty")
            return b""
        stream = np.frombuffer(bytes(payload), dtype=np.uint8).copy()
        data = np.zeros(size, dtype=np.uint8)
        read = self._run(data, size, True, stream, _NO_OUTPUT)
        if read != len(stream) + _OVERREAD:
            raise CorruptDataError(
                f"CM payload of {len(stream)} bytes does not end where its {size} bytes do"
            )
        return data.tobytes()


class ContextMixingV3Codec(ContextMixingV2Codec):
    """Version 3 of :class:`ContextMixingCodec` (method byte 7: version 4 without the JPEG
    model), kept so that every frame written with it decodes; it can still write it. No
    parameters.

    Notes
    -----
    Every block starts with empty models, so blocks decode independently; the models need a
    few KiB to learn, so very small blocks gain little. About 500-650 KB/s each way on one core.
    Memory: the context tables take 4 bytes x 18 x 2**k, with 2**k about four times the block
    size, at least 2**10 and at most 2**20 (about 75 MiB for blocks of 256 KiB and more, 19 MiB
    for 64 KiB).
    """

    name: ClassVar[str] = "cm-v3"
    method_id: ClassVar[int] = 7
    #: Whether the JPEG model (:mod:`llm_codecs.coding._jpeg_model`) speaks: version 4 on.
    jpeg: ClassVar[bool] = False
    #: Whether the deflate model (:mod:`llm_codecs.coding._deflate_model`) speaks: version 5.
    deflate: ClassVar[bool] = False

    @property
    def allowed_methods(self) -> frozenset[int]:
        """Its own blocks only."""
        return frozenset({self.method_id})

    def _run(self, data, n, decode, payload, out) -> int:
        compile_helper.wait_for("cm")  # on a fresh install, another process may compile it
        return _cm3.run(data, n, decode, payload, out, _SQUASH, _STRETCH, _RATES_V3, self.jpeg,
                        self.deflate)


class ContextMixingV4Codec(ContextMixingV3Codec):
    """Version 4 of :class:`ContextMixingCodec` (method byte 8: version 5 without the deflate
    model), kept so that every frame written with it decodes; it can still write it. No
    parameters."""

    name: ClassVar[str] = "cm-v4"
    method_id: ClassVar[int] = 8
    jpeg: ClassVar[bool] = True


class ContextMixingCodec(ContextMixingV3Codec):
    """Bitwise context mixing with a binary arithmetic coder (method byte 9). No parameters.

    Notes
    -----
    Every block starts with empty models, so blocks decode independently; the models need a
    few KiB to learn, so very small blocks gain little. A baseline JPEG is modelled from its
    own Huffman tables when the block holds its headers (a block size of at least the file's
    size keeps whole photos in one block); so is a zlib stream (PDF streams, for instance),
    from its own block headers, when the block holds the stream's start. About 500 KB/s each
    way on one core. Memory: the context tables take 4 bytes x 18 x 2**k, with 2**k about four
    times the block size, at least 2**10 and at most 2**20 (about 75 MiB for blocks of 256 KiB
    and more, 19 MiB for 64 KiB), the JPEG model 2 MiB and the deflate model 3 MiB.
    """

    name: ClassVar[str] = "cm"
    method_id: ClassVar[int] = 9
    jpeg: ClassVar[bool] = True
    deflate: ClassVar[bool] = True

    @property
    def allowed_methods(self) -> frozenset[int]:
        """This version's blocks and those of versions 4, 3, 2 and 1 (methods 8 to 5), which
        it still reads."""
        return frozenset({self.method_id, ContextMixingV4Codec.method_id,
                          ContextMixingV3Codec.method_id, ContextMixingV2Codec.method_id,
                          ContextMixingV1Codec.method_id})


class ContextMixingV1Codec(ContextMixingV2Codec):
    """The first version of :class:`ContextMixingCodec` (method byte 5: no column context),
    kept so that every frame written with it decodes; it can still write it."""

    name: ClassVar[str] = "cm-v1"
    method_id: ClassVar[int] = 5
    orders: ClassVar[np.ndarray] = _cm.ORDERS_V1

    @property
    def allowed_methods(self) -> frozenset[int]:
        """Its own blocks only."""
        return frozenset({self.method_id})
