"""Compiled successor-count models over the tokens already coded in a block (see
:mod:`.cache_mix`).

For each context order ``k`` a hash table maps the last ``k`` tokens of a lane to the tokens that
followed them in the block so far, with counts (at most :data:`ENTRIES` per context; a new
successor replaces the least counted one). At each step, where a lane's context has been seen,
its row becomes the mixture ``(1 - a) p + a e``: ``p`` the table so far, ``e`` the successor
counts normalised, ``a = share * n / (n + BETA)`` with ``n`` the context's count. The share is
chosen per order among a few fixed values by follow the leader: the one that would have coded
the block so far in the fewest bits (ties go to the smaller share, the first being 0, i.e. off).
Neither choice is transmitted.

The match models (:mod:`._match_kernel`) predict the *one* token that followed a context last
time; these models give the whole distribution of what followed. On prose that saves about 1%;
on WikiText, JSON and CSV 6-12% (``valid/``, ``docs/benchmarks.md``).

Only IEEE float64 ``+ - * /`` and comparisons (no ``log``/``exp``: costs are integer, through a
fixed-point ``log2`` table), no fused multiply-add (numba compiles without ``fastmath``), integer
tables: encoder and decoder compute the same bits.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from .. import wide_vectors
from ._context import context_hash as _context_hash
from ._quantize_kernel import log2_fixed

wide_vectors.install()  # before the kernels below compile

#: Successors kept per context.
ENTRIES = 16
#: Pseudo-count of the evidence weight ``n / (n + BETA)``.
BETA = 16.0
# Hash salt, distinct from the match models' order indices.
_SALT = 32
# Candidate probabilities are costed as ``log2(floor(q * 2**40) + 1) - 40``.
_COST_BITS = 40


class SuccessorState(NamedTuple):
    """Everything the successor models of one block keep, ``m`` orders by ``S`` shares.

    A tuple of arrays (numba passes it to the kernels as one argument and reads its fields by
    name); the kernels update the arrays in place.
    """

    #: ``(m,)`` int64: the context length of each order.
    orders: np.ndarray
    #: ``(S,)`` float64: the shares tried (times the evidence weight).
    shares: np.ndarray
    #: ``(m, S)`` int64: per order, what each share would have cost so far, in 1/65536 bits.
    costs: np.ndarray
    #: ``(m,)`` int64: per order, the index of the share in use this step (the cheapest).
    choice: np.ndarray
    #: ``(m, slots)`` uint64: the context hash each slot holds.
    keys: np.ndarray
    #: ``(m, slots, ENTRIES)`` int32: the successor tokens of each slot's context.
    toks: np.ndarray
    #: ``(m, slots, ENTRIES)`` int32: how often each followed (0 = an empty entry).
    cnts: np.ndarray
    #: ``(m, slots)`` int64: the sum of each slot's counts.
    totals: np.ndarray
    #: ``(m, lanes)`` int64: the slot each lane's row used this step, -1 for none.
    lane_slot: np.ndarray
    #: ``(m, lanes)`` float64: the share applied to each lane's row this step.
    lane_a: np.ndarray
    #: ``(m, lanes)`` float64: the evidence weight ``n / (n + BETA)`` of that slot.
    lane_g: np.ndarray


def successor_state(orders, shares, lanes: int, slots: int) -> SuccessorState:
    """Empty state for ``orders`` and ``shares`` (1-D arrays) over ``lanes`` rows: nothing seen,
    every share's cost 0. ``slots`` hash slots per order, a power of two."""
    m = orders.shape[0]
    return SuccessorState(
        orders, shares,
        np.zeros((m, shares.shape[0]), dtype=np.int64),
        np.zeros(m, dtype=np.int64),
        np.zeros((m, slots), dtype=np.uint64),
        np.zeros((m, slots, ENTRIES), dtype=np.int32),
        np.zeros((m, slots, ENTRIES), dtype=np.int32),
        np.zeros((m, slots), dtype=np.int64),
        np.full((m, lanes), -1, dtype=np.int64),
        np.zeros((m, lanes), dtype=np.float64),
        np.zeros((m, lanes), dtype=np.float64),
    )


@nb.njit(cache=True, nogil=True, inline="always")
def _neg_log2(q, log_table):  # pragma: no cover - compiled
    """``-log2(q)`` in 1/65536 bits for ``0 < q <= 1``, integer arithmetic after one floor."""
    f = np.int64(q * 1099511627776.0) + 1  # 2**40
    return _COST_BITS * 65536 - log2_fixed(f, log_table)


@nb.njit(cache=True, nogil=True, inline="always")
def choose_shares(costs, choice):  # pragma: no cover - compiled
    """Per order, the index of the cheapest share so far (first minimum)."""
    for s in range(costs.shape[0]):
        best = 0
        for i in range(1, costs.shape[1]):
            if costs[s, i] < costs[s, best]:
                best = i
        choice[s] = best


@nb.njit(cache=True, nogil=True, inline="always")
def mix_successors(freqs, lane, M, hist, t, state, scale, over_tok, over_val,
                   n_over):  # pragma: no cover - compiled
    """Apply every order's successor mixture to one lane's row, in the representation of
    :func:`._match_kernel.adjust_rows` (``scale`` for the tokens not listed, explicit
    probabilities for the listed ones). Returns the new ``(scale, n_over)``; records in
    ``state`` (a :class:`SuccessorState`) what :func:`observe_successors` needs. The shares
    must have been chosen (:func:`choose_shares`) for this step."""
    orders, shares, choice = state.orders, state.shares, state.choice
    keys, toks, cnts, totals = state.keys, state.toks, state.cnts, state.totals
    lane_slot, lane_a, lane_g = state.lane_slot, state.lane_a, state.lane_g
    mask = np.uint64(keys.shape[1] - 1)
    inv_m = 1.0 / np.float64(M)
    for s in range(orders.shape[0]):
        lane_slot[s, lane] = -1
        k = orders[s]
        if t < k:
            continue
        h = _context_hash(hist, lane, t, k, _SALT + s)
        slot = np.int64(h & mask)
        n = totals[s, slot]
        if keys[s, slot] != h or n <= 0:
            continue
        g = np.float64(n) / (np.float64(n) + BETA)
        a = shares[choice[s]] * g
        lane_slot[s, lane] = slot
        lane_a[s, lane] = a
        lane_g[s, lane] = g
        if a <= 0.0:
            continue
        factor = 1.0 - a
        scale *= factor
        for i in range(n_over):
            over_val[i] *= factor
        weight = a / np.float64(n)
        for e in range(toks.shape[2]):
            c = cnts[s, slot, e]
            if c <= 0:
                continue
            tok = toks[s, slot, e]
            idx = -1
            for i in range(n_over):
                if over_tok[i] == tok:
                    idx = i
            if idx < 0:
                idx = n_over
                over_tok[idx] = tok
                over_val[idx] = np.float64(freqs[lane, tok]) * inv_m * scale
                n_over += 1
            over_val[idx] += weight * np.float64(c)
    return scale, n_over


@nb.njit(cache=True, nogil=True)
def observe_successors(hist, t, symbols, active, cum, M, state,
                       log_table):  # pragma: no cover - compiled
    """Charge every share the cost of the coded symbols, then count them as successors
    (``state``, a :class:`SuccessorState`, is updated in place).

    The probability a symbol had before each order's mixture is recovered from the coded
    table, last order first, by inverting ``p' = (1 - a) p + a e``. Costs use the counts the
    tables were made with: every lane is charged before any count changes.
    """
    orders, shares, costs = state.orders, state.shares, state.costs
    keys, toks, cnts, totals = state.keys, state.toks, state.cnts, state.totals
    lane_slot, lane_a, lane_g = state.lane_slot, state.lane_a, state.lane_g
    lanes = symbols.shape[0]
    n_orders = orders.shape[0]
    inv_m = 1.0 / np.float64(M)
    for lane in range(lanes):
        if not active[lane]:
            continue
        y = symbols[lane]
        p = np.float64(cum[lane, y + 1] - cum[lane, y]) * inv_m
        for s in range(n_orders - 1, -1, -1):
            slot = lane_slot[s, lane]
            if slot < 0:
                continue
            c_y = 0
            for e in range(toks.shape[2]):
                if cnts[s, slot, e] > 0 and toks[s, slot, e] == y:
                    c_y = cnts[s, slot, e]
            e_y = np.float64(c_y) / np.float64(totals[s, slot])
            a, g = lane_a[s, lane], lane_g[s, lane]
            before = (p - a * e_y) / (1.0 - a)
            # Rounding of the integer table can push the inversion out of range.
            before = min(max(before, 1e-12), 1.0)
            for i in range(shares.shape[0]):
                w = shares[i] * g
                costs[s, i] += _neg_log2((1.0 - w) * before + w * e_y, log_table)
            p = before
    mask = np.uint64(keys.shape[1] - 1)
    for lane in range(lanes):
        if not active[lane]:
            continue
        y = symbols[lane]
        for s in range(n_orders):
            k = orders[s]
            if t < k:
                continue
            h = _context_hash(hist, lane, t, k, _SALT + s)
            slot = np.int64(h & mask)
            if keys[s, slot] != h:
                keys[s, slot] = h
                totals[s, slot] = 0
                for e in range(toks.shape[2]):
                    cnts[s, slot, e] = 0
            found = -1
            empty = -1
            least = 0
            for e in range(toks.shape[2]):
                c = cnts[s, slot, e]
                if c > 0 and toks[s, slot, e] == y:
                    found = e
                elif c == 0 and empty < 0:
                    empty = e
                if c < cnts[s, slot, least]:
                    least = e
            if found < 0:
                found = empty if empty >= 0 else least
                totals[s, slot] -= cnts[s, slot, found]
                toks[s, slot, found] = y
                cnts[s, slot, found] = 0
            cnts[s, slot, found] += 1
            totals[s, slot] += 1
