"""Context mixing per block (methods 5 and 6): the strongest classic fallback, written here.

A bitwise context-mixing model (hashed order-0..6 contexts and a match model, mixed in the
logistic domain) drives a binary arithmetic coder (:mod:`llm_codecs.coding._cm_kernel`), in
the spirit of the PAQ family: on logs, markup and text in scripts the language model knows
little of, it codes smaller than LZ77 and LZMA, at 2-3 MB/s. Version 2 (method 6, written now)
adds a column context for line-structured text; version 1 (method 5) stays decodable. The
``llm`` codec tries it beside them for every block. Specified in ``docs/format.md`` ("CM payload").
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..coding import _cm_kernel as _cm
from ..errors import CorruptDataError
from .base import BlockCodec

_SQUASH = _cm.squash_table()
_STRETCH = _cm.stretch_table(_SQUASH)
_RATES = _cm.rate_table()
#: Bytes a decoder reads past a complete stream (its 4-byte window, less the flushed byte).
_OVERREAD = 3
_NO_OUTPUT = np.empty(1, dtype=np.uint8)


class ContextMixingCodec(BlockCodec):
    """Bitwise context mixing with a binary arithmetic coder (method byte 6). No parameters.

    Notes
    -----
    Every block starts with empty models, so blocks decode independently; the models need a
    few KiB to learn, so very small blocks gain little. Memory: about 6 MiB of tables per
    block coded, whatever its size.
    """

    name: ClassVar[str] = "cm"
    method_id: ClassVar[int] = 6
    #: The model's contexts (:mod:`llm_codecs.coding._cm_kernel`): part of the method.
    orders: ClassVar[np.ndarray] = _cm.ORDERS_V2
    default_block_size: ClassVar[int] = 1 << 20
    #: Decoding works bit by bit (about 2 MB/s): a frame from a stranger may declare blocks
    #: of at most this much, so no block costs more than a few seconds.
    max_block_size: ClassVar[int] = 4 << 20

    def params(self) -> dict[str, Any]:
        """No parameters: ``{}``."""
        return {}

    @property
    def allowed_methods(self) -> frozenset[int]:
        """This version's blocks, and the first version's (method 5), which it still reads."""
        return frozenset({self.method_id, ContextMixingV1Codec.method_id})

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
        size = _cm.run(data, n, False, out, out, _SQUASH, _STRETCH, _RATES, self.orders)
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
        read = _cm.run(data, size, True, stream, _NO_OUTPUT, _SQUASH, _STRETCH, _RATES, self.orders)
        if read != len(stream) + _OVERREAD:
            raise CorruptDataError(
                f"CM payload of {len(stream)} bytes does not end where its {size} bytes do"
            )
        return data.tobytes()


class ContextMixingV1Codec(ContextMixingCodec):
    """The first version of :class:`ContextMixingCodec` (method byte 5: no column context),
    kept so that every frame written with it decodes; it can still write it."""

    name: ClassVar[str] = "cm-v1"
    method_id: ClassVar[int] = 5
    orders: ClassVar[np.ndarray] = _cm.ORDERS_V1

    @property
    def allowed_methods(self) -> frozenset[int]:
        """Its own blocks only."""
        return frozenset({self.method_id})
