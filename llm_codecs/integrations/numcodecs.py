"""numcodecs codecs (and so Zarr format 2 compressors) over the LLMZ core API.

Registered through the ``numcodecs.codecs`` entry-point group, so
``numcodecs.get_codec({"id": "llm_codecs.lz77"})`` works without importing llm_codecs first.
"""

from __future__ import annotations

from typing import ClassVar

from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from ..api import compress, decompress
from ..codecs import BlockCodec, codec_class, make_codec
from ..frame import check_block_size


class _FrameCodec(Codec):
    """Shared body: a numcodecs codec whose payload is one LLMZ frame.

    Public attributes are the configuration; the block codec built from them is cached in a
    private attribute that pickling leaves out (see ``__reduce__``).
    """

    codec_id: ClassVar[str]
    _codec_name: ClassVar[str]

    def __init__(self, block_size: int | None = None):
        self.block_size = check_block_size(codec_class(self._codec_name), block_size)
        self._block_codec: BlockCodec | None = None

    def _codec_params(self) -> dict:
        return {}

    def _get_block_codec(self) -> BlockCodec:
        if self._block_codec is None:
            self._block_codec = make_codec(self._codec_name, **self._codec_params())
        return self._block_codec

    def encode(self, buf):
        """Compress ``buf`` (any buffer) into an LLMZ frame."""
        data = ensure_contiguous_ndarray(buf)
        return compress(data, self._get_block_codec(), block_size=self.block_size)

    def decode(self, buf, out=None):
        """Decompress an LLMZ frame, into ``out`` when given."""
        frame = ensure_contiguous_ndarray(buf)
        if out is not None:
            out = ensure_contiguous_ndarray(out)
        return ndarray_copy(decompress(frame), out)

    def __reduce__(self):
        config = self.get_config()
        config.pop("id")
        return (type(self).from_config, (config,))


class Huffman(_FrameCodec):
    """Canonical Huffman coding of bytes, in independently decodable blocks.

    Parameters
    ----------
    block_size : int, optional
        Original bytes per block (default 256 KiB).
    """

    codec_id = "llm_codecs.huffman"
    _codec_name = "huffman"


class LZ77(_FrameCodec):
    """LZ77 with Huffman-coded literals, lengths and distances (deflate-like, larger window).

    Parameters
    ----------
    level : int, optional
        1 (fastest) to 9 (smallest); see ``docs/format.md`` for what each level does.
    block_size : int, optional
        Original bytes per block (default 1 MiB).
    """

    codec_id = "llm_codecs.lz77"
    _codec_name = "lz77"

    def __init__(self, level: int | None = None, block_size: int | None = None):
        super().__init__(block_size)
        self.level = make_codec("lz77").params()["level"] if level is None else level
        self._get_block_codec()  # validate level now, not at first encode

    def _codec_params(self) -> dict:
        return {"level": self.level}


__all__ = ["LZ77", "Huffman"]
