"""Compiled twin of :func:`llm_codecs.coding.quantize.quantize` (plus the cumulative sum).

Every float operation is a float32 IEEE operation in the order the torch pipeline uses; numba
compiles without ``fastmath``, so LLVM neither reorders nor contracts ``p * r + c`` into a fused
multiply-add. Constants arrive as float32 arguments: a Python float literal would promote the
arithmetic to float64.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_F32_MAX = np.float32(np.finfo(np.float32).max)
_WEIGHT_SCALE = np.float32(2.0**32)


@nb.njit(cache=True, nogil=True)
def quantize_rows(x, M, out, inv_ln2, min_y, coeffs):  # pragma: no cover - compiled
    """Fill ``out`` ``(lanes, V + 1)`` with the cumulative tables of the float32 rows ``x``."""
    lanes, V = x.shape
    clean = np.empty(V, dtype=np.float32)
    weights = np.empty(V, dtype=np.int64)
    shifts = np.empty(V, dtype=np.float32)
    scale = M - V
    for row in range(lanes):
        # nan_to_num (NaN -> -inf, +inf -> float32 max), then the exact row maximum.
        peak = np.float32(-np.inf)
        for j in range(V):
            v = x[row, j]
            if v != v:
                v = np.float32(-np.inf)
            elif v == np.inf:
                v = _F32_MAX
            clean[j] = v
            if v > peak:
                peak = v
        # A row of only -inf gives NaN differences, which become y = 0: a uniform row.
        uniform = peak == -np.inf
        c0, c1, c2, c3 = coeffs[0], coeffs[1], coeffs[2], coeffs[3]
        c4, c5, c6 = coeffs[4], coeffs[5], coeffs[6]
        # Branch-free and unrolled so that LLVM vectorizes it (the Horner chain is long).
        for j in range(V):
            y = np.float32(np.float32(clean[j] - peak) * inv_ln2)
            y = min_y if y < min_y else y  # -inf included
            y = np.float32(0.0) if uniform else y
            k = np.float32(np.rint(y))
            r = np.float32(y - k)
            p = np.float32(np.float32(r * c0) + c1)
            p = np.float32(np.float32(p * r) + c2)
            p = np.float32(np.float32(p * r) + c3)
            p = np.float32(np.float32(p * r) + c4)
            p = np.float32(np.float32(p * r) + c5)
            p = np.float32(np.float32(p * r) + c6)
            clean[j] = np.float32(p * _WEIGHT_SCALE)
            shifts[j] = k
        total = 0
        for j in range(V):
            w = np.int64(clean[j]) >> np.int64(-shifts[j])
            weights[j] = w
            total += w
        # floor(w * scale / total) by a float64 reciprocal, corrected to the exact quotient:
        # the estimate is within one of it, and a 64-bit division per symbol is the slowest
        # step of the whole table otherwise.
        inv_total = 1.0 / np.float64(total)
        acc = 0
        top = 0
        top_w = np.int64(-1)
        for j in range(V):
            w = weights[j]
            if w > top_w:  # first maximal weight, as torch.argmax
                top_w = w
                top = j
            a = w * scale
            q = np.int64(np.float64(a) * inv_total)
            rem = a - q * total
            if rem < 0:
                q -= 1
            elif rem >= total:
                q += 1
            weights[j] = q + 1
            acc += q + 1
        weights[top] += M - acc
        out[row, 0] = 0
        run = 0
        for j in range(V):
            run += weights[j]
            out[row, j + 1] = run
