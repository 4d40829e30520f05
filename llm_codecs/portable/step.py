"""The portable engine's forward: a Llama-family step in integer arithmetic only.

Same interface as :class:`~llm_codecs.models.llama_step.LlamaStep` (one token per lane, a ring
KV cache), but every value is an integer and every operation exact, so the logits are a pure
function of the weights and the tokens: the same on every CPU instruction set, thread count,
torch version and on CUDA. Formats (``docs/format.md`` specifies each step):

- the residual stream is int64 Q16 (``value * 2**16``);
- a matrix's input row is cut to int8 with its own scale, the weights are int8 per output row
  (:mod:`.weights`), and the product is an exact integer (:func:`.arith.int8_matmul`);
- RMSNorm is integer: sum of squares, integer square root;
- attention: rotary tables from :func:`.arith.rope_tables`, queries as 16-bit mantissas,
  keys and values cached in Q12 (``int8-v1``) or as 8-bit mantissas with a power-of-two
  exponent per vector (``int8-v2``), scores in Q12 log2 units, ``exp2`` from a table; the float64
  matrix products there only ever sum integers below ``2**53``, which is exact in any order;
- SiLU through a sigmoid table built from the same ``exp2`` table.

The logits leave as float32 (``int / 2**16``, correctly rounded), for the codec's quantizer.
"""

from __future__ import annotations

import torch

from ..growth import capacity, grown
from . import ENGINE
from .arith import (
    bit_length,
    exp2_neg,
    exp2_table,
    int8_matmul,
    isqrt,
    rope_tables,
    shift_round,
)
from .weights import IntLinear, IntModel

__all__ = ["KV_MANTISSA_BITS", "IntegerLlamaStep", "kv_cut", "sigmoid_table"]

#: Bits (sign apart) of a cached key or value per engine version: ``int8-v1`` caches the Q12
#: values themselves (0), ``int8-v2`` 7-bit mantissas with a power-of-two exponent per vector,
#: a quarter of the memory the decoder streams at every step (``docs/format.md``).
KV_MANTISSA_BITS = {"int8-v1": 0, "int8-v2": 7}

# Keys, values and queries clamp: keeps every float64 product sum below 2**53 (format.md).
_KV_LIMIT = (1 << 24) - 1
_ACT_LIMIT = 1 << 30
_QKV_LIMIT = 1 << 40
_RESIDUAL_LIMIT = 1 << 46
_SIGMOID_SIZE = 1 << 16
# round(2**16 / ln 2): |x| (Q16) times this, shifted by 20, is |x| * log2(e) in Q12.
_LOG2E_Q16 = 94548
_tables: dict = {}


def sigmoid_table(device="cpu") -> torch.Tensor:
    """Q15 ``sigmoid(-t * ln2 / 4096)`` for ``t`` in ``0 .. 65535``: ``e * 2**15 / (2**15 + e)``
    with ``e = exp2_neg(t)``, rounded half up.
    """
    key = ("sigmoid", str(device))
    table = _tables.get(key)
    if table is None:
        t = torch.arange(_SIGMOID_SIZE, dtype=torch.int64)
        e = exp2_neg(t, exp2_table())
        den = e + (1 << 15)
        table = torch.div((e << 16) + den, 2 * den, rounding_mode="floor").to(device)
        _tables[key] = table
    return table


def kv_cut(engine: str) -> int:
    """The cache's mantissa bits for ``engine`` (:data:`KV_MANTISSA_BITS`).

    Raises
    ------
    ValueError
        An engine version this llm_codecs does not know.
    """
    if engine not in KV_MANTISSA_BITS:
        raise ValueError(f"unknown portable engine {engine!r} (known: "
                         f"{', '.join(KV_MANTISSA_BITS)})")
    return KV_MANTISSA_BITS[engine]


def _cache_vectors(x: torch.Tensor, bits: int):
    """Q12 vectors ``x`` ``(..., D)`` as cached: ``(mantissas, exponents)``, see
    :func:`kv_cut`; ``x`` itself and zeros when ``bits`` is 0."""
    if not bits:
        return x, torch.zeros(x.shape[:-1], dtype=torch.int64, device=x.device)
    e = (bit_length(x.abs().amax(dim=-1, keepdim=True)) - bits).clamp_(min=0)
    limit = (1 << bits) - 1
    return shift_round(x, e).clamp_(-limit, limit), e.squeeze(-1)


def _norm_quant(h: torch.Tensor, eps: int):
    """RMS-normalize rows of Q16 ``h`` and cut them to int8: ``(xq, F)``, ``x ~= xq * F / 2**24``.

    The row is first brought to ``amax`` in ``[2**23, 2**24)`` (a shift), so the sum of squares
    stays below ``2**62`` and the normalized value does not depend on the shift.
    """
    amax = h.abs().amax(dim=1, keepdim=True)
    sh = bit_length(amax) - 24
    hs = shift_floor(h, sh)
    amax_s = hs.abs().amax(dim=1, keepdim=True).clamp_(min=1)
    ms = torch.div((hs * hs).sum(dim=1, keepdim=True), h.shape[1], rounding_mode="floor")
    # eps in the units of hs**2: eps * 2**(32 - 2 sh) = (eps * 2**70) * 2**-(2 sh + 38); the
    # shift is clamped at 0 (rows below 2**-11 in magnitude then understate eps).
    ms = ms + shift_round(torch.full_like(sh, eps), (2 * sh + 38).clamp_(min=0))
    rms = isqrt(ms).clamp_(min=1)
    factor = _div_round(amax_s << 24, 127 * rms)
    return _to_int8(hs, amax_s), factor


def _quant(a: torch.Tensor):
    """Cut rows of fixed-point ``a`` to int8: ``(xq, F, sh)``, ``a ~= xq * F * 2**(sh-8) / 1``."""
    amax = a.abs().amax(dim=1, keepdim=True)
    sh = bit_length(amax) - 24
    a_s = shift_floor(a, sh)
    amax_s = a_s.abs().amax(dim=1, keepdim=True).clamp_(min=1)
    factor = _div_round(amax_s << 8, torch.full_like(amax_s, 127))
    return _to_int8(a_s, amax_s), factor, sh


def shift_floor(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``floor(v * 2**-s)`` (arithmetic shift right for ``s > 0``, left for ``s < 0``)."""
    return torch.bitwise_right_shift(torch.bitwise_left_shift(v, (-s).clamp(min=0)),
                                     s.clamp(min=0))


def _div_round(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``floor(a / b + 1/2)`` for ``b > 0``."""
    return torch.div(2 * a + b, 2 * b, rounding_mode="floor")


def _to_int8(a_s: torch.Tensor, amax_s: torch.Tensor) -> torch.Tensor:
    inv = _div_round(torch.full_like(amax_s, 127 << 40), amax_s)
    return shift_round(a_s * inv, 40).to(torch.int8)


def _head_norm(x: torch.Tensor, gain: torch.Tensor, eps: int) -> torch.Tensor:
    """Qwen3's per-head RMSNorm of Q16 vectors ``(..., D)`` with a Q16 ``gain``: Q16."""
    amax = x.abs().amax(dim=-1, keepdim=True)
    sh = bit_length(amax) - 24
    xs = shift_floor(x, sh)
    ms = torch.div((xs * xs).sum(dim=-1, keepdim=True), x.shape[-1], rounding_mode="floor")
    ms = ms + shift_round(torch.full_like(sh, eps), (2 * sh + 38).clamp_(min=0))
    rms = isqrt(ms).clamp_(min=1)
    return _div_round(xs * gain, rms).clamp_(-_QKV_LIMIT, _QKV_LIMIT)


def _linear_norm(xq: torch.Tensor, factor: torch.Tensor, lin: IntLinear, shift_norm):
    """Q16 output of ``lin`` on a row cut by :func:`_norm_quant`."""
    u = shift_round(int8_matmul(xq, lin.weight_t).to(torch.int64) * lin.mult, 15)
    y = shift_round(u * factor, shift_norm)
    return y if lin.bias is None else y + lin.bias


def _linear_quant(a: torch.Tensor, frac_bits: int, lin: IntLinear):
    """Q16 output of ``lin`` on a fixed-point row ``a`` with ``frac_bits`` fraction bits."""
    xq, factor, sh = _quant(a)
    u = shift_round(int8_matmul(xq, lin.weight_t).to(torch.int64) * lin.mult, 15)
    return shift_round(u * factor, lin.shift[None, :] + (frac_bits - 23) - sh)


class IntegerLlamaStep:
    """Integer forward of a Llama-family model for ``lanes`` parallel sequences.

    Parameters
    ----------
    weights : IntModel
        From :func:`~llm_codecs.portable.weights.integer_model`.
    lanes : int
        Batch size (every call uses all lanes).
    slots : int
        KV-cache slots per lane.
    positions : int, optional
        Highest position + 1 a token may take (default ``slots``).
    engine : str, optional
        The engine version whose arithmetic to compute (default the latest,
        :data:`~llm_codecs.portable.ENGINE`); they differ in how keys and values are cached
        (:func:`kv_cut`).
    """

    def __init__(self, weights: IntModel, lanes: int, slots: int, positions: int | None = None,
                 engine: str = ENGINE):
        self.w = weights
        self.bits = kv_cut(engine)
        self.device = weights.embed.device
        self.positions = slots if positions is None else max(positions, slots)
        self.lanes, self.slots = lanes, slots
        # Rotary rows and cache slots are allocated as positions are reached
        # (llm_codecs.growth): a lane's declared length buys nothing before it is decoded.
        self.cos = self.sin = torch.zeros((0, weights.head_dim), dtype=torch.int64,
                                          device=self.device)
        shape = (len(weights.layers), lanes, weights.kv_heads, 0, weights.head_dim)
        self.keys = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self.values = torch.zeros(shape, dtype=torch.float64, device=self.device)
        self.key_exps = torch.zeros(shape[:-1], dtype=torch.int64, device=self.device)
        self.value_exps = torch.zeros(shape[:-1], dtype=torch.int64, device=self.device)
        self._exp2 = exp2_table(self.device)
        self._sigmoid = sigmoid_table(self.device)
        # Output shifts of the matrices that follow a norm: shift[o] - 7 (format.md).
        self._norm_shifts = [(lay.qkv.shift - 7, lay.gate_up.shift - 7) for lay in weights.layers]
        self._head_shift = weights.head.shift - 7

    def _reserve(self, position: int, slot: int) -> None:
        """Grow the rotary rows to ``position`` and the cache to ``slot``."""
        have = self.cos.shape[0]
        if position >= have:
            rows = capacity(position + 1, max(self.positions, position + 1), have)
            self.cos, self.sin = rope_tables(rows, self.w.head_dim, self.w.theta, self.device)
        self.keys = grown(self.keys, 3, slot + 1, self.slots)
        self.values = grown(self.values, 3, slot + 1, self.slots)
        self.key_exps = grown(self.key_exps, 3, slot + 1, self.slots)
        self.value_exps = grown(self.value_exps, 3, slot + 1, self.slots)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return shift_round(x * cos + rotated * sin, 15)

    def _attention(self, q: torch.Tensor, i: int, n: int) -> torch.Tensor:
        """Q12 attention output ``(lanes, H * D)`` for Q16 rotated queries ``(lanes, H, D)``."""
        w = self.w
        lanes, H, D = q.shape
        K = w.kv_heads
        amax = q.abs().amax(dim=2, keepdim=True)
        e_q = (bit_length(amax) - 15).clamp_(min=0)
        qq = shift_round(q, e_q).view(lanes, K, H // K, D)
        keys = self.keys[i, :, :, :n]  # (lanes, K, n, D): mantissas of Q12
        dot = torch.matmul(qq.to(torch.float64), keys.transpose(-1, -2)).to(torch.int64)
        dot = dot << self.key_exps[i, :, :, :n].unsqueeze(2)
        # Scores in log2 units, Q12: dot * 2**(e_q - 28) * log2(e) / sqrt(D) * 2**12.
        z = shift_round(dot * w.score_mult, 30 - e_q.view(lanes, K, H // K, 1))
        t = z.amax(dim=-1, keepdim=True) - z
        p = exp2_neg(t, self._exp2)  # Q15, the maximum exactly 2**15
        inv = _div_round(torch.full_like(p[..., :1], 1 << 45), p.sum(dim=-1, keepdim=True))
        p = shift_round(p * inv, 30)  # Q15 probabilities
        p = p << self.value_exps[i, :, :, :n].unsqueeze(2)
        values = self.values[i, :, :, :n]
        s = torch.matmul(p.to(torch.float64), values).to(torch.int64)
        return shift_round(s, 15).reshape(lanes, H * D)

    def _silu_mul(self, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        gate = gate.clamp(-_ACT_LIMIT, _ACT_LIMIT)
        up = up.clamp(-_ACT_LIMIT, _ACT_LIMIT)
        t = shift_round(gate.abs() * _LOG2E_Q16, 20).clamp_(max=_SIGMOID_SIZE - 1)
        low = self._sigmoid[t]  # sigmoid(-|g|), Q15
        sig = torch.where(gate >= 0, (1 << 15) - low, low)
        silu = shift_round(gate * sig, 15)
        return shift_round(silu * up, 16).clamp_(-_RESIDUAL_LIMIT, _RESIDUAL_LIMIT)

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, position: int, slot: int | None = None,
             filled: int | None = None) -> torch.Tensor:
        """Run one token per lane, ``ids`` ``(lanes,)``, at ``position``; logits ``(lanes, V)``.

        Same contract as :meth:`LlamaStep.step <llm_codecs.models.llama_step.LlamaStep.step>`;
        the logits are float32 multiples of ``2**-16``.
        """
        w = self.w
        lanes = ids.shape[0]
        H, K, D = w.heads, w.kv_heads, w.head_dim
        slot = position if slot is None else slot
        n = slot + 1 if filled is None else filled
        self._reserve(position, slot)
        h = w.embed[ids]
        cos, sin = self.cos[position], self.sin[position]
        for i, layer in enumerate(w.layers):
            qkv_shift, gu_shift = self._norm_shifts[i]
            xq, factor = _norm_quant(h, layer.eps_in)
            qkv = _linear_norm(xq, factor, layer.qkv, qkv_shift).clamp_(-_QKV_LIMIT, _QKV_LIMIT)
            qkv = qkv.view(lanes, H + 2 * K, D)
            if layer.qk_norm is not None:
                gain_q, gain_k, eps = layer.qk_norm
                qkv = torch.cat((_head_norm(qkv[:, :H], gain_q, eps),
                                 _head_norm(qkv[:, H : H + K], gain_k, eps), qkv[:, H + K :]),
                                dim=1)
            qk = self._rotate(qkv[:, : H + K], cos, sin)
            kv_new = shift_round(torch.cat((qk[:, H:], qkv[:, H + K :]), dim=1), 4)
            kv_new, exps = _cache_vectors(kv_new.clamp_(-_KV_LIMIT, _KV_LIMIT), self.bits)
            self.keys[i, :, :, slot] = kv_new[:, :K].to(torch.float64)
            self.values[i, :, :, slot] = kv_new[:, K:].to(torch.float64)
            self.key_exps[i, :, :, slot] = exps[:, :K]
            self.value_exps[i, :, :, slot] = exps[:, K:]
            att = self._attention(qk[:, :H], i, n)
            h = (h + _linear_quant(att, 12, layer.out)).clamp_(-_RESIDUAL_LIMIT, _RESIDUAL_LIMIT)
            xq, factor = _norm_quant(h, layer.eps_post)
            gate, up = _linear_norm(xq, factor, layer.gate_up, gu_shift).chunk(2, dim=-1)
            h = (h + _linear_quant(self._silu_mul(gate, up), 16, layer.down)).clamp_(
                -_RESIDUAL_LIMIT, _RESIDUAL_LIMIT)
        xq, factor = _norm_quant(h, w.eps_final)
        logits = _linear_norm(xq, factor, w.head, self._head_shift)
        return logits.to(torch.float64).mul_(2.0 ** -16).to(torch.float32)
