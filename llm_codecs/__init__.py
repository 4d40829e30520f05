"""Model-based and classic lossless codecs for numcodecs, Zarr and fsspec.

The whole public surface::

    import llm_codecs
    frame = llm_codecs.compress(data, codec="lz77", level=9)
    assert llm_codecs.decompress(frame) == data
    part = llm_codecs.decompress(frame, offset=1000, size=100)
"""

from .api import (
    DEFAULT_CODEC,
    compress,
    compress_stream,
    decompress,
    decompress_stream,
    open_frame,
)
from .codecs import codec_names
from .errors import (
    CodecError,
    CorruptDataError,
    ModelMismatchError,
    NumericsMismatchError,
    UnsupportedTokenizerError,
)

__version__ = "0.1.0"

__all__ = [
    "CM",
    "DEFAULT_CODEC",
    "LZ77",
    "LZMA",
    "CodecError",
    "CorruptDataError",
    "Huffman",
    "LLMCodec",
    "ModelMismatchError",
    "NumericsMismatchError",
    "NumericsWarning",
    "UnsupportedTokenizerError",
    "__version__",
    "codec_names",
    "compress",
    "compress_stream",
    "decompress",
    "decompress_stream",
    "open_frame",
]


def _register_fsspec_compression() -> None:
    # fsspec has no entry point for compressions: register "llmz" (and the ".llmz" suffix for
    # compression="infer") on import, with a callback that imports the integration only when a
    # file is opened.
    try:
        from fsspec.compression import register_compression
    except ImportError:  # pragma: no cover - fsspec is a dependency
        return

    def open_llmz(fileobj, mode="rb", **options):
        from .integrations.fsspec import open_compressed

        return open_compressed(fileobj, mode, **options)

    register_compression("llmz", open_llmz, "llmz", force=True)


_register_fsspec_compression()


def __getattr__(name):
    # The numcodecs classes import numcodecs; keep `import llm_codecs` light until they are used.
    if name == "NumericsWarning":
        from .codecs.llm import NumericsWarning

        return NumericsWarning
    if name in ("Huffman", "LZ77", "LZMA", "CM", "LLMCodec"):
        from .integrations import numcodecs as _nc

        return getattr(_nc, name)
    raise AttributeError(f"module 'llm_codecs' has no attribute {name!r}")
