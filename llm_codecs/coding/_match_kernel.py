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

import numba as nb
import numpy as np

from . import _successor_kernel as successors
from ._context import context_hash as _context_hash

#: Probability buckets of the predicted token before adjustment: >= 1/4, 1/16, 1/64, less.
BUCKETS = 4
CONFIDENCES = 4
# Pseudo-tries at the current probability in every hit-rate estimate.
_PRIOR_WEIGHT = 2.0


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
def adjust_rows(freqs, out, M, hist, t, orders, keys, preds, confs, hits, tries,
                lane_pred, lane_conf, lane_bucket, succ):  # pragma: no cover - compiled
    """Apply every order's prediction, then the successor mixtures, to ``freqs`` ``(lanes, V)``
    and write cumulative ``out``.

    Records, per order and lane, the prediction used (``lane_pred``, -1 for none), its confidence
    and bucket, for :func:`observe_matches`. ``succ`` is the successor models' state
    (:mod:`._successor_kernel`): ``(orders, shares, costs, choice, keys, toks, cnts, totals,
    lane_slot, lane_a, lane_g)``.
    """
    (s_orders, s_shares, s_costs, s_choice, s_keys, s_toks, s_cnts, s_totals, s_slot, s_a,
     s_g) = succ
    lanes, V = freqs.shape
    mask = np.uint64(keys.shape[1] - 1)
    n_orders = orders.shape[0]
    room = n_orders + s_orders.shape[0] * s_toks.shape[2]
    over_tok = np.empty(room, dtype=np.int64)
    over_val = np.empty(room, dtype=np.float64)
    successors.choose_shares(s_costs, s_choice)
    inv_m = 1.0 / np.float64(M)
    for lane in range(lanes):
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
        scale, n_over = successors.mix_successors(
            freqs, lane, M, hist, t, s_orders, s_shares, s_choice, s_keys, s_toks, s_cnts,
            s_totals, s_slot, s_a, s_g, scale, over_tok, over_val, n_over)
        if n_over:
            row_scale = scale * np.float64(M - V)
            for j in range(V):
                freqs[lane, j] = np.int64(np.float64(freqs[lane, j]) * inv_m * row_scale) + 1
            for i in range(n_over):
                freqs[lane, over_tok[i]] = np.int64(over_val[i] * np.float64(M - V)) + 1
            acc = 0
            top = 0
            top_f = np.int64(-1)
            for j in range(V):
                f = freqs[lane, j]
                acc += f
                if f > top_f:
                    top_f = f
                    top = j
            # The floors (and float rounding) leave the sum a little off M: the largest entry
            # absorbs the difference.
            freqs[lane, top] += M - acc
        out[lane, 0] = 0
        run = 0
        for j in range(V):
            run += freqs[lane, j]
            out[lane, j + 1] = run


@nb.njit(cache=True, nogil=True)
def observe_matches(hist, t, symbols, active, orders, keys, preds, confs, hits, tries,
                    lane_pred, lane_conf, lane_bucket):  # pragma: no cover - compiled
    """Score the step's predictions, store ``symbols`` in ``hist`` and learn their contexts."""
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
