"""Order-0 canonical Huffman coding of bytes, one code table per block.

The payload is exactly one :mod:`llm_codecs.coding.huffman` stream over the block's bytes; the
block size comes from the frame, so the payload does not repeat it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..coding.huffman import decode_symbols, encode_symbols
from .base import BlockCodec


class HuffmanCodec(BlockCodec):
    """Byte-wise canonical Huffman codec (method byte 1).

    Each block gets its own length-limited code, sent as a deflate-style run-length coded
    table of code lengths (typically 50-100 bytes), so blocks decode independently. It captures
    only the order-0 statistics of a block: about 4.5 bits per byte on English text, at
    several hundred MB/s each way. It takes no parameters.

    Notes
    -----
    The default block size, 256 KiB, is where the per-block table stops mattering (under 0.03%
    of the payload of a text block) while the code still adapts to changes along a file; on the
    bench corpus 64 KiB blocks come out 0.8% smaller in total and 1 MiB blocks 1% larger, because
    mixed files (archives, databases) gain more from local tables than they lose to table cost.
    """

    name: ClassVar[str] = "huffman"
    method_id: ClassVar[int] = 1
    default_block_size: ClassVar[int] = 256 << 10

    def encode_block(self, block: bytes) -> bytes:
        """Huffman-code one block of bytes.

        Parameters
        ----------
        block : bytes
            The block to code; any length up to :attr:`max_block_size`.

        Returns
        -------
        bytes
            One Huffman stream (empty for an empty block).
        """
        return encode_symbols(np.frombuffer(block, dtype=np.uint8), 256)

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
            If ``payload`` is not a valid stream of ``size`` bytes.
        """
        return decode_symbols(payload, size, 256).tobytes()
