"""numba kernels of the portable engine's CPU path: the arithmetic of :mod:`.step`, fused.

Each kernel computes, value for value, what the torch operations of :mod:`.step` compute (a test
checks they agree on every step of real text), in one pass per layer stage instead of a dozen
tensor operations: at a small model's sizes the operations' own overhead and memory traffic,
not the arithmetic, were the cost. All arithmetic is on int64 (exact, whatever instructions
numba picks for this CPU); shift amounts stay in ``[0, 63)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

_OPTS = {"cache": True, "nogil": True, "boundscheck": False}
ACT_LIMIT = 1 << 30
RESIDUAL_LIMIT = 1 << 46
KV_LIMIT = (1 << 24) - 1
QKV_LIMIT = 1 << 40


@numba.njit(inline="always", **_OPTS)
def shift_round(v, s):
    if s > 0:
        return (v + (np.int64(1) << (s - 1))) >> s
    if s == 0:
        return v
    return v << (-s)


@numba.njit(inline="always", **_OPTS)
def shift_floor(v, s):
    if s >= 0:
        return v >> s
    return v << (-s)


@numba.njit(inline="always", **_OPTS)
def div_round(a, b):
    return (2 * a + b) // (2 * b)


@numba.njit(inline="always", **_OPTS)
def bit_length(x):
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


@numba.njit(inline="always", **_OPTS)
def isqrt(n):
    r = np.int64(math.floor(math.sqrt(np.float64(n))))
    if r * r > n:
        r -= 1
    if (r + 1) * (r + 1) <= n:
        r += 1
    return r


@numba.njit(inline="always", **_OPTS)
def _cut_row(row, sh, amax_s, xq_row):
    inv = div_round(np.int64(127) << 40, amax_s)
    for i in range(row.shape[0]):
        xq_row[i] = shift_round(shift_floor(row[i], sh) * inv, 40)


@numba.njit(**_OPTS)
def norm_quant(h, eps70, xq, factor):
    """RMS-normalize and cut rows of Q16 ``h`` to int8 ``xq``; row factors to ``factor``."""
    rows, d = h.shape
    for r in range(rows):
        amax = np.int64(0)
        for i in range(d):
            a = abs(h[r, i])
            if a > amax:
                amax = a
        sh = bit_length(amax) - 24
        amax_s = np.int64(0)
        ss = np.int64(0)
        for i in range(d):
            v = shift_floor(h[r, i], sh)
            ss += v * v
            if abs(v) > amax_s:
                amax_s = abs(v)
        amax_s = max(amax_s, np.int64(1))
        es = 2 * sh + 38
        ms = ss // d + shift_round(np.int64(eps70), max(es, 0))
        rms = max(isqrt(ms), np.int64(1))
        factor[r] = div_round(amax_s << 24, 127 * rms)
        _cut_row(h[r], sh, amax_s, xq[r])


@numba.njit(inline="always", **_OPTS)
def _quant_row(row, xq_row):
    amax = np.int64(0)
    for i in range(row.shape[0]):
        a = abs(row[i])
        if a > amax:
            amax = a
    sh = bit_length(amax) - 24
    amax_s = np.int64(0)
    for i in range(row.shape[0]):
        a = abs(shift_floor(row[i], sh))
        if a > amax_s:
            amax_s = a
    amax_s = max(amax_s, np.int64(1))
    _cut_row(row, sh, amax_s, xq_row)
    return div_round(amax_s << 8, np.int64(127)), sh


@numba.njit(**_OPTS)
def linear_norm_out(acc, mult, shift, factor, bias, limit, out):
    """``out = clamp(round(round(acc * mult, 15) * factor, shift - 7) + bias, +-limit)``."""
    rows, cols = acc.shape
    for r in range(rows):
        f = factor[r]
        for o in range(cols):
            u = shift_round(np.int64(acc[r, o]) * mult[o], 15)
            y = shift_round(u * f, shift[o] - 7) + bias[o]
            out[r, o] = min(max(y, -limit), limit)


@numba.njit(**_OPTS)
def head_logits(acc, mult, shift, factor, out):
    """float32 logits ``round(round(acc * mult, 15) * factor, shift - 7) / 2**16``."""
    rows, cols = acc.shape
    for r in range(rows):
        f = factor[r]
        for o in range(cols):
            u = shift_round(np.int64(acc[r, o]) * mult[o], 15)
            y = shift_round(u * f, shift[o] - 7)
            out[r, o] = np.float32(np.float64(y) * 1.52587890625e-05)


@numba.njit(**_OPTS)
def residual_add(h, acc, mult, shift, factor, sh, frac_bits):
    """``h += round(round(acc * mult, 15) * F, shift + frac - 23 - sh)``, clamped to 2**46."""
    rows, cols = acc.shape
    for r in range(rows):
        f = factor[r]
        s_row = frac_bits - 23 - sh[r]
        for o in range(cols):
            u = shift_round(np.int64(acc[r, o]) * mult[o], 15)
            y = h[r, o] + shift_round(u * f, shift[o] + s_row)
            h[r, o] = min(max(y, -RESIDUAL_LIMIT), RESIDUAL_LIMIT)


@numba.njit(**_OPTS)
def quant_rows(a, xq, factor, sh):
    """Cut rows of fixed-point ``a`` to int8 ``xq`` with their factors and shifts."""
    for r in range(a.shape[0]):
        f, s = _quant_row(a[r], xq[r])
        factor[r] = f
        sh[r] = s


@numba.njit(**_OPTS)
def silu_mul_quant(gate_up, sigmoid, work, xq, factor, sh):
    """``silu(gate) * up`` (Q16, clamped) cut to int8, for ``gate_up = [gate | up]`` rows."""
    rows = gate_up.shape[0]
    inner = gate_up.shape[1] // 2
    top = sigmoid.shape[0] - 1
    # The table lookups in a loop of their own: with them inside, the arithmetic around them
    # does not vectorize (2.2x slower).
    low = np.empty(inner, dtype=np.int64)
    for r in range(rows):
        for i in range(inner):
            g = min(max(gate_up[r, i], -ACT_LIMIT), ACT_LIMIT)
            low[i] = min(shift_round(abs(g) * 94548, 20), top)
        for i in range(inner):
            low[i] = sigmoid[low[i]]
        for i in range(inner):
            g = min(max(gate_up[r, i], -ACT_LIMIT), ACT_LIMIT)
            u = min(max(gate_up[r, inner + i], -ACT_LIMIT), ACT_LIMIT)
            sig = (np.int64(1) << 15) - low[i] if g >= 0 else low[i]
            silu = shift_round(g * sig, 15)
            m = shift_round(silu * u, 16)
            work[r, i] = min(max(m, -RESIDUAL_LIMIT), RESIDUAL_LIMIT)
        f, s = _quant_row(work[r], xq[r])
        factor[r] = f
        sh[r] = s


@numba.njit(**_OPTS)
def head_norm(qkv, first, count, D, gain, eps70):
    """Qwen3's per-head RMSNorm, in place, of heads ``first .. first + count - 1`` of ``qkv``."""
    for r in range(qkv.shape[0]):
        for hh in range(first, first + count):
            base = hh * D
            amax = np.int64(0)
            for i in range(D):
                a = abs(qkv[r, base + i])
                if a > amax:
                    amax = a
            sh = bit_length(amax) - 24
            ss = np.int64(0)
            for i in range(D):
                v = shift_floor(qkv[r, base + i], sh)
                ss += v * v
            ms = ss // D + shift_round(np.int64(eps70), max(2 * sh + 38, 0))
            rms = max(isqrt(ms), np.int64(1))
            for i in range(D):
                y = div_round(shift_floor(qkv[r, base + i], sh) * gain[i], rms)
                qkv[r, base + i] = min(max(y, -QKV_LIMIT), QKV_LIMIT)


@numba.njit(inline="always", **_OPTS)
def _cache_vector(x, bits, lim, cache, at_exps, at):
    """Store one Q12 key or value vector ``x`` in the cache: itself (``bits`` 0, engine
    ``int8-v1``), or ``bits``-bit mantissas with their power-of-two exponent (``int8-v2``)."""
    e = np.int64(0)
    if bits > 0:
        amax = np.int64(0)
        for i in range(x.shape[0]):
            amax = max(amax, abs(x[i]))
        e = max(bit_length(amax) - bits, 0)
    for i in range(x.shape[0]):
        cache[i] = min(max(shift_round(x[i], e), -lim), lim)
    at_exps[at] = e


@numba.njit(inline="always", **_OPTS)
def _write_key_value(qkv, row, cos, sin, heads, kv_heads, lane_keys, lane_values, key_exps,
                     value_exps, at, bits, kv):
    """Rotate this row's keys and cache them and its values at index ``at`` of ``lane_keys``
    ``(K, D, slots)``, ``lane_values`` ``(K, slots, D)`` and their exponents ``(K, slots)``
    (:func:`_cache_vector`); ``kv`` ``(2, D)`` is scratch."""
    D = cos.shape[0]
    half = D // 2
    lim = (np.int64(1) << bits) - 1 if bits > 0 else np.int64(KV_LIMIT)
    for kh in range(kv_heads):
        kb = (heads + kh) * D
        vb = (heads + kv_heads + kh) * D
        for i in range(D):
            if i < half:
                x = qkv[row, kb + i] * cos[i] - qkv[row, kb + i + half] * sin[i]
            else:
                x = qkv[row, kb + i] * cos[i] + qkv[row, kb + i - half] * sin[i]
            kv[0, i] = min(max(shift_round(shift_round(x, 15), 4), -KV_LIMIT), KV_LIMIT)
            kv[1, i] = min(max(shift_round(qkv[row, vb + i], 4), -KV_LIMIT), KV_LIMIT)
        _cache_vector(kv[0], bits, lim, lane_keys[kh, :, at], key_exps[kh], at)
        _cache_vector(kv[1], bits, lim, lane_values[kh, at], value_exps[kh], at)


@numba.njit(inline="always", **_OPTS)
def _rotated_query(qkv, row, qb, cos, sin, qrot, qq):
    """One head's rotated query as 16-bit mantissas into ``qq``; returns their exponent."""
    D = cos.shape[0]
    half = D // 2
    amax = np.int64(0)
    for i in range(D):
        if i < half:
            x = qkv[row, qb + i] * cos[i] - qkv[row, qb + i + half] * sin[i]
        else:
            x = qkv[row, qb + i] * cos[i] + qkv[row, qb + i - half] * sin[i]
        qrot[i] = shift_round(x, 15)
        if abs(qrot[i]) > amax:
            amax = abs(qrot[i])
    e_q = max(bit_length(amax) - 15, 0)
    for i in range(D):
        qq[i] = shift_round(qrot[i], e_q)
    return e_q


@numba.njit(inline="always", **_OPTS)
def _attend_head(qq, e_q, keys, values, key_exps, value_exps, lo, n, bits, score_mult, exp2,
                 scratch, out_row, qb):
    """One query head's attention over cache indices ``lo .. lo + n - 1``: Q12 into
    ``out_row[qb : qb + D]``.

    ``qq`` holds the query's 16-bit mantissas (exponent ``e_q``); ``keys`` ``(D, slots)`` and
    ``values`` ``(slots, D)`` the cached mantissas, ``key_exps`` and ``value_exps`` their
    exponents; ``scratch`` is :func:`_head_scratch`'s. Keys are slot-minor so that the scores of
    all slots accumulate one query component at a time, a contiguous row each, without a
    horizontal sum per slot. Every sum is exact (``docs/format.md``): with 8-bit mantissas
    (``bits`` 1 .. 7) a score is below 2**31 and summed in int32; otherwise products are summed
    in float64, every partial sum an integer below 2**53 (each product is below 2**39, at most
    256 of them in a score, at most 8,192 slots, the largest ``context``, in an output), and
    float64 multiply-adds vectorize where int64 multiplies do not. The rows are sliced at
    ``lo`` once rather than indexed at ``lo + j``: numba cannot tell that such an index is not
    negative, and its wraparound check kept the loops from vectorizing (2.3x slower).
    """
    q32, dots32, dots, z, weights, acc = scratch
    D = qq.shape[0]
    key_exps = key_exps[lo : lo + n]
    value_exps = value_exps[lo : lo + n]
    if 0 < bits < 8:
        for i in range(D):
            q32[i] = np.int32(qq[i])
        for j in range(n):
            dots32[j] = 0
        # Four query components per pass over the slots: a quarter of the passes, each with
        # its loop set-up, loads and stores of the sums (10-13% of the step kernel's time).
        i = 0
        while i + 4 <= D:
            q0, q1, q2, q3 = q32[i], q32[i + 1], q32[i + 2], q32[i + 3]
            r0 = keys[i, lo : lo + n]
            r1 = keys[i + 1, lo : lo + n]
            r2 = keys[i + 2, lo : lo + n]
            r3 = keys[i + 3, lo : lo + n]
            for j in range(n):
                dots32[j] += (q0 * np.int32(r0[j]) + q1 * np.int32(r1[j])
                              + q2 * np.int32(r2[j]) + q3 * np.int32(r3[j]))
            i += 4
        while i < D:
            qi = q32[i]
            key_row = keys[i, lo : lo + n]
            for j in range(n):
                dots32[j] += qi * np.int32(key_row[j])
            i += 1
        for j in range(n):
            dots[j] = np.float64(dots32[j])
    else:
        for j in range(n):
            dots[j] = 0.0
        for i in range(D):
            qi = qq[i]
            key_row = keys[i, lo : lo + n]
            for j in range(n):
                dots[j] += qi * np.float64(key_row[j])
    zmax = np.int64(-(1 << 62))
    for j in range(n):
        zj = shift_round((np.int64(dots[j]) << key_exps[j]) * score_mult, 30 - e_q)
        z[j] = zj
        zmax = max(zmax, zj)
    total = np.int64(0)
    for j in range(n):
        t = zmax - z[j]
        pj = exp2[t & 4095] >> min(t >> 12, 62)
        z[j] = pj
        total += pj
    inv = div_round(np.int64(1) << 45, total)
    for j in range(n):
        weights[j] = np.float64(shift_round(z[j] * inv, 30) << value_exps[j])
    for i in range(D):
        acc[i] = 0.0
    for j in range(n):
        weight = weights[j]
        if weight == 0.0:  # exact: adds nothing
            continue
        value = values[lo + j]
        for i in range(D):
            acc[i] += weight * np.float64(value[i])
    for i in range(D):
        out_row[qb + i] = shift_round(np.int64(acc[i]), 15)


@numba.njit(inline="always", **_OPTS)
def _head_scratch(D, slots):
    """:func:`_attend_head`'s scratch arrays for ``D``-dimensional heads over ``slots`` slots."""
    return (np.empty(D, dtype=np.int32), np.empty(slots, dtype=np.int32),
            np.empty(slots, dtype=np.float64), np.empty(slots, dtype=np.int64),
            np.empty(slots, dtype=np.float64), np.empty(D, dtype=np.float64))


@numba.njit(**_OPTS)
def attention(qkv, cos, sin, keys, values, key_exps, value_exps, slot, n, heads, kv_heads,
              score_mult, exp2, bits, out):
    """Rotary embedding, cache write and attention of one step for every lane.

    ``qkv`` ``(lanes, (H + 2K) * D)`` Q16; ``keys`` ``(lanes, K, D, slots)``, ``values``
    ``(lanes, K, slots, D)`` and their exponents ``(lanes, K, slots)``: the cache of
    ``bits``-bit mantissas (0: the Q12 values themselves, engine ``int8-v1``), this step's
    written at ``slot`` (:func:`_cache_vector`); ``out`` ``(lanes, H * D)`` Q12.
    """
    lanes = qkv.shape[0]
    D = cos.shape[0]
    G = heads // kv_heads
    qrot = np.empty(D, dtype=np.int64)
    qq = np.empty(D, dtype=np.float64)
    kv = np.empty((2, D), dtype=np.int64)
    scratch = _head_scratch(D, n)
    for r in range(lanes):
        _write_key_value(qkv, r, cos, sin, heads, kv_heads, keys[r], values[r], key_exps[r],
                         value_exps[r], slot, bits, kv)
        for hh in range(heads):
            kh = hh // G
            e_q = _rotated_query(qkv, r, hh * D, cos, sin, qrot, qq)
            _attend_head(qq, e_q, keys[r, kh], values[r, kh], key_exps[r, kh],
                         value_exps[r, kh], 0, n, bits, score_mult, exp2, scratch, out[r],
                         hh * D)


@numba.njit(**_OPTS)
def attention_chunk(qkv, cos, sin, keys, values, key_exps, value_exps, first, offset, chunk,
                    window, heads, kv_heads, score_mult, exp2, bits, out):
    """:func:`attention` for ``chunk`` consecutive positions of every lane at once (the
    encoder knows every token, so a block's positions need not wait for each other).

    ``qkv`` ``(lanes * chunk, (H + 2K) * D)`` Q16, lane-major (row ``lane * chunk + c`` is
    position ``first + c``); ``cos``, ``sin`` from position ``first``; ``keys``
    ``(lanes, K, D, room)``, ``values`` ``(lanes, K, room, D)`` and their exponents
    ``(lanes, K, room)``: index ``b`` holds position ``first - offset + b``, the ``window - 1``
    before ``offset`` filled by the chunks before, this chunk's written here. Position ``p``
    attends to positions ``max(0, p - window + 1) .. p``: the slots :func:`attention` holds at
    that step, in another order, which the integer sums do not see. ``out`` as
    :func:`attention`'s, lane-major.
    """
    rows = qkv.shape[0]
    lanes = rows // chunk
    D = cos.shape[1]
    G = heads // kv_heads
    back = window - 1
    qrot = np.empty(D, dtype=np.int64)
    qq = np.empty(D, dtype=np.float64)
    kv = np.empty((2, D), dtype=np.int64)
    scratch = _head_scratch(D, window)
    for r in range(lanes):
        for c in range(chunk):
            _write_key_value(qkv, r * chunk + c, cos[c], sin[c], heads, kv_heads, keys[r],
                             values[r], key_exps[r], value_exps[r], offset + c, bits, kv)
        for c in range(chunk):
            row = r * chunk + c
            hi = offset + c
            lo = max(hi - back, offset - first)  # positions before 0 do not exist
            for hh in range(heads):
                kh = hh // G
                e_q = _rotated_query(qkv, row, hh * D, cos[c], sin[c], qrot, qq)
                _attend_head(qq, e_q, keys[r, kh], values[r, kh], key_exps[r, kh],
                             value_exps[r, kh], lo, hi - lo + 1, bits, score_mult, exp2,
                             scratch, out[row], hh * D)
