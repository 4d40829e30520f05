"""One block's portable forward on several cores: its lanes split into parts run in threads.

With the portable engine a lane's logits are exact integers that depend only on that lane's
inputs, never on which lanes share a matrix product (every sum is an exact integer sum), so a
block's lanes may be cut into contiguous parts (:mod:`llm_codecs.parts`), each with its own
forward (its own KV cache and scratch), run at the same time: the logits, hence the frame, are
the same bytes whatever the number of parts. This is what a single block does with a machine's
spare cores (one Zarr chunk read, a one-block file, the first block of a process); blocks coded
side by side already fill them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import torch

from ..parts import part_bounds, run_parts

__all__ = ["LaneParts"]


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
        self._hold = hold
        self._by_first = {first: part for (first, _), part in zip(self.bounds, self.parts,
                                                                   strict=True)}

    def _each(self, call: Callable[[object, int, int], None]) -> None:
        """``call(part, first, stop)`` for every part, in threads (:func:`.run_parts`)."""
        run_parts(lambda first, stop: call(self._by_first[first], first, stop), self.bounds,
                  self._hold)

    def step(self, ids: torch.Tensor, position: int, slot: int | None = None,
             filled: int | None = None) -> torch.Tensor:
        """:meth:`CpuIntegerStep.step <llm_codecs.portable.cpu_step.CpuIntegerStep.step>`
        of every lane."""
        logits = np.empty((self.lanes, self.parts[0].vocab), dtype=np.float32)
        self.step_into(ids, position, slot, filled, logits)
        return torch.from_numpy(logits)

    def step_into(self, ids: torch.Tensor, position: int, slot: int | None, filled: int | None,
                  logits: np.ndarray) -> None:
        """:meth:`step`, its logits written to ``logits`` (float32 ``(lanes, V)``)."""

        def call(part, first, stop):
            part.step_into(ids[first:stop], position, slot, filled, logits[first:stop])

        self._each(call)

    def run_hidden(self, ids: np.ndarray, first: int) -> None:
        """:meth:`CpuIntegerPrefill.run_hidden
        <llm_codecs.portable.cpu_prefill.CpuIntegerPrefill.run_hidden>` of every lane."""
        self._each(lambda part, lo, hi: part.run_hidden(ids[lo:hi], first))

    def logits_at(self, c: int, out: np.ndarray) -> None:
        """:meth:`CpuIntegerPrefill.logits_at
        <llm_codecs.portable.cpu_prefill.CpuIntegerPrefill.logits_at>` of every lane."""
        self._each(lambda part, lo, hi: part.logits_at(c, out[lo:hi]))

    def run(self, ids: np.ndarray, first: int) -> np.ndarray:
        """:meth:`CpuIntegerPrefill.run <llm_codecs.portable.cpu_prefill.CpuIntegerPrefill.run>`
        of every lane."""
        part0 = self.parts[0]
        logits = np.empty((part0.chunk, self.lanes, part0.vocab), dtype=np.float32)

        def call(part, lo, hi):
            part.run(ids[lo:hi], first, logits[:, lo:hi])

        self._each(call)
        return logits
