"""One block's portable forward on several cores: its lanes split into parts run in threads.

With the portable engine a lane's logits are exact integers that depend only on that lane's
inputs, never on which lanes share a matrix product (every sum is an exact integer sum), so a
block's lanes may be cut into contiguous parts, each with its own forward (its own KV cache and
scratch), run at the same time: the logits, hence the frame, are the same bytes whatever the
number of parts. The kernels and torch's int8 GEMM release the GIL, so the parts fill as many
cores. This is what a single block does with a machine's spare cores (one Zarr chunk read, a
one-block file, the first block of a process); blocks coded side by side already fill them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

__all__ = ["MIN_PART_LANES", "LaneParts", "part_bounds"]

#: Fewest lanes worth a part of their own: below it, a part's matrix products are too short
#: to pay for the thread hand-off.
MIN_PART_LANES = 16

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, (os.cpu_count() or 1) - 1),
                                       thread_name_prefix="llmz-lanes")
        return _pool


def part_bounds(lanes: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(first, stop)`` lane ranges covering ``lanes``, sizes within one
    of each other (fewer parts when there are fewer lanes)."""
    parts = max(1, min(parts, lanes))
    edges = [lanes * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


class LaneParts:
    """A forward made of one forward per lane range, run in threads.

    Parameters
    ----------
    make : callable
        ``make(lanes)``: a forward (:class:`~llm_codecs.portable.cpu_step.CpuIntegerStep` or
        :class:`~llm_codecs.portable.cpu_prefill.CpuIntegerPrefill`) for that many lanes.
    lanes, parts : int
        Lanes of the whole forward, and how many ranges to cut them into.
    hold : callable, optional
        Context each part runs in, in its own thread (the codec's torch thread setting).
    """

    def __init__(self, make: Callable[[int], object], lanes: int, parts: int,
                 hold: Callable[[], AbstractContextManager] | None = None):
        self.bounds = part_bounds(lanes, parts)
        self.parts = [make(stop - first) for first, stop in self.bounds]
        self.lanes = lanes
        self._hold = hold or nullcontext

    def _each(self, call: Callable[[object, int, int], None]) -> None:
        """``call(part, first, stop)`` for every part: the first in this thread, the others
        in the pool, all done (or the first error raised) on return."""

        def run(index: int) -> None:
            with self._hold():
                call(self.parts[index], *self.bounds[index])

        others = [_executor().submit(run, i) for i in range(1, len(self.parts))]
        try:
            call(self.parts[0], *self.bounds[0])
        finally:
            for future in others:
                future.result()

    def step(self, ids: torch.Tensor, position: int, slot: int | None = None,
             filled: int | None = None) -> torch.Tensor:
        """:meth:`CpuIntegerStep.step <llm_codecs.portable.cpu_step.CpuIntegerStep.step>`
        of every lane."""
        vocab = self.parts[0].vocab
        logits = np.empty((self.lanes, vocab), dtype=np.float32)

        def call(part, first, stop):
            part.step_into(ids[first:stop], position, slot, filled, logits[first:stop])

        self._each(call)
        return torch.from_numpy(logits)

    def run(self, ids: np.ndarray, first: int) -> np.ndarray:
        """:meth:`CpuIntegerPrefill.run <llm_codecs.portable.cpu_prefill.CpuIntegerPrefill.run>`
        of every lane."""
        part0 = self.parts[0]
        logits = np.empty((part0.chunk, self.lanes, part0.vocab), dtype=np.float32)

        def call(part, lo, hi):
            part.run(ids[lo:hi], first, logits[:, lo:hi])

        self._each(call)
        return logits
