"""The portable engine's forward on the CPU: :mod:`.step`'s arithmetic in numba kernels.

Same results as :class:`~llm_codecs.portable.step.IntegerLlamaStep` (the torch-operations
version that also runs on CUDA), value for value; a test compares them on real text. Matrix
products go to torch's int8 GEMM (:func:`~llm_codecs.portable.arith.int8_matmul`), everything
between them to the fused kernels of :mod:`._kernels`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..growth import capacity, grown
from . import ENGINE
from . import _kernels as k
from .arith import exp2_table, int8_matmul, rope_tables
from .step import kv_cut, sigmoid_table
from .weights import IntLinear, IntModel

__all__ = ["CpuIntegerStep", "kv_cache"]

_QKV_LIMIT = 1 << 40


class _Linear:
    """Host arrays of one :class:`IntLinear`."""

    def __init__(self, lin: IntLinear):
        self.weight_t = lin.weight_t
        self.mult = lin.mult.numpy()
        self.shift = lin.shift.numpy()
        out = self.mult.shape[0]
        self.bias = lin.bias.numpy() if lin.bias is not None else np.zeros(out, dtype=np.int64)

    def acc(self, xq: np.ndarray) -> np.ndarray:
        return int8_matmul(torch.from_numpy(xq), self.weight_t).numpy()


def set_host_weights(target, weights: IntModel) -> None:
    """Give ``target`` the host arrays both CPU forwards read: ``embed``, the ``exp2`` and
    ``sigmoid`` tables, per layer ``(qkv, out, gate_up, down, eps_in, eps_post)`` in
    ``layers`` and the Qwen3 head norms in ``qk_norms``, and ``head``."""
    target.embed = weights.embed.numpy()
    target.exp2 = exp2_table().numpy()
    target.sigmoid = sigmoid_table().numpy().astype(np.int32)  # Q15: half the cache lines
    target.layers = [(_Linear(lay.qkv), _Linear(lay.out), _Linear(lay.gate_up),
                      _Linear(lay.down), lay.eps_in, lay.eps_post) for lay in weights.layers]
    target.qk_norms = [None if lay.qk_norm is None else
                       (lay.qk_norm[0].numpy(), lay.qk_norm[1].numpy(), lay.qk_norm[2])
                       for lay in weights.layers]
    target.head = _Linear(weights.head)


def kv_cache(engine: str, layers: int, lanes: int, kv_heads: int, head_dim: int, slots: int):
    """``(bits, keys, values, key_exps, value_exps)``: an empty KV cache as the attention
    kernels read it, in ``engine``'s format (:func:`~llm_codecs.portable.step.kv_cut`).

    Keys are slot-minor ``(layers, lanes, K, D, slots)``, values slot-major
    ``(layers, lanes, K, slots, D)``, the exponents ``(layers, lanes, K, slots)``; the
    mantissas are int8 for ``int8-v2``, int32 for the full values of ``int8-v1``.
    """
    bits = kv_cut(engine)
    dtype = np.int8 if 0 < bits < 8 else np.int32
    keys = np.zeros((layers, lanes, kv_heads, head_dim, slots), dtype=dtype)
    values = np.zeros((layers, lanes, kv_heads, slots, head_dim), dtype=dtype)
    exps = np.zeros((2, layers, lanes, kv_heads, slots), dtype=np.int8)
    return bits, keys, values, exps[0], exps[1]


class CpuIntegerStep:
    """Integer forward of a Llama-family model on the CPU (see the module docstring).

    Parameters
    ----------
    weights : IntModel
        On the CPU.
    lanes, slots, positions, engine
        As :class:`~llm_codecs.portable.step.IntegerLlamaStep`.
    """

    def __init__(self, weights: IntModel, lanes: int, slots: int, positions: int | None = None,
                 engine: str = ENGINE):
        self.w = weights
        self.positions = slots if positions is None else max(positions, slots)
        self.lanes, self.slots = lanes, slots
        # Rotary rows and cache slots are allocated as positions are reached
        # (llm_codecs.growth): a lane's declared length buys nothing before it is decoded.
        self.cos = self.sin = np.zeros((0, weights.head_dim), dtype=np.int64)
        set_host_weights(self, weights)
        self.bits, self.keys, self.values, self.key_exps, self.value_exps = kv_cache(
            engine, len(weights.layers), lanes, weights.kv_heads, weights.head_dim, 0)
        d = weights.embed.shape[1]
        H, K, D = weights.heads, weights.kv_heads, weights.head_dim
        inner = self.layers[0][2].mult.shape[0] // 2 if self.layers else 0
        self._xq = np.empty((lanes, max(d, inner, H * D)), dtype=np.int8)
        self._factor = np.empty(lanes, dtype=np.int64)
        self._sh = np.empty(lanes, dtype=np.int64)
        self._qkv = np.empty((lanes, (H + 2 * K) * D), dtype=np.int64)
        self._att = np.empty((lanes, H * D), dtype=np.int64)
        self._gate_up = np.empty((lanes, 2 * inner), dtype=np.int64)
        self._mlp = np.empty((lanes, inner), dtype=np.int64)
        self.vocab = weights.head.mult.shape[0]
        self._logits = np.empty((lanes, self.vocab), dtype=np.float32)

    def _reserve(self, position: int, slot: int) -> None:
        """Grow the rotary rows to ``position`` and the cache to ``slot``."""
        have = self.cos.shape[0]
        if position >= have:
            rows = capacity(position + 1, max(self.positions, position + 1), have)
            cos, sin = rope_tables(rows, self.w.head_dim, self.w.theta)
            self.cos, self.sin = cos.numpy(), sin.numpy()
        self.keys = grown(self.keys, 4, slot + 1, self.slots)
        self.values = grown(self.values, 3, slot + 1, self.slots)
        self.key_exps = grown(self.key_exps, 3, slot + 1, self.slots)
        self.value_exps = grown(self.value_exps, 3, slot + 1, self.slots)

    def step(self, ids: torch.Tensor, position: int, slot: int | None = None,
             filled: int | None = None) -> torch.Tensor:
        """As :meth:`IntegerLlamaStep.step <llm_codecs.portable.step.IntegerLlamaStep.step>`."""
        self.step_into(ids, position, slot, filled, self._logits[: ids.shape[0]])
        return torch.from_numpy(self._logits[: ids.shape[0]].copy())

    def step_into(self, ids: torch.Tensor, position: int, slot: int | None, filled: int | None,
                  logits: np.ndarray) -> None:
        """:meth:`step`, its logits written to ``logits`` (float32 ``(lanes, V)``, rows
        contiguous)."""
        w = self.w
        lanes = ids.shape[0]
        slot = position if slot is None else slot
        n = slot + 1 if filled is None else filled
        self._reserve(position, slot)
        h = self.embed[ids.numpy()]
        cos, sin = self.cos[position], self.sin[position]
        d = h.shape[1]
        factor, sh = self._factor[:lanes], self._sh[:lanes]
        for i, (qkv, out, gate_up, down, eps_in, eps_post) in enumerate(self.layers):
            xq = self._xq[:lanes, :d]
            k.norm_quant(h, eps_in, xq, factor)
            k.linear_norm_out(qkv.acc(xq), qkv.mult, qkv.shift, factor, qkv.bias, _QKV_LIMIT,
                              self._qkv)
            if self.qk_norms[i] is not None:
                gain_q, gain_k, eps = self.qk_norms[i]
                k.head_norm(self._qkv, 0, w.heads, w.head_dim, gain_q, eps)
                k.head_norm(self._qkv, w.heads, w.kv_heads, w.head_dim, gain_k, eps)
            k.attention(self._qkv, cos, sin, self.keys[i], self.values[i], self.key_exps[i],
                        self.value_exps[i], slot, n, w.heads, w.kv_heads, w.score_mult,
                        self.exp2, self.bits, self._att)
            xa = self._xq[:lanes, : self._att.shape[1]]
            k.quant_rows(self._att, xa, factor, sh)
            k.residual_add(h, out.acc(xa), out.mult, out.shift, factor, sh, 12)
            k.norm_quant(h, eps_post, xq, factor)
            k.linear_norm_out(gate_up.acc(xq), gate_up.mult, gate_up.shift, factor,
                              gate_up.bias, _QKV_LIMIT, self._gate_up)
            xm = self._xq[:lanes, : self._mlp.shape[1]]
            k.silu_mul_quant(self._gate_up, self.sigmoid, self._mlp, xm, factor, sh)
            k.residual_add(h, down.acc(xm), down.mult, down.shift, factor, sh, 16)
        xq = self._xq[:lanes, :d]
        k.norm_quant(h, w.eps_final, xq, factor)
        k.head_logits(self.head.acc(xq), self.head.mult, self.head.shift, factor, logits)
