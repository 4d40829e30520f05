"""Run a per-lane computation as contiguous lane ranges in threads.

The LLM codec's lanes are independent within a step: the portable forward of one lane depends
only on that lane's inputs, a table row only on that row's logits and the block's shared
statistics, which no lane changes until the step is coded. A block may therefore cut its lanes
into parts and compute them on several cores at once (the numba kernels and torch's int8 GEMM
release the GIL); the results, hence the frame, are the same bytes whatever the number of parts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

__all__ = ["MIN_PART_LANES", "part_bounds", "run_parts"]

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


def _forget_pool_in_child() -> None:
    # A forked child (multiprocessing, Dask's process workers) inherits the pool without its
    # threads: work submitted to it would wait forever. The child makes its own when needed.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def part_bounds(lanes: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(first, stop)`` lane ranges covering ``lanes``, sizes within one
    of each other (fewer parts when there are fewer lanes)."""
    parts = max(1, min(parts, lanes))
    edges = [lanes * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def run_parts(work: Callable[[int, int], None], bounds: list[tuple[int, int]],
              hold: Callable[[], AbstractContextManager] | None = None) -> None:
    """``work(first, stop)`` for every range of ``bounds``: the first in this thread, the
    others in a shared pool of threads, each there in the context ``hold()``; all are done
    (or the first error is raised) on return."""

    def run(first: int, stop: int) -> None:
        with (hold or nullcontext)():
            work(first, stop)

    others = [_executor().submit(run, *b) for b in bounds[1:]]
    try:
        work(*bounds[0])
    finally:
        for future in others:
            future.result()
