"""Compiled twin of :func:`llm_codecs.coding.quantize.quantize`, with token-cache mixing.

Every float operation is a float32 IEEE operation in the order the torch pipeline uses; numba
compiles without ``fastmath``, so LLVM neither reorders nor contracts ``p * r + c`` into a fused
multiply-add. Constants arrive as float32 arguments: a Python float literal would promote the
arithmetic to float64.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

_F32_MAX = np.float32(np.finfo(np.float32).max)
_WEIGHT_SCALE = np.float32(2.0**32)


@nb.njit(cache=True, nogil=True, inline="always")
def _scaled_floor(a, b, inv_b):  # pragma: no cover - compiled
    """``a // b`` for ``0 <= a < 2**63``, ``b > 0``, via a float64 reciprocal, corrected exactly."""
    q = np.int64(np.float64(a) * inv_b)
    rem = a - q * b
    # The float estimate is off by at most one; branch-free, as it runs for every table entry.
    return q - np.int64(rem < 0) + np.int64(rem >= b)


@nb.njit(cache=True, nogil=True, inline="always")
def log2_fixed(f, log_table):  # pragma: no cover - compiled
    """``log2(f)`` in 1/65536 bits for an integer ``f >= 1``: exponent by shifting into
    ``[4096, 8192)``, mantissa by ``log_table`` (``log2(1 + i / 4096)`` in 1/65536 bits)."""
    e = 0
    while f >= 8192:
        f >>= 1
        e += 1
    while f < 4096:
        f <<= 1
        e -= 1
    return (e + 12) * 65536 + log_table[f - 4096]


@nb.njit(cache=True, nogil=True, inline="always")
def _mixed_freq(w, total, inv_total, model_share, count, cache_share, seen,
                inv_seen):  # pragma: no cover - compiled
    """One symbol's table entry before the remainder (see :func:`mixed_rows`)."""
    f = _scaled_floor(w * model_share, total, inv_total) + 1
    if cache_share > 0 and count > 0:
        f += _scaled_floor(count * cache_share, seen, inv_seen)
    return f


@nb.njit(cache=True, nogil=True, inline="always")
def _cache_share(M, V, model_share, seen):  # pragma: no cover - compiled
    """The counts' part of the table: nothing until a token has been counted."""
    return M - V - model_share if seen > 0 else 0


_NEG_INF_BITS = np.int32(-8388608)  # 0xff800000
_POS_INF_BITS = np.int32(0x7F800000)
_F32_MAX_BITS = np.int32(0x7F7FFFFF)
_LOW31 = np.int32(0x7FFFFFFF)


@nb.njit(cache=True, nogil=True, inline="always")
def _row_peak(bits, box, box_float):  # pragma: no cover - compiled
    """The largest of a row of float32 (given as their int32 bits), NaN counted as -inf and
    +inf as the largest finite value.

    Compared as integers: flipping the magnitude bits of negative values orders the bit
    patterns as the floats. Integer maxima vectorize where float ones (NaN and signed zeros
    make their order matter) do not: a third of the tables' time. The only float the integer
    order ranks differently is -0 against +0, whose difference no later step sees (``v - peak``
    is then a zero whose sign the weight drops). ``box``, one int32, is viewed as ``box_float``
    to turn the bits back into the float."""
    top = np.int32(-2147483648)
    for j in range(bits.shape[0]):
        b = bits[j]
        b = _NEG_INF_BITS if (b & _LOW31) > _POS_INF_BITS else b
        b = _F32_MAX_BITS if b == _POS_INF_BITS else b
        key = b ^ _LOW31 if b < 0 else b
        top = key if key > top else top
    box[0] = top ^ _LOW31 if top < 0 else top
    return box_float[0]


@nb.njit(cache=True, nogil=True)
def mixed_rows(x, M, out, weights, totals, counts, seen, model_share,
               inv_ln2, min_y, coeffs):  # pragma: no cover - compiled
    """Frequency tables ``out`` ``(lanes, V)`` mixing each row's model weights with the token
    counts of the block so far.

    Symbol ``j`` gets ``floor(W_j * model_share / sum(W)) + floor(c_j * (M - V - model_share) /
    seen) + 1``, the remainder going to the row's first maximal ``W``: with ``seen == 0`` or
    ``model_share == M - V`` exactly :func:`~llm_codecs.coding.quantize.quantize`'s table. The
    model weights and their totals are kept in ``weights``/``totals`` for :func:`observe`.
    """
    lanes, V = x.shape
    scaled = np.empty(V, dtype=np.float32)
    shifts = np.empty(V, dtype=np.float32)
    c0, c1, c2, c3 = coeffs[0], coeffs[1], coeffs[2], coeffs[3]
    c4, c5, c6 = coeffs[4], coeffs[5], coeffs[6]
    cache_share = _cache_share(M, V, model_share, seen)
    model_share = M - V - cache_share
    inv_seen = 1.0 / np.float64(max(seen, 1))
    # The counts' part of each entry is the same in every row: computed once per step, it takes
    # the data-dependent branch (is the token counted?) out of the per-row loop.
    cached = np.zeros(V, dtype=np.int64)
    if cache_share > 0:
        for j in range(V):
            if counts[j] > 0:
                cached[j] = _scaled_floor(counts[j] * cache_share, seen, inv_seen)
    bits = x.view(np.int32)
    box = np.empty(1, dtype=np.int32)
    box_float = box.view(np.float32)
    for row in range(lanes):
        peak = _row_peak(bits[row], box, box_float)
        uniform = peak == -np.inf
        for j in range(V):
            v = x[row, j]
            # NaN counts as -inf, +inf as the largest finite value.
            v = np.float32(-np.inf) if v != v else v
            v = _F32_MAX if v == np.inf else v
            y = np.float32(np.float32(v - peak) * inv_ln2)
            y = min_y if y < min_y else y
            y = np.float32(0.0) if uniform else y
            k = np.float32(np.rint(y))
            r = np.float32(y - k)
            p = np.float32(np.float32(r * c0) + c1)
            p = np.float32(np.float32(p * r) + c2)
            p = np.float32(np.float32(p * r) + c3)
            p = np.float32(np.float32(p * r) + c4)
            p = np.float32(np.float32(p * r) + c5)
            p = np.float32(np.float32(p * r) + c6)
            scaled[j] = np.float32(p * _WEIGHT_SCALE)
            shifts[j] = k
        total = 0
        for j in range(V):
            w = np.int64(scaled[j]) >> np.int64(-shifts[j])
            weights[row, j] = w
            total += w
        totals[row] = total
        inv_total = 1.0 / np.float64(total)
        acc = 0
        top_w = np.int64(-1)
        for j in range(V):
            w = weights[row, j]
            top_w = w if w > top_w else top_w
            f = _scaled_floor(w * model_share, total, inv_total) + 1 + cached[j]
            acc += f
            out[row, j] = f
        top = 0  # the first maximal weight
        while weights[row, top] != top_w:
            top += 1
        out[row, top] += M - acc


@nb.njit(cache=True, nogil=True)
def observe(weights, totals, symbols, active, counts, seen, M, shares, costs,
            log_table):  # pragma: no cover - compiled
    """Charge each candidate share the (approximate) cost of the coded symbols, then count them.

    ``costs[i]`` falls by ``log2(f)`` in 1/65536 bits, where ``f`` is the symbol's table entry
    under ``shares[i]`` without the remainder: the code length ``log2(M / f)`` up to a constant
    that is the same for every share. Integer arithmetic only. Returns the new number of counted
    tokens.
    """
    lanes, V = weights.shape
    inv_seen = 1.0 / np.float64(max(seen, 1))
    for row in range(lanes):
        if not active[row]:
            continue
        s = symbols[row]
        w = weights[row, s]
        total = totals[row]
        inv_total = 1.0 / np.float64(total)
        for i in range(shares.shape[0]):
            cache_share = _cache_share(M, V, shares[i], seen)
            f = _mixed_freq(w, total, inv_total, M - V - cache_share, counts[s], cache_share,
                            seen, inv_seen)
            costs[i] -= log2_fixed(f, log_table)
    for row in range(lanes):
        if active[row]:
            counts[symbols[row]] += 1
            seen += 1
    return seen
