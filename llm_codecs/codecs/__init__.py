"""Registry of the codecs the LLMZ frame can drive, by name and by per-block method byte.

Codec modules are imported lazily so that ``import llm_codecs`` never pulls in heavy
dependencies (torch) that only one codec needs.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from functools import cache

from ..errors import CodecError, CorruptDataError
from .base import METHOD_STORED, BlockCodec

# name -> (module, class, method byte). Method bytes are part of the on-disk format: never reuse.
_REGISTRY: dict[str, tuple[str, str, int]] = {
    "huffman": ("llm_codecs.codecs.huffman", "HuffmanCodec", 1),
    "lz77": ("llm_codecs.codecs.lz77", "LZ77Codec", 2),
    "llm": ("llm_codecs.codecs.llm", "LanguageModelCodec", 3),
    "lzma": ("llm_codecs.codecs.lzma", "LZMACodec", 4),
    "cm-v1": ("llm_codecs.codecs.cm", "ContextMixingV1Codec", 5),
    "cm-v2": ("llm_codecs.codecs.cm", "ContextMixingV2Codec", 6),
    "cm-v3": ("llm_codecs.codecs.cm", "ContextMixingV3Codec", 7),
    "cm-v4": ("llm_codecs.codecs.cm", "ContextMixingV4Codec", 8),
    "cm": ("llm_codecs.codecs.cm", "ContextMixingCodec", 9),
}
_BY_METHOD = {method: name for name, (_, _, method) in _REGISTRY.items()}


def codec_names() -> list[str]:
    """Return the names accepted by :func:`llm_codecs.compress`."""
    return sorted(_REGISTRY)


def codec_class(name: str) -> type[BlockCodec]:
    """Return the codec class registered under ``name``."""
    try:
        module, cls, _ = _REGISTRY[name]
    except (KeyError, TypeError):
        raise CodecError(
            f"unknown codec {name!r}; known codecs: {', '.join(codec_names())}"
        ) from None
    return getattr(importlib.import_module(module), cls)


def make_codec(name: str, **params) -> BlockCodec:
    """Build codec ``name`` with ``params``; unknown parameters raise :class:`CodecError`."""
    cls = codec_class(name)
    known = _parameter_names(cls)
    unknown = sorted(set(params) - known)
    if unknown:
        raise CodecError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} for codec {name!r}; its parameters are "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    try:
        return cls(**params)
    except TypeError as exc:
        raise CodecError(f"bad parameters for codec {name!r}: {exc}") from None


@cache
def _parameter_names(cls: type[BlockCodec]) -> frozenset[str]:
    return frozenset(
        p.name for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


class LazyCodec:
    """A codec built from its name and parameters on first use, once, thread-safely.

    What every integration keeps (numcodecs, fsspec): building a model-based codec is cheap,
    but its first use loads a model, and threads (Zarr, Dask) may race for it.
    """

    def __init__(self, name: str, params: dict):
        self.name, self.params = name, dict(params)
        self._codec: BlockCodec | None = None
        self._lock = threading.Lock()

    def get(self) -> BlockCodec:
        """The codec (raises :class:`CodecError` for bad parameters, on first use)."""
        if self._codec is None:
            with self._lock:
                if self._codec is None:
                    self._codec = make_codec(self.name, **self.params)
        return self._codec


def codec_name_for_method(method: int) -> str | None:
    """The name of the codec whose payloads carry per-block ``method``, or None.

    From the registry alone: no codec module is imported.
    """
    return _BY_METHOD.get(method)


@cache
def codec_for_method(method: int) -> BlockCodec:
    """Return a default instance able to decode payloads of per-block ``method``."""
    if method == METHOD_STORED or method not in _BY_METHOD:
        raise CorruptDataError(f"unknown block method {method}")
    return make_codec(_BY_METHOD[method])


__all__ = ["METHOD_STORED", "BlockCodec", "LazyCodec", "codec_class", "codec_for_method",
           "codec_name_for_method", "codec_names", "make_codec"]
