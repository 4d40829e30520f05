"""Run model code with a given torch intra-op thread count, safely from many threads."""

from __future__ import annotations

import threading
from contextlib import contextmanager

__all__ = ["GATE", "ThreadGate"]


class ThreadGate:
    """Lets model runs overlap only while they all want the same torch thread count.

    The float engine's bits depend on torch's intra-op thread count. That setting lives partly
    in each OS thread (OpenMP's per-thread value, which a new thread does not inherit) and partly
    in the process, so every run sets it in its own thread, and runs that want different counts
    never overlap. Runs that want the same count proceed together: torch and the portable
    engine's kernels release the GIL, so single-threaded runs of several blocks fill several
    cores. Each thread gets its own setting back when its run ends.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._threads = 0
        self._reserved = 0

    @property
    def active(self) -> int:
        """Model runs in progress or about to start: each :meth:`hold` counts while it lasts,
        and the blocks announced by :meth:`side_by_side` (some may not have started yet)."""
        with self._cond:
            return max(self._active, self._reserved)

    @contextmanager
    def side_by_side(self, runs: int):
        """Context in which ``runs`` model runs are started together (a batch of blocks)."""
        with self._cond:
            self._reserved += runs
        try:
            yield
        finally:
            with self._cond:
                self._reserved -= runs

    @contextmanager
    def hold(self, threads: int):
        """Context in which this OS thread runs torch with ``threads`` threads."""
        import torch

        with self._cond:
            while self._active and self._threads != threads:
                self._cond.wait()
            self._threads = threads
            self._active += 1
        previous = torch.get_num_threads()  # this OS thread's value
        try:
            if previous != threads:
                torch.set_num_threads(threads)
            yield
        finally:
            if previous != threads:
                torch.set_num_threads(previous)
            with self._cond:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()


#: The process's gate: every model run of the LLM codec goes through it.
GATE = ThreadGate()
