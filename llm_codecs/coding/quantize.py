"""Deterministic logits -> integer frequency tables for the rANS coder.

The encoder and the decoder must derive *bit-identical* tables from the same logits, and a row
must not change when it is quantized alone instead of inside a batch (random access decodes one
block with fewer rows), under another thread count, or on another device. Floating-point results
are only reproducible when every operation is correctly rounded and no reduction order is left to
the library, so the pipeline below uses nothing else:

1. ``float32`` conversion of the logits: exact from float16/bfloat16, a correctly rounded
   conversion from float64.
2. Row maximum: ``max`` is exact, so its reduction order does not matter.
3. ``y = (x - max) / ln 2``: two IEEE operations (subtract, multiply), each correctly rounded.
4. ``2**y`` without ``torch.exp``: ``k = round(y)`` (exact), ``r = y - k`` (exact, Sterbenz), a
   Horner polynomial for ``2**r`` - only IEEE ``*`` and ``+``, each a separate torch op, so no
   compiler can fuse a pair into an FMA - then ``W = trunc(2**r * 2**32) >> -k`` in int64, which
   is exactly ``floor(2**(r + k) * 2**32)``. ``torch.exp`` is avoided because its CPU kernel mixes
   a SIMD approximation with a scalar libm tail, and which elements fall in the tail depends on
   the tensor's size and the thread split; CUDA uses yet another implementation.
5. The row maximum gets exactly ``W = 2**32`` (``r = k = 0``, the polynomial's constant is 1) and
   no weight is larger, so the int64 products of step 6 stay below ``2**63``.
6. Integer normalization ``f = W * (M - V) // sum(W) + 1``: int64 arithmetic, and integer
   addition is associative, so the row sum is the same in any order.
7. The remainder ``M - sum(f)`` goes to the argmax of ``W`` (``torch.argmax`` returns the first
   maximal index): the first maximal logit, unless a logit within float32 rounding of the
   maximum comes before it - either way a pure function of the row.

Step 6 is the notes' ``f = floor(p * (M - V)) + 1`` with ``p = W / sum(W)`` evaluated in exact
rational arithmetic; every symbol keeps at least one count, so any token can be coded. The
approximations (float32 ``y``, a degree-6 polynomial, 32-bit weights) change ``p`` by a relative
~1e-6, which costs ~1e-12 bits per symbol: accuracy here only touches the rate, never losslessness.

Do not run this under ``torch.compile`` or another fusing compiler: fusion may contract the
multiply-adds into FMAs and change the bits on one side only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .scale import MAX_SCALE_BITS, MIN_SCALE_BITS, check_scale_bits

__all__ = ["MAX_SCALE_BITS", "MIN_SCALE_BITS", "cumulative", "quantize"]


# 2**32 * (M - V) < 2**63 for every M <= 2**31, so the int64 products of step 6 cannot overflow.
_WEIGHT_BITS = 32
# y below -40 (a probability ratio under 2**-40 to the maximum) gets weight 0, i.e. frequency 1,
# which it would get anyway; the clamp also keeps the int64 shift amounts below 64.
_MIN_Y = -40.0


def _f32(v: float) -> float:
    # Constants pre-rounded to float32: the kernels' scalar casts are then exact on every backend.
    return float(np.float32(v))


_INV_LN2 = _f32(1.0 / math.log(2.0))
# Taylor coefficients of 2**r = exp(r ln 2), highest degree first; |r| <= 1/2 leaves a relative
# truncation error of ~1e-7, about float32 rounding.
_EXP2_COEFFS = [_f32(math.log(2.0) ** n / math.factorial(n)) for n in range(6, -1, -1)]


def _weights(logits: torch.Tensor) -> torch.Tensor:
    """int64 ``floor(2**32 * exp(x - max))`` per row, bit-reproducible (module docstring)."""
    x = logits.to(torch.float32)
    # Non-finite inputs get a fixed meaning instead of NaN propagation (no host sync to check).
    x = torch.nan_to_num(x, nan=-math.inf, posinf=torch.finfo(torch.float32).max,
                         neginf=-math.inf)
    y = (x - x.amax(dim=1, keepdim=True)).mul_(_INV_LN2)
    # -inf - -inf (an all -inf row) is NaN: such a row becomes uniform.
    y = torch.nan_to_num_(y, nan=0.0, neginf=_MIN_Y).clamp_(min=_MIN_Y)
    k = torch.round(y)
    r = y.sub_(k)
    p = r * _EXP2_COEFFS[0]
    p.add_(_EXP2_COEFFS[1])
    for c in _EXP2_COEFFS[2:]:
        p.mul_(r).add_(c)
    W = p.mul_(float(1 << _WEIGHT_BITS)).to(torch.int64)  # p > 0: truncation is floor
    return W.bitwise_right_shift_(k.neg_().to(torch.int64))


def quantize(logits: torch.Tensor, scale_bits: int = 28) -> torch.Tensor:
    """Turn logits into integer frequency tables that sum to exactly ``2**scale_bits``.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(lanes, V)`` (a single row of shape ``(V,)`` is accepted too), any floating dtype,
        any device. NaN logits count as ``-inf``; a row of only ``-inf`` becomes uniform.
    scale_bits : int
        Table precision, ``24 <= scale_bits <= 31``.

    Returns
    -------
    torch.Tensor
        int64 frequencies with the shape of ``logits``, on its device: every entry ``>= 1``, every
        row summing to ``2**scale_bits``. The result of a row depends only on that row's values
        (not on the batch it came in, the thread count, or the device) - see the module docstring.

    Raises
    ------
    ValueError
        If ``scale_bits`` is out of range, ``logits`` is not a 1-D/2-D float tensor, or the
        vocabulary is empty or larger than ``2**(scale_bits - 4)`` (every symbol takes one count
        off the model's mass; beyond 1/16 of it the table would code poorly).
    """
    check_scale_bits(scale_bits)
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError("logits must be a floating-point torch.Tensor")
    if logits.dim() == 1:
        return quantize(logits.unsqueeze(0), scale_bits).squeeze(0)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (lanes, V), got {tuple(logits.shape)}")
    V = logits.shape[1]
    M = 1 << scale_bits
    if not 1 <= V <= M >> 4:
        raise ValueError(f"vocabulary size {V} does not fit scale_bits={scale_bits} "
                         f"(need 1 <= V <= {M >> 4})")
    if logits.shape[0] == 0:
        return torch.empty(logits.shape, dtype=torch.int64, device=logits.device)

    W = _weights(logits)
    total = W.sum(dim=1, keepdim=True)  # >= 2**32 (the maximum's weight), never zero
    freqs = torch.div(W * (M - V), total, rounding_mode="floor").add_(1)
    remainder = M - freqs.sum(dim=1, keepdim=True)  # in [0, V - 1]: one floor loss per symbol
    top = torch.argmax(W, dim=1, keepdim=True)
    freqs.scatter_add_(1, top, remainder)
    return freqs


def cumulative(freqs: torch.Tensor) -> torch.Tensor:
    """Cumulative frequencies with a leading zero.

    Parameters
    ----------
    freqs : torch.Tensor
        int64 ``(lanes, V)`` tables, e.g. from :func:`quantize`.

    Returns
    -------
    torch.Tensor
        int64 ``(lanes, V + 1)``: ``cum[:, s]`` is the start of symbol ``s``'s interval and
        ``cum[:, V]`` the row total. Integer cumsum is exact, so this is deterministic.
    """
    freqs = freqs.to(torch.int64)
    out = torch.zeros((*freqs.shape[:-1], freqs.shape[-1] + 1), dtype=torch.int64,
                      device=freqs.device)
    torch.cumsum(freqs, dim=-1, out=out[..., 1:])
    return out
