"""numcodecs codecs (and so Zarr format 2 compressors) over the LLMZ core API.

Registered through the ``numcodecs.codecs`` entry-point group, so
``numcodecs.get_codec({"id": "llm_codecs.lz77"})`` works without importing llm_codecs first.
"""

from __future__ import annotations

from typing import ClassVar

from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

from ..api import compress, open_frame
from ..codecs import BlockCodec, LazyCodec, codec_class, make_codec
from ..errors import CodecError, CorruptDataError
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
        self._block_codec: LazyCodec | None = None

    def _codec_params(self) -> dict:
        return {}

    def _decode_model(self) -> str | None:
        """A model offered for decoding (used only if it has the hash a frame names)."""
        return None

    def _get_block_codec(self) -> BlockCodec:
        if self._block_codec is None:
            self._block_codec = LazyCodec(self._codec_name, self._codec_params())
        return self._block_codec.get()

    def encode(self, buf, strings="auto"):
        """Compress ``buf`` (any buffer) into an LLMZ frame.

        ``strings`` says whether ``buf`` is a chunk of strings (see
        :func:`llm_codecs.compress`); by default numpy ``S``/``U`` arrays, which Zarr format 2
        hands its compressor, and the output of the ``VLenUTF8``/``VLenBytes`` filters are
        recognised, so the model sees their text.
        """
        data = ensure_contiguous_ndarray(buf)
        return compress(data, self._get_block_codec(), block_size=self.block_size,
                        strings=strings)

    def decode(self, buf, out=None):
        """Decompress an LLMZ frame, into ``out`` when given.

        Raises
        ------
        CorruptDataError
            The frame is damaged, or ``out`` does not have the size the frame declares (checked
            before anything is decoded).
        """
        reader = open_frame(ensure_contiguous_ndarray(buf), model=self._decode_model())
        if out is not None:
            out = ensure_contiguous_ndarray(out)
            if out.nbytes != reader.size:
                raise CorruptDataError(
                    f"codec {self.codec_id!r}: the frame holds {reader.size} bytes but the "
                    f"output buffer has {out.nbytes}"
                )
        return ndarray_copy(reader.read(), out)

    @classmethod
    def from_config(cls, config: dict):
        """Build from a configuration; unknown or bad parameters raise :class:`CodecError`."""
        config = {k: v for k, v in config.items() if k != "id"}
        try:
            return cls(**config)
        except TypeError as exc:
            raise CodecError(f"bad configuration for codec {cls.codec_id!r}: {exc}") from None

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


class LZMA(_FrameCodec):
    """LZMA2 through Python's own liblzma, in independently decodable blocks.

    Parameters
    ----------
    level : int, optional
        liblzma's preset, 0 (fastest) to 9 (smallest, the default), with its "extreme" variant.
    block_size : int, optional
        Original bytes per block (default 1 MiB).
    """

    codec_id = "llm_codecs.lzma"
    _codec_name = "lzma"

    def __init__(self, level: int | None = None, block_size: int | None = None):
        super().__init__(block_size)
        self.level = make_codec("lzma").params()["level"] if level is None else level
        self._get_block_codec()  # validate level now, not at first encode

    def _codec_params(self) -> dict:
        return {"level": self.level}


class CM(_FrameCodec):
    """Bitwise context mixing with an arithmetic coder (our own; about 500 KB/s): smaller than
    brotli -11 and xz -9e on logs, markup, tables, binaries, baseline JPEGs and text in any
    script.

    Parameters
    ----------
    block_size : int, optional
        Original bytes per block (default 1 MiB, at most 4 MiB).
    """

    codec_id = "llm_codecs.cm"
    _codec_name = "cm"


class LLM(_FrameCodec):
    """Model-based codec: a language model predicts each token, rANS writes the bits.

    The parameters are the ``"llm"`` block codec's
    (:class:`~llm_codecs.codecs.llm.LanguageModelCodec` documents each); one left at None takes
    its default and is left out of the configuration. They are validated when the codec is
    made (a bad one raises :class:`CodecError` there); nothing is loaded until the first use.

    Parameters
    ----------
    model : str, optional
        ``"default"`` (the embedded model), a hub id or a local directory. Also offered when
        decoding: used if it has the hash a frame names.
    revision, lanes, context, step, numerics, scale_bits, cache, threads, device, dtype, \
fallback, probe, local_files_only : optional
        As :class:`~llm_codecs.codecs.llm.LanguageModelCodec`.
    block_size : int, optional
        Original bytes per block (the codec's default when omitted).
    """

    codec_id = "llm_codecs.llm"
    _codec_name = "llm"

    def __init__(
        self,
        model: str | None = None,
        revision: str | None = None,
        lanes: int | None = None,
        context: int | None = None,
        step: str | None = None,
        numerics: str | None = None,
        scale_bits: int | None = None,
        cache: bool | None = None,
        threads: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        fallback: bool | None = None,
        probe: bool | None = None,
        local_files_only: bool | None = None,
        block_size: int | None = None,
    ):
        super().__init__(block_size)
        given = {
            "model": model, "revision": revision, "lanes": lanes, "context": context,
            "step": step, "numerics": numerics, "scale_bits": scale_bits, "cache": cache,
            "threads": threads, "device": device, "dtype": dtype, "fallback": fallback,
            "probe": probe, "local_files_only": local_files_only,
        }
        for key, value in given.items():
            if value is not None:
                setattr(self, key, value)
        # Validate now (a misspelt or bad parameter fails where the array is created, not at
        # its first write); building the block codec loads no model.
        try:
            self._get_block_codec()
        except CodecError as exc:
            raise CodecError(f"codec {self.codec_id!r}: {exc}") from None

    def _codec_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "block_size"}

    def _decode_model(self) -> str | None:
        # A frame names its model by hash: the configured model decodes it when it has that
        # hash, else the model is found among those on this machine.
        model = vars(self).get("model")
        return model if isinstance(model, str) and model else None


#: Alias: the numcodecs class of the ``"llm"`` codec.
LLMCodec = LLM

__all__ = ["CM", "LLM", "LZ77", "LZMA", "Huffman", "LLMCodec"]
