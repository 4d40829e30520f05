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
    "DEFAULT_CODEC",
    "LZ77",
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


def __getattr__(name):
    # The numcodecs classes import numcodecs; keep `import llm_codecs` light until they are used.
    if name == "NumericsWarning":
        from .codecs.llm import NumericsWarning

        return NumericsWarning
    if name in ("Huffman", "LZ77", "LLMCodec"):
        from .integrations import numcodecs as _nc

        return getattr(_nc, name)
    raise AttributeError(f"module 'llm_codecs' has no attribute {name!r}")
