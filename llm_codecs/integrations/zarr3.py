"""Native Zarr format 3 codecs (``BytesBytesCodec``) over the LLMZ core API.

Each class is a thin shell around the numcodecs codec of the same configuration, so a Zarr 3
chunk holds exactly the bytes that ``numcodecs.get_codec({"id": NAME, **configuration})``
would write: one LLMZ frame. They are registered through the ``zarr.codecs`` entry-point group,
so an array whose ``zarr.json`` names ``llm_codecs.lz77`` opens without importing llm_codecs::

    import zarr
    from llm_codecs.integrations.zarr3 import LZ77

    z = zarr.create_array(store, shape=(1000,), dtype="i4", compressors=[LZ77(level=9)])

Codec names and configurations (``configuration`` always lists every field):

- ``llm_codecs.huffman``: ``{"block_size": int}``
- ``llm_codecs.lz77``: ``{"level": int, "block_size": int}``
- ``llm_codecs.llm``: the ``"llm"`` codec's parameters (``"model": "default"``, ``"lanes"``,
  ``"numerics"``, ...) and ``"block_size"``; the model loads on first use, not at import.

Each is a frozen dataclass with typed fields, validated when it is made.

Pickling carries only the configuration (see :meth:`FrameCodec.__reduce__`), so Dask graphs
stay small and every worker builds (and caches) its own codec.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from zarr.abc.codec import BytesBytesCodec
from zarr.core.buffer.cpu import as_numpy_array_wrapper
from zarr.core.common import parse_named_configuration

from ..errors import CodecError
from . import numcodecs as _nc

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer


@dataclass(frozen=True)
class FrameCodec(BytesBytesCodec):
    """Shared body of the Zarr 3 codecs: the chunk becomes one LLMZ frame.

    Subclasses declare their configuration as typed dataclass fields (like zarr-python's own
    ``GzipCodec.level``), name themselves (:attr:`codec_name`) and their numcodecs twin. A field
    left at None takes the codec's default; every field holds a concrete value once the codec
    is made, and a bad one raises :class:`CodecError` right there (so at ``create_array``).
    """

    is_fixed_size = False

    #: The ``name`` written in ``zarr.json`` (and the entry-point name).
    codec_name: ClassVar[str]
    #: The numcodecs class with the same configuration and the same bytes.
    numcodecs_class: ClassVar[type[_nc._FrameCodec]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # Before the dataclass __init__, which would raise a bare TypeError naming this class.
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown or len(args) > len(names):
            what = (f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))}" if unknown
                    else f"{len(args)} positional arguments")
            raise CodecError(f"bad configuration for codec {cls.codec_name!r}: {what}; its "
                             f"parameters are {', '.join(names)}")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(self)
                 if getattr(self, f.name) is not None}
        try:
            inner = self.numcodecs_class(**given)
        except (TypeError, CodecError) as exc:
            raise CodecError(f"bad configuration for codec {self.codec_name!r}: {exc}") from None
        block = inner._get_block_codec()
        defaults = {**block.params(), "block_size": inner.block_size}
        for f in fields(self):
            if getattr(self, f.name) is None:
                value = defaults[f.name] if f.name in defaults else getattr(block, f.name)
                object.__setattr__(self, f.name, value)
        # Not a field: left out of eq/repr, and pickling rebuilds it from the configuration.
        object.__setattr__(self, "_inner", inner)

    @property
    def params(self) -> dict[str, Any]:
        """Every field but ``block_size``: the block codec's parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "block_size"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the codec from its ``zarr.json`` form; a bad one raises :class:`CodecError`."""
        _, configuration = parse_named_configuration(
            data, cls.codec_name, require_configuration=False
        )
        configuration = configuration or {}
        try:
            return cls(**configuration)
        except CodecError as exc:
            raise CodecError(
                f"cannot build Zarr codec {cls.codec_name!r} (package llm_codecs) from "
                f"configuration {configuration!r}: {exc}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., "configuration": {...}}`` with every field filled in."""
        return {"name": self.codec_name,
                "configuration": {f.name: getattr(self, f.name) for f in fields(self)}}

    def __reduce__(self):
        return (type(self).from_dict, (self.to_dict(),))

    def __hash__(self) -> int:
        return hash((type(self), json.dumps(self.to_dict(), sort_keys=True)))

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        return as_numpy_array_wrapper(self._inner.decode, chunk_bytes, chunk_spec.prototype)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def _encode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer | None:
        strings = _strings_of(chunk_spec)
        return as_numpy_array_wrapper(
            lambda buf: self._inner.encode(buf, strings=strings), chunk_bytes,
            chunk_spec.prototype,
        )

    async def _encode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, _input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError


def _strings_of(chunk_spec: ArraySpec):
    """What the chunk's bytes hold, for :func:`llm_codecs.compress`'s ``strings``.

    The array's dtype: fixed-width bytes or UTF-32 strings as they are, variable-length strings
    after zarr's ``vlen-utf8`` codec (numcodecs' encoding). When codecs before this one changed
    the bytes, the text view does not restore them and the chunk is coded as it is.
    """
    try:
        native = chunk_spec.dtype.to_native_dtype()
    except (AttributeError, TypeError, ValueError):
        return "auto"
    return native if native.kind in "SUOT" else None


@dataclass(frozen=True)
class Huffman(FrameCodec):
    """``llm_codecs.huffman``: canonical Huffman coding of bytes.

    Parameters
    ----------
    block_size : int, optional
        Original bytes per block (default 256 KiB).
    """

    codec_name = "llm_codecs.huffman"
    numcodecs_class = _nc.Huffman

    block_size: int | None = None


@dataclass(frozen=True)
class LZ77(FrameCodec):
    """``llm_codecs.lz77``: deflate-like LZ77.

    Parameters
    ----------
    level : int, optional
        1 (fastest) to 9 (smallest); default 5.
    block_size : int, optional
        Original bytes per block (default 1 MiB).
    """

    codec_name = "llm_codecs.lz77"
    numcodecs_class = _nc.LZ77

    level: int | None = None
    block_size: int | None = None


@dataclass(frozen=True)
class LZMA(FrameCodec):
    """``llm_codecs.lzma``: LZMA2 through Python's liblzma.

    Parameters
    ----------
    level : int, optional
        liblzma's preset, 0 to 9; default 9.
    block_size : int, optional
        Original bytes per block (default 1 MiB).
    """

    codec_name = "llm_codecs.lzma"
    numcodecs_class = _nc.LZMA

    level: int | None = None
    block_size: int | None = None


@dataclass(frozen=True)
class CM(FrameCodec):
    """``llm_codecs.cm``: bitwise context mixing (our own).

    Parameters
    ----------
    block_size : int, optional
        Original bytes per block (default 1 MiB, at most 4 MiB).
    """

    codec_name = "llm_codecs.cm"
    numcodecs_class = _nc.CM

    block_size: int | None = None


@dataclass(frozen=True)
class LLM(FrameCodec):
    """``llm_codecs.llm``: model-based coding (the embedded model by default).

    The fields are the ``"llm"`` block codec's parameters
    (:class:`~llm_codecs.codecs.llm.LanguageModelCodec` documents each); None takes its
    default. Nothing is loaded when the codec is made: the model loads on first use.
    """

    codec_name = "llm_codecs.llm"
    numcodecs_class = _nc.LLM

    model: str | None = None
    revision: str | None = None
    lanes: int | None = None
    context: int | None = None
    step: str | None = None
    numerics: str | None = None
    scale_bits: int | None = None
    cache: bool | None = None
    threads: int | None = None
    device: str | None = None
    dtype: str | None = None
    fallback: bool | None = None
    probe: bool | None = None
    local_files_only: bool | None = None
    block_size: int | None = None


#: Every Zarr 3 codec of this package by ``zarr.json`` name.
CODECS: dict[str, type[FrameCodec]] = {c.codec_name: c for c in (Huffman, LZ77, LZMA, CM, LLM)}

__all__ = ["CM", "CODECS", "LLM", "LZ77", "LZMA", "FrameCodec", "Huffman"]
