"""Integer primitives and exactly specified tables of the portable engine.

Every function here maps integer tensors to integer tensors with operations whose result is
defined bit for bit by the maths alone: int64 addition, multiplication, shifts, comparisons and
floor division (torch's integer kernels are exact on every CPU and on CUDA), plus two float
operations used only where their result is exact (:func:`bit_length`, :func:`isqrt`, see
there). The constants (``exp2`` table, rotary tables, ``log2 e``) come from Python's
:mod:`decimal` arithmetic, whose ``ln``, ``exp`` and ``sqrt`` are correctly rounded by
specification, and from integer polynomials; never from the platform's ``libm``.

``docs/format.md`` ("The portable engine") restates each definition for a reimplementation.
"""

from __future__ import annotations

import decimal
from functools import cache, lru_cache

import numpy as np
import torch

__all__ = [
    "EXP2_FRAC_BITS",
    "EXP2_ONE_BITS",
    "ROPE_BITS",
    "bit_length",
    "decimal_constant",
    "exp2_neg",
    "exp2_table",
    "int8_matmul",
    "isqrt",
    "rope_tables",
    "shift_round",
]

#: Fraction bits of the exponent fed to :func:`exp2_neg` (and of attention scores in log2 units).
EXP2_FRAC_BITS = 12
#: ``exp2_neg`` returns Q15 values: ``2**0`` is ``1 << 15``.
EXP2_ONE_BITS = 15
#: Fraction bits of the rotary cosines and sines.
ROPE_BITS = 15
# Fixed-point precision of the rotary angle computation (below 2**62 in every product).
_ANGLE_BITS = 40
_POLY_BITS = 30
# Positions per chunk of the rotary tables.
_ROPE_CHUNK = 4096
# Chunks kept: the first few serve every block of ordinary length without recomputing, and the
# cache stays a few MiB whatever lengths were decoded.
_ROPE_CACHED_CHUNKS = 8
# Largest inner dimension whose float32 products of int8 values sum exactly: K * 127**2 < 2**24.
_EXACT_F32_K = 1024


def decimal_constant(expression: str, precision: int = 50) -> decimal.Decimal:
    """Evaluate a named constant in :mod:`decimal` at ``precision`` digits.

    Only ``"ln2"`` and ``"pi"`` are needed: ``ln`` is correctly rounded by the decimal
    specification; pi is summed from Machin's formula with integer arithmetic.
    """
    ctx = decimal.Context(prec=precision, rounding=decimal.ROUND_HALF_EVEN)
    if expression == "ln2":
        return ctx.ln(decimal.Decimal(2))
    if expression == "pi":
        scale = 10 ** (precision + 10)

        def arctan_inv(x: int) -> int:
            total, term, n, sign = 0, scale // x, 1, 1
            while term:
                total += sign * (term // n)
                term //= x * x
                n += 2
                sign = -sign
            return total

        pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
        return ctx.divide(decimal.Decimal(pi), decimal.Decimal(scale))
    raise ValueError(expression)


def fixed(value: decimal.Decimal, bits: int) -> int:
    """``round(value * 2**bits)`` (half to even) as a Python int."""
    return int((value * (1 << bits)).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


@cache
def _exp2_table_list() -> tuple[int, ...]:
    # 2**(-j / 2**EXP2_FRAC_BITS) in Q15 for j = 0 .. 2**EXP2_FRAC_BITS - 1, from decimal exp/ln
    # (correctly rounded at 40 digits; no entry lies within 1e-30 of a rounding tie).
    ctx = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
    ln2 = decimal_constant("ln2", 45)
    size = 1 << EXP2_FRAC_BITS
    out = []
    for j in range(size):
        v = ctx.exp(ctx.divide(ctx.multiply(decimal.Decimal(-j), ln2), decimal.Decimal(size)))
        out.append(fixed(v, EXP2_ONE_BITS))
    return tuple(out)


def exp2_table(device="cpu") -> torch.Tensor:
    """int64 ``round(2**(-j / 4096) * 2**15)`` for ``j`` in ``0 .. 4095`` (first entry 32768)."""
    return _cached_tensor("exp2", device, lambda: np.array(_exp2_table_list(), dtype=np.int64))


_tensor_cache: dict = {}


def _cached_tensor(name, device, build) -> torch.Tensor:
    key = (name, str(device))
    table = _tensor_cache.get(key)
    if table is None:
        table = torch.from_numpy(build()).to(device)
        _tensor_cache[key] = table
    return table


def exp2_neg(t: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``2**(-t / 4096)`` in Q15 for int64 ``t >= 0`` (Q12): ``table[t % 4096] >> (t // 4096)``.

    The shift is capped at 62, so a large ``t`` gives 0.
    """
    frac = torch.bitwise_and(t, (1 << EXP2_FRAC_BITS) - 1)
    whole = torch.bitwise_right_shift(t, EXP2_FRAC_BITS).clamp_(max=62)
    return torch.bitwise_right_shift(table[frac], whole)


def shift_round(v: torch.Tensor, s) -> torch.Tensor:
    """``v * 2**-s`` rounded half up (``floor(v / 2**s + 1/2)``) for ``s >= 0``; ``v << -s`` else.

    ``s`` is an int or an int64 tensor broadcastable against ``v``.
    """
    if isinstance(s, int):
        if s <= 0:
            return torch.bitwise_left_shift(v, -s)
        return torch.bitwise_right_shift(v + (1 << (s - 1)), s)
    right = s.clamp(min=0)
    left = (-s).clamp_(min=0)
    v = torch.bitwise_left_shift(v, left)
    half = torch.bitwise_right_shift(torch.bitwise_left_shift(torch.ones_like(right), right), 1)
    return torch.bitwise_right_shift(v + half, right)


def bit_length(x: torch.Tensor) -> torch.Tensor:
    """Bits of each ``0 <= x < 2**53`` (0 for 0), like Python's ``int.bit_length``.

    ``x`` converts to float64 exactly below ``2**53``, and ``frexp`` only reads the exponent.
    """
    _, exponent = torch.frexp(x.to(torch.float64))
    return exponent.to(torch.int64)


def isqrt(n: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(n))`` for int64 ``0 <= n < 2**62``, exactly.

    A float64 square root lands within one of the answer (the conversion of ``n`` and ``sqrt``
    are each within half an ulp); one integer correction each way makes it exact.
    """
    r = torch.sqrt(n.to(torch.float64)).floor_().to(torch.int64)
    r = r - (r * r > n).to(torch.int64)
    return r + ((r + 1) * (r + 1) <= n).to(torch.int64)


def int8_matmul(x: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    """Exact ``x @ w_t`` of int8 ``(m, k)`` by int8 ``(k, n)`` as int32 ``(m, n)``.

    Integer sums do not depend on their order, so any kernel gives the same result: torch's
    int8 GEMM where it exists for the device and shape, otherwise float32 GEMMs over chunks of
    at most 1024 of ``k`` (every partial sum of int8 products is then an integer below
    ``2**24``, which float32 holds exactly whatever the order or fusion), added as integers.
    ``k`` is at most ``2**14`` (:data:`~llm_codecs.portable.weights.MAX_INNER`), so every sum
    is below ``2**28`` and fits int32.
    """
    m, k = x.shape
    if x.device.type == "cpu" or (m > 16 and k % 8 == 0 and w_t.shape[1] % 8 == 0):
        try:
            return torch._int_mm(x, w_t)
        except (RuntimeError, AttributeError, NotImplementedError):
            pass
    return float_exact_matmul(x, w_t)


def float_exact_matmul(x: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    """The float32 path of :func:`int8_matmul` (exact; also used to check the int8 kernel)."""
    k = x.shape[1]
    out = None
    for begin in range(0, k, _EXACT_F32_K):
        end = min(k, begin + _EXACT_F32_K)
        part = (x[:, begin:end].to(torch.float32) @ w_t[begin:end].to(torch.float32))
        part = part.to(torch.int32)
        out = part if out is None else out + part
    if out is None:
        out = torch.zeros((x.shape[0], w_t.shape[1]), dtype=torch.int32, device=x.device)
    return out


# -- rotary tables ----------------------------------------------------------------------------

@cache
def _rope_frequencies(head_dim: int, theta_text: str) -> np.ndarray:
    """Q40 angular frequencies ``theta**(-2i/head_dim)`` (decimal ``exp``/``ln``)."""
    ctx = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
    theta = decimal.Decimal(theta_text)
    ln_theta = ctx.ln(theta)
    out = []
    for i in range(0, head_dim, 2):
        exponent = ctx.divide(ctx.multiply(decimal.Decimal(-i), ln_theta),
                              decimal.Decimal(head_dim))
        out.append(fixed(ctx.exp(exponent), _ANGLE_BITS))
    return np.array(out, dtype=np.int64)


@cache
def _trig_constants() -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    pi = decimal_constant("pi", 50)
    two_pi = fixed(2 * pi, _ANGLE_BITS)
    half_pi = fixed(pi / 2, _ANGLE_BITS)
    ctx = decimal.Context(prec=40)
    # Taylor coefficients (Q30) of sin and cos on [0, pi/2]: degree 17 and 18 leave an error
    # far below the Q15 output's half unit.
    sin_c = tuple(fixed(ctx.divide(decimal.Decimal((-1) ** k), decimal.Decimal(_fact(2 * k + 1))),
                        _POLY_BITS) for k in range(9))
    cos_c = tuple(fixed(ctx.divide(decimal.Decimal((-1) ** k), decimal.Decimal(_fact(2 * k))),
                        _POLY_BITS) for k in range(10))
    return two_pi, half_pi, sin_c, cos_c


def _fact(n: int) -> int:
    out = 1
    for i in range(2, n + 1):
        out *= i
    return out


def _poly_even(x2: np.ndarray, coeffs: tuple[int, ...]) -> np.ndarray:
    """Horner in Q30: ``sum c_k x2**k`` for ``x2`` in Q30 (floor shifts)."""
    acc = np.full_like(x2, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = ((acc * x2) >> _POLY_BITS) + c
    return acc


def _rope_chunk(chunk: int, head_dim: int, theta_text: str) -> tuple[np.ndarray, np.ndarray]:
    """Q15 cos and sin ``(_ROPE_CHUNK, head_dim)`` for positions of chunk ``chunk``."""
    freqs = _rope_frequencies(head_dim, theta_text)
    two_pi, half_pi, sin_c, cos_c = _trig_constants()
    pos = np.arange(chunk * _ROPE_CHUNK, (chunk + 1) * _ROPE_CHUNK, dtype=np.int64)
    # angle = pos * freq mod 2pi in Q40, with pos = hi * 4096 + lo so that every product stays
    # below 2**63 for positions below 2**32 (modular arithmetic: the same integer).
    f = freqs[None, :] % two_pi
    f_hi = (f << 12) % two_pi
    angle = ((pos[:, None] >> 12) * f_hi % two_pi + (pos[:, None] & 4095) * f) % two_pi
    quadrant = np.minimum(angle // half_pi, 3)
    r = (angle - quadrant * half_pi) >> (_ANGLE_BITS - _POLY_BITS)  # Q30 in [0, pi/2]
    r2 = (r * r) >> _POLY_BITS
    s = (_poly_even(r2, sin_c) * r) >> _POLY_BITS
    c = _poly_even(r2, cos_c)
    sin_q = np.choose(quadrant, [s, c, -s, -c])
    cos_q = np.choose(quadrant, [c, -s, -c, s])
    shift = _POLY_BITS - ROPE_BITS
    sin_q = (sin_q + (1 << (shift - 1))) >> shift
    cos_q = (cos_q + (1 << (shift - 1))) >> shift
    return (np.concatenate([cos_q, cos_q], axis=1), np.concatenate([sin_q, sin_q], axis=1))


@lru_cache(maxsize=_ROPE_CACHED_CHUNKS)
def _cached_rope_chunk(chunk: int, head_dim: int, theta_text: str, device: str):
    cos, sin = _rope_chunk(chunk, head_dim, theta_text)
    return torch.from_numpy(cos).to(device), torch.from_numpy(sin).to(device)


def rope_tables(positions: int, head_dim: int, theta: float, device="cpu"):
    """Q15 int64 ``cos`` and ``sin`` ``(positions, head_dim)`` of the rotary embedding.

    Position ``p``, frequency ``i``: angle ``p * round(theta**(-2i/d) * 2**40) mod
    round(2 pi 2**40)``, its quadrant, and Taylor polynomials in Q30 fixed point, rounded to
    Q15 (``docs/format.md``). Each value depends only on ``p``, ``i``, ``d`` and ``theta``.
    The tables are built from chunks of positions, the latest few kept: callers ask for the
    positions they reach (a long lane's tables grow with it), never for one table that lives
    as long as the process.
    """
    theta_text = repr(float(theta))
    chunks = [_cached_rope_chunk(c, head_dim, theta_text, str(device))
              for c in range(-(-max(positions, 1) // _ROPE_CHUNK))]
    if len(chunks) == 1:
        return chunks[0][0][:positions], chunks[0][1][:positions]
    return (torch.cat([c for c, _ in chunks])[:positions],
            torch.cat([s for _, s in chunks])[:positions])
