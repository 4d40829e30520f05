"""Arrays that grow with the work actually done, not with what a frame declares.

A decoder learns how many tokens a block holds from the payload, before the stream has proven
it holds them: a forged count must not buy memory. The LLM codec's per-step and per-slot
buffers (token grid, match-model history, model inputs, rotary tables, KV cache) therefore start
small and double as decoding reaches them, up to the size the block's layout allows: memory
follows the steps decoded, and the copies cost at most as much again as the final size.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INITIAL_CAPACITY", "capacity", "grown"]

#: Entries a growing axis starts with. Small, because an axis may be wide in the others: one
#: slot of the KV cache of 1,024 lanes is several MiB. Doubling makes the copies cheap anyway.
INITIAL_CAPACITY = 16


def capacity(needed: int, limit: int, current: int = 0) -> int:
    """Room to allocate for ``needed`` entries: at least double ``current``, at most ``limit``."""
    return max(1, min(limit, max(needed, 2 * current, INITIAL_CAPACITY)))


def grown(array: Any, axis: int, needed: int, limit: int, fill: Any = 0) -> Any:
    """``array`` (numpy or torch) with room for ``needed`` entries along ``axis``.

    ``array`` itself when it has them; else a new array of :func:`capacity` entries along
    ``axis`` (never more than ``limit``), holding ``array``'s values first and ``fill`` after.

    Raises
    ------
    ValueError
        ``needed`` is more than ``limit``: the caller's layout never asks for that.
    """
    have = array.shape[axis]
    if needed <= have:
        return array
    if needed > limit:
        raise ValueError(f"{needed} entries asked of an axis limited to {limit}")
    shape = list(array.shape)
    shape[axis] = capacity(needed, limit, have)
    index = (slice(None),) * (axis % array.ndim) + (slice(0, have),)
    if hasattr(array, "new_full"):  # torch.Tensor
        out = array.new_full(tuple(shape), fill)
    else:
        import numpy as np

        out = np.full(shape, fill, dtype=array.dtype)
    out[index] = array
    return out
