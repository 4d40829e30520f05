"""What a codec's classic fallbacks cost on the blocks it coded: lower bounds of their plain
frames' sizes, so that :func:`llm_codecs.compress` makes only the plain frames that can win.

:func:`llm_codecs.compress` returns a fallback's plain frame (every block coded by one classic
codec, no model fingerprint) instead of the model's frame when the plain frame is smaller. A
codec with fallbacks (``llm``) has already coded every block with each of them, to choose per
block, so their sizes are known once its frame is made: a plain frame holds, for each block, its
payload or the block itself where the payload is no smaller (stored), plus a header. The sum
over the blocks of ``min(payload, block)`` is therefore below the plain frame's size; when it
reaches the model frame's size, the plain frame cannot be the smallest and need not be made.
On prose that is every plain frame, each of which would code the whole input again, one
fallback after the other on one core (``docs/benchmarks.md``).

The bounds are gathered per :func:`llm_codecs.compress` call through a context variable: a
codec instance may serve several calls at once (threads of a Zarr or Dask read), and the
codec's own worker threads get the bounds passed explicitly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar


class PlainFrameBounds:
    """Per fallback codec, the sum over the blocks coded so far of ``min(payload, block)``
    sizes: a lower bound of that codec's plain frame of those blocks.

    Parameters
    ----------
    codecs : int
        Number of fallback codecs, in the order of the codec's ``frame_fallbacks()``.
    """

    def __init__(self, codecs: int) -> None:
        self.sums = [0] * codecs
        self.blocks = 0
        self._lock = threading.Lock()

    def add(self, block_size: int, payload_sizes: Sequence[int]) -> None:
        """Count one block of ``block_size`` bytes, coded by each fallback in
        ``payload_sizes`` bytes (one size per fallback codec, in order)."""
        if len(payload_sizes) != len(self.sums):
            raise ValueError(f"expected {len(self.sums)} payload sizes, got {len(payload_sizes)}")
        with self._lock:
            for i, size in enumerate(payload_sizes):
                self.sums[i] += min(size, block_size)
            self.blocks += 1

    def rules_out(self, codec: int, frame_size: int, blocks: int) -> bool:
        """Whether fallback ``codec``'s plain frame of the ``blocks`` blocks is certainly
        larger than a frame of ``frame_size`` bytes. False unless exactly ``blocks`` blocks
        were counted (a block coded without its fallbacks leaves the bound incomplete)."""
        return self.blocks == blocks and self.sums[codec] >= frame_size


_CURRENT: ContextVar[PlainFrameBounds | None] = ContextVar("llm_codecs_plain_bounds",
                                                           default=None)


@contextmanager
def gathering(codecs: int) -> Iterator[PlainFrameBounds]:
    """Context in which the blocks coded in this thread (and the threads it hands them to)
    count towards fresh bounds for ``codecs`` fallback codecs."""
    bounds = PlainFrameBounds(codecs)
    token = _CURRENT.set(bounds)
    try:
        yield bounds
    finally:
        _CURRENT.reset(token)


def current() -> PlainFrameBounds | None:
    """The bounds being gathered in this context, or None."""
    return _CURRENT.get()
