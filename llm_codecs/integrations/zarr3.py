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
- ``llm_codecs.llm``: ``{"block_size": int, **params}`` (e.g. ``"model": "default"``), passed
  through to the ``"llm"`` codec as they are; the model loads on first use, not at import.

Pickling carries only the configuration (see :meth:`FrameCodec.__reduce__`), so Dask graphs
stay small and every worker builds (and caches) its own codec.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
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

    Subclasses only name themselves (:attr:`codec_name`) and their numcodecs twin.

    Parameters
    ----------
    block_size : int, optional
        Original bytes per independently coded block; the codec's default when omitted.
    params : mapping, optional
        Codec parameters (also accepted as keywords), e.g. ``level=9`` for ``lz77``.
    """

    is_fixed_size = False

    #: The ``name`` written in ``zarr.json`` (and the entry-point name).
    codec_name: ClassVar[str]
    #: The numcodecs class with the same configuration and the same bytes.
    numcodecs_class: ClassVar[type[_nc._FrameCodec]]

    block_size: int
    params: Mapping[str, Any]

    def __init__(
        self, *, block_size: int | None = None, params: Mapping[str, Any] | None = None, **kwargs
    ) -> None:
        merged = {**(params or {}), **kwargs}
        try:
            inner = self.numcodecs_class(block_size=block_size, **merged)
        except TypeError as exc:
            raise CodecError(f"bad configuration for codec {self.codec_name!r}: {exc}") from None
        config = inner.get_config()
        config.pop("id")
        object.__setattr__(self, "block_size", config.pop("block_size"))
        object.__setattr__(self, "params", config)
        # Not a field: left out of eq/repr, and pickling rebuilds it from the configuration.
        object.__setattr__(self, "_inner", inner)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build the codec from its ``zarr.json`` form; a bad one raises :class:`CodecError`."""
        _, configuration = parse_named_configuration(
            data, cls.codec_name, require_configuration=False
        )
        try:
            return cls(**(configuration or {}))
        except CodecError as exc:
            raise CodecError(
                f"cannot build Zarr codec {cls.codec_name!r} (package llm_codecs) from "
                f"configuration {configuration!r}: {exc}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., "configuration": {...}}`` with every field filled in."""
        return {
            "name": self.codec_name,
            "configuration": {**self.params, "block_size": self.block_size},
        }

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


class Huffman(FrameCodec):
    """``llm_codecs.huffman``: canonical Huffman coding of bytes (configuration: block_size)."""

    codec_name = "llm_codecs.huffman"
    numcodecs_class = _nc.Huffman


class LZ77(FrameCodec):
    """``llm_codecs.lz77``: deflate-like LZ77 (configuration: level 1-9, block_size)."""

    codec_name = "llm_codecs.lz77"
    numcodecs_class = _nc.LZ77


class LLM(FrameCodec):
    """``llm_codecs.llm``: model-based coding; every parameter passes through to the codec."""

    codec_name = "llm_codecs.llm"
    numcodecs_class = _nc.LLM


#: Every Zarr 3 codec of this package by ``zarr.json`` name.
CODECS: dict[str, type[FrameCodec]] = {c.codec_name: c for c in (Huffman, LZ77, LLM)}

__all__ = ["CODECS", "LLM", "LZ77", "FrameCodec", "Huffman"]
