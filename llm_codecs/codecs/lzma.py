"""Raw LZMA2 blocks through Python's :mod:`lzma` (liblzma): the strong classic fallback.

Our own LZ77 is fast and simple; on binary data, logs and markup liblzma's optimal parsing and
context-modelled literals code much smaller (``kennedy.xls``: 0.59 bits per byte against 1.17;
``Apache_2k.log``: 0.36 against 0.47), for about 15 ms per 64 KiB block. The ``llm`` codec
tries it beside LZ77 for every block the model does not win. The format is LZMA2 (stable since
2009, decoded by the standard library everywhere), written raw: no container, since the frame
already carries the size and the checksums. Specified in ``docs/format.md`` ("LZMA payload").
"""

from __future__ import annotations

import lzma
from typing import Any, ClassVar

from ..errors import CorruptDataError
from .base import BlockCodec, check_int_param

#: Smallest dictionary a payload is made or read with (liblzma's own minimum).
MIN_DICT_SIZE = 4096
DEFAULT_LEVEL = 9


def dict_size_for(size: int) -> int:
    """The dictionary of a block of ``size`` bytes: the power of two that covers it, at least
    :data:`MIN_DICT_SIZE`. Both sides derive it from the size alone, so a payload carries none,
    and a decoder never reserves more than about twice its block."""
    return max(MIN_DICT_SIZE, 1 << max(0, size - 1).bit_length())


def _filters(size: int, preset: int | None = None) -> list[dict[str, Any]]:
    lzma2: dict[str, Any] = {"id": lzma.FILTER_LZMA2, "dict_size": dict_size_for(size)}
    if preset is not None:
        lzma2["preset"] = preset
    return [lzma2]


class LZMACodec(BlockCodec):
    """LZMA2 (liblzma, raw) per block (method byte 4).

    Parameters
    ----------
    level : int, optional
        liblzma's preset, 0 (fastest) to 9 (smallest), always with its "extreme" variant.
        Default 9. The level is not needed to decode.

    Notes
    -----
    The encoder is liblzma's: another liblzma version may choose other (equally valid) bytes, so
    unlike the other codecs a payload is a pure function of the block only for one liblzma.
    Every LZMA2 decoder reads every payload.
    """

    name: ClassVar[str] = "lzma"
    method_id: ClassVar[int] = 4
    default_block_size: ClassVar[int] = 1 << 20

    def __init__(self, level: int = DEFAULT_LEVEL):
        self.level = check_int_param("level", level, 0, 9)

    def params(self) -> dict[str, Any]:
        """Return ``{"level": level}``."""
        return {"level": self.level}

    def encode_block(self, block: bytes) -> bytes:
        """LZMA2-code one block (empty for an empty block).

        Parameters
        ----------
        block : bytes
            The block to code; any length up to :attr:`max_block_size`.

        Returns
        -------
        bytes
            The raw LZMA2 stream, with its end marker.
        """
        if not block:
            return b""
        preset = self.level | lzma.PRESET_EXTREME
        return lzma.compress(block, format=lzma.FORMAT_RAW, filters=_filters(len(block), preset))

    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode a payload made by :meth:`encode_block` back into ``size`` bytes.

        Raises
        ------
        CorruptDataError
            If ``payload`` is not one complete LZMA2 stream of exactly ``size`` bytes with
            nothing after it. liblzma refuses malformed data; output is capped at ``size + 1``
            bytes, so no payload makes the decoder allocate more.
        """
        if size == 0:
            if payload:
                raise CorruptDataError("LZMA payload of an empty block must be empty")
            return b""
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_filters(size))
        try:
            data = decoder.decompress(bytes(payload), max_length=size + 1)
        except lzma.LZMAError as exc:
            raise CorruptDataError(f"malformed LZMA payload: {exc}") from None
        if len(data) != size or not decoder.eof or decoder.unused_data:
            raise CorruptDataError(
                f"LZMA payload does not hold exactly {size} bytes in one complete stream"
            )
        return data
