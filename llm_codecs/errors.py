"""The typed errors raised by llm_codecs.

Every failure to decode is a :class:`CodecError`, which is a :class:`ValueError`, so callers that
already catch ``ValueError`` from numcodecs or zarr keep working.
"""


class CodecError(ValueError):
    """Base class of every error llm_codecs raises for bad input or parameters."""


class CorruptDataError(CodecError):
    """A frame is truncated, tampered with, or not an LLMZ frame at all."""


class NumericsMismatchError(CorruptDataError):
    """A frame made by the float engine does not decode on this machine's float kernels.

    The data is most likely intact: the message names the encoder's and this machine's numerics
    and says where to decode it.
    """


class ModelMismatchError(CodecError):
    """A frame was made with another model than the one available to decode it."""


class UnsupportedTokenizerError(CodecError):
    """A model's tokenizer cannot represent arbitrary bytes losslessly."""


__all__ = ["CodecError", "CorruptDataError", "ModelMismatchError", "NumericsMismatchError",
           "UnsupportedTokenizerError"]
