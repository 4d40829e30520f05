"""The contract every codec fulfils: a pure ``block bytes -> payload bytes`` pair.

Codecs know nothing about framing, checksums or random access; :mod:`llm_codecs.frame` does that
for all of them. A codec only turns one block into a payload and back, and says which per-block
*method* byte identifies its payloads in the block index.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar

from ..errors import CodecError

#: Method byte of a block kept verbatim because coding it did not pay. Reserved by the frame.
METHOD_STORED = 0


class BlockCodec(ABC):
    """Base class of the codecs that the LLMZ frame drives.

    Subclasses set :attr:`name`, :attr:`method_id` and :attr:`default_block_size`, accept their
    parameters as keyword arguments, validate them in ``__init__`` (raising :class:`CodecError`),
    and expose them through :meth:`params`.
    """

    #: Codec name as written in frame headers and accepted by :func:`llm_codecs.compress`.
    name: ClassVar[str]
    #: Method byte in the block index for payloads this codec produced (never 0).
    method_id: ClassVar[int]
    #: Block size used when the caller does not choose one.
    default_block_size: ClassVar[int]
    #: Largest block this codec accepts.
    max_block_size: ClassVar[int] = 64 << 20
    #: Whether the codec models text, so that :func:`llm_codecs.compress` gives it a chunk of
    #: strings as lines of text (:mod:`llm_codecs.strings`) rather than as it lies in memory.
    models_text: ClassVar[bool] = False

    @property
    def workers(self) -> int:
        """Blocks this codec can usefully code at once in threads (the frame batches that many)."""
        return 1

    def side_by_side(self, blocks: int) -> AbstractContextManager:
        """Context in which ``blocks`` blocks are coded at once in threads (a codec that would
        otherwise spread one block over the machine's cores then leaves them to the others)."""
        return nullcontext()

    def params(self) -> dict[str, Any]:
        """Return the JSON-serialisable parameters that rebuild an equivalent codec."""
        return {}

    def fingerprint(self) -> dict[str, Any] | None:
        """Return identity facts the decoder must match (model hash, numerics), or None."""
        return None

    def check_fingerprint(self, fingerprint: dict[str, Any] | None) -> None:
        """Raise :class:`~llm_codecs.ModelMismatchError` if a frame's fingerprint is not ours."""
        return None

    def bind(self, fingerprint: dict[str, Any] | None,
             models: Sequence[str | os.PathLike] | None = None) -> BlockCodec:
        """The codec that decodes a frame with ``fingerprint``, after checking it.

        The default checks (:meth:`check_fingerprint`) and returns ``self``; a codec whose
        frames select among several computations returns one configured for this frame.

        ``models`` is given when this codec was built from the frame's own header: the
        fingerprint then decides which model to find (by its hash, these models offered by the
        caller tried first), rather than the codec's configured model. Codecs without a model
        ignore it.
        """
        self.check_fingerprint(fingerprint)
        return self

    def decode_failure_hint(self) -> str | None:
        """Extra words for a block that failed to decode, when an intact frame can fail here."""
        return None

    @property
    def allowed_methods(self) -> frozenset[int]:
        """Method bytes a frame made by this codec may contain besides ``METHOD_STORED``."""
        return frozenset({self.method_id})

    @abstractmethod
    def encode_block(self, block: bytes) -> bytes:
        """Encode one block. The result need not be smaller: the frame stores raw if it is not."""

    @abstractmethod
    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode one payload into exactly ``size`` bytes.

        Must raise :class:`~llm_codecs.CorruptDataError` (never crash, hang, or allocate more than
        a small multiple of ``size``) on any payload it did not produce.
        """

    def frame_fallbacks(self) -> list[BlockCodec]:
        """Codecs whose whole frame :func:`llm_codecs.compress` returns instead when smaller.

        The LLM codec returns its LZ77 fallbacks: a frame in which the model saved less than its
        header costs (or coded nothing) is then the smallest plain LZ77 frame, without the
        model's fingerprint, and decodes without the model. Empty (the default) keeps the frame.
        """
        return []

    def would_code(self, data, block_size: int) -> bool:
        """Whether any block of ``data`` would be coded by this codec itself, not its fallback.

        :func:`llm_codecs.compress` returns the fallback's frame at once when not (and a
        model-based codec then never loads its model). True by default.
        """
        return True

    def encode_blocks(self, blocks: list[bytes]) -> list[tuple[int, bytes]]:
        """Encode several blocks, returning ``(method, payload)`` for each.

        The default codes them one by one with :attr:`method_id`; codecs that gain from batching
        or that fall back to another method per block override this.
        """
        return [(self.method_id, self.encode_block(block)) for block in blocks]

    def decode_method(self, method: int, payload: bytes, size: int) -> bytes:
        """Decode a payload written with ``method`` (one of :attr:`allowed_methods`)."""
        if method == self.method_id:
            return self.decode_block(payload, size)
        from . import codec_for_method

        return codec_for_method(method).decode_block(payload, size)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def check_int_param(name: str, value: Any, lo: int, hi: int) -> int:
    """Validate an integer parameter, raising :class:`CodecError` with a clear message."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise CodecError(f"{name} must be between {lo} and {hi}, got {value}")
    return value
