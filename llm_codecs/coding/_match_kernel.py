"""Compiled match models over the tokens already coded in a block (see :mod:`.cache_mix`).

For each context order ``k`` a hash table maps the last ``k`` tokens of a lane to the token that
followed them the last time they occurred anywhere in the block, with a small confidence
counter. At each step every order that has a prediction moves the lane's table: the predicted
token gets the probability with which such predictions (same order, confidence and prior
probability bucket) came true so far in the block, the other tokens share the rest in their
current proportions. Orders apply one after the other, low to high; the successor-count
mixtures of :mod:`._successor_kernel` follow in the same pass over the row.

Only IEEE float64 ``+ - * /`` and comparisons (no ``log``/``exp``), no fused multiply-add (numba
compiles without ``fastmath``), integer tables: encoder and decoder compute the same bits.
"""

from __future__ import annotations

from typing import NamedTuple

import numba as nb
import numpy as np

from .. import wide_vectors
from . import _successor_kernel as successors
from ._context import context_hash as _context_hash

wide_vectors.install()  # before the kernels below compile

#: Probability buckets of the predicted token before adjustment: >= 1/4, 1/16, 1/64, less.
BUCKETS = 4
CONFIDENCES = 4
# Pseudo-tries at the current probability in every hit-rate estimate.
_PRIOR_WEIGHT = 2.0


class MatchState(NamedTuple):
    """Everything the match models of one block keep, ``n`` orders (see
    :class:`._successor_kernel.SuccessorState` for how numba passes it)."""

    #: ``(n,)`` int64: the context length of each order.
    orders: np.ndarray
    #: ``(n, slots)`` uint64: the context hash each slot holds.
    keys: np.ndarray
    #: ``(n, slots)`` int32: the token that followed that context last time, -1 for none.
    preds: np.ndarray
    #: ``(n, slots)`` int8: how many times in a row it came true, at most CONFIDENCES - 1.
    confs: np.ndarray
    #: ``(n, CONFIDENCES, BUCKETS)`` int64: predictions that came true, per confidence and
    #: probability bucket.
    hits: np.ndarray
    #: ``(n, CONFIDENCES, BUCKETS)`` int64: predictions made, likewise.
    tries: np.ndarray
    #: ``(n, lanes)`` int64: the prediction each lane's row used this step, -1 for none.
    lane_pred: np.ndarray
    #: ``(n, lanes)`` int64: its confidence.
    lane_conf: np.ndarray
    #: ``(n, lanes)`` int64: its probability bucket.
    lane_bucket: np.ndarray


def match_state(orders, lanes: int, slots: int) -> MatchState:
    """Empty state for ``orders`` (a 1-D array) over ``lanes`` rows, ``slots`` hash slots per
    order (a power of two)."""
    n = orders.shape[0]
    return MatchState(
        orders,
        np.zeros((n, slots), dtype=np.uint64),
        np.full((n, slots), -1, dtype=np.int32),
        np.zeros((n, slots), dtype=np.int8),
        np.zeros((n, CONFIDENCES, BUCKETS), dtype=np.int64),
        np.zeros((n, CONFIDENCES, BUCKETS), dtype=np.int64),
        np.full((n, lanes), -1, dtype=np.int64),
        np.zeros((n, lanes), dtype=np.int64),
        np.zeros((n, lanes), dtype=np.int64),
    )


@nb.njit(cache=True, nogil=True, inline="always")
def _bucket(q):  # pragma: no cover - compiled
    if q >= 0.25:
        return 0
    if q >= 0.0625:
        return 1
    if q >= 0.015625:
        return 2
    return 3


@nb.njit(cache=True, nogil=True)
def adjust_rows(freqs, out, M, hist, t, state, succ, first, stop):  # pragma: no cover
    """Apply every order's prediction, then the successor mixtures, to rows ``first .. stop -
    1`` of ``freqs`` ``(lanes, V)`` and write them cumulative into ``out``.

    ``state`` is the match models' :class:`MatchState`, ``succ`` the successor models'
    :class:`._successor_kernel.SuccessorState`, whose share choice
    (:func:`._successor_kernel.choose_shares`) is made for the step before. Records, per order
    and lane, the prediction used (``lane_pred``, -1 for none), its confidence and bucket, for
    :func:`observe_matches`. Rows are independent: disjoint ranges may run at once.
    """
    orders, keys, preds, confs = state.orders, state.keys, state.preds, state.confs
    hits, tries = state.hits, state.tries
    lane_pred, lane_conf, lane_bucket = state.lane_pred, state.lane_conf, state.lane_bucket
    V = freqs.shape[1]
    mask = np.uint64(keys.shape[1] - 1)
    n_orders = orders.shape[0]
    room = n_orders + succ.orders.shape[0] * succ.toks.shape[2]
    over_tok = np.empty(room, dtype=np.int64)
    over_val = np.empty(room, dtype=np.float64)
    inv_m = 1.0 / np.float64(M)
    for lane in range(first, stop):
        scale = 1.0  # applied to every token no order predicted
        n_over = 0
        for o in range(n_orders):
            lane_pred[o, lane] = -1
            k = orders[o]
            if t < k:
                continue
            h = _context_hash(hist, lane, t, k, o)
            slot = np.int64(h & mask)
            if keys[o, slot] != h or preds[o, slot] < 0:
                continue
            pred = preds[o, slot]
            conf = confs[o, slot]
            # Current probability of the prediction.
            idx = -1
            for i in range(n_over):
                if over_tok[i] == pred:
                    idx = i
            q = over_val[idx] if idx >= 0 else np.float64(freqs[lane, pred]) * inv_m * scale
            b = _bucket(q)
            lane_pred[o, lane] = pred
            lane_conf[o, lane] = conf
            lane_bucket[o, lane] = b
            # Observed hit rate, shrunk towards the current probability while evidence is thin.
            target = ((np.float64(hits[o, conf, b]) + _PRIOR_WEIGHT * q)
                      / (np.float64(tries[o, conf, b]) + _PRIOR_WEIGHT))
            rest = 1.0 - q
            if rest < 1e-9:
                continue
            factor = (1.0 - target) / rest
            scale *= factor
            for i in range(n_over):
                over_val[i] *= factor
            if idx < 0:
                idx = n_over
                over_tok[idx] = pred
                n_over += 1
            over_val[idx] = target
        scale, n_over = successors.mix_successors(freqs, lane, M, hist, t, succ, scale,
                                                  over_tok, over_val, n_over)
        if n_over:
            row_scale = scale * np.float64(M - V)
            for j in range(V):
                freqs[lane, j] = np.int64(np.float64(freqs[lane, j]) * inv_m * row_scale) + 1
            for i in range(n_over):
                freqs[lane, over_tok[i]] = np.int64(over_val[i] * np.float64(M - V)) + 1
            # The sum and the maximum vectorize; the first index holding the maximum is then
            # found by a scan that usually stops early (an argmax loop does not vectorize).
            acc = 0
            top_f = np.int64(-1)
            for j in range(V):
                f = freqs[lane, j]
                acc += f
                top_f = max(top_f, f)
            top = 0
            while freqs[lane, top] != top_f:
                top += 1
            # The floors (and float rounding) leave the sum a little off M: the largest entry
            # absorbs the difference.
            freqs[lane, top] += M - acc
        out[lane, 0] = 0
        run = 0
        for j in range(V):
            run += freqs[lane, j]
            out[lane, j + 1] = run


@nb.njit(cache=True, nogil=True)
def observe_matches(hist, t, symbols, active, state):  # pragma: no cover - compiled
    """Score the step's predictions, store ``symbols`` in ``hist`` and learn their contexts
    (``state``, a :class:`MatchState`, is updated in place)."""
    orders, keys, preds, confs = state.orders, state.keys, state.preds, state.confs
    hits, tries = state.hits, state.tries
    lane_pred, lane_conf, lane_bucket = state.lane_pred, state.lane_conf, state.lane_bucket
    lanes = symbols.shape[0]
    mask = np.uint64(keys.shape[1] - 1)
    for lane in range(lanes):
        if not active[lane]:
            continue
        y = symbols[lane]
        for o in range(orders.shape[0]):
            pred = lane_pred[o, lane]
            if pred >= 0:
                c, b = lane_conf[o, lane], lane_bucket[o, lane]
                tries[o, c, b] += 1
                if pred == y:
                    hits[o, c, b] += 1
        hist[lane, t] = y
        for o in range(orders.shape[0]):
            k = orders[o]
            if t < k:
                continue
            h = _context_hash(hist, lane, t, k, o)
            slot = np.int64(h & mask)
            if keys[o, slot] == h and preds[o, slot] == y:
                if confs[o, slot] < CONFIDENCES - 1:
                    confs[o, slot] += 1
            else:
                keys[o, slot] = h
                preds[o, slot] = y
                confs[o, slot] = 0
