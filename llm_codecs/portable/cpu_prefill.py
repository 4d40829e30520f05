"""The portable engine's forward for an encoder: many positions of every lane per call.

An encoder knows every token of a block before it codes any, so it need not run the model one
position at a time as a decoder must: :class:`CpuIntegerPrefill` computes the logits of
``chunk`` consecutive positions of every lane in one pass, with matrices of ``lanes * chunk``
rows and each lane's keys and values read from a short history that stays in the CPU's cache
(the step-by-step forward streams every lane's whole KV cache once per position). The values
are those of :class:`~llm_codecs.portable.cpu_step.CpuIntegerStep` run position by position,
integer for integer (every sum is an exact integer sum, whatever its order; a test compares
them), so a frame made this way is byte for byte the frame the step-by-step forward makes, and
decodes the same way.
"""

from __future__ import annotations

import numpy as np

from . import ENGINE
from . import _kernels as k
from .arith import rope_tables
from .cpu_step import _QKV_LIMIT, kv_cache, set_host_weights
from .weights import IntModel

__all__ = ["GROUP_ROWS", "CpuIntegerPrefill"]

#: Rows (lanes x positions) that go through the layers together.
GROUP_ROWS = 192
#: Calls whose keys and values fit after the history before it moves.
ROOM = 1


class CpuIntegerPrefill:
    """Logits of ``chunk`` positions of ``lanes`` sequences per call (module docstring).

    Parameters
    ----------
    weights : IntModel
        On the CPU.
    lanes : int
        Sequences, all advancing together.
    window : int
        Positions each attends to, its own included (the step-by-step forward's slots).
    chunk : int
        Positions per call.
    engine : str, optional
        The engine version whose arithmetic to compute (default the latest).
    """

    def __init__(self, weights: IntModel, lanes: int, window: int, chunk: int,
                 engine: str = ENGINE):
        self.w = weights
        self.lanes, self.window, self.chunk = lanes, window, chunk
        layers, K, D = len(weights.layers), weights.kv_heads, weights.head_dim
        H = weights.heads
        # Each lane's keys and values of the last window - 1 positions and room for ROOM calls
        # after them: moved back to the start only when the room is used up.
        history = window - 1 + ROOM * chunk
        self.bits, self.keys, self.values, self.key_exps, self.value_exps = kv_cache(
            engine, layers, lanes, K, D, history)
        set_host_weights(self, weights)
        d = weights.embed.shape[1]
        inner = self.layers[0][2].mult.shape[0] // 2 if self.layers else 0
        # Lanes go through every layer in groups of about GROUP_ROWS rows: int8 GEMMs of that
        # height run fastest, and a group's activations stay in the cache.
        self.group = max(1, min(lanes, GROUP_ROWS // chunk))
        rows = self.group * chunk
        self._xq = np.empty((rows, max(d, inner, H * D)), dtype=np.int8)
        self._factor = np.empty(rows, dtype=np.int64)
        self._sh = np.empty(rows, dtype=np.int64)
        self._qkv = np.empty((rows, (H + 2 * K) * D), dtype=np.int64)
        self._att = np.empty((rows, H * D), dtype=np.int64)
        self._gate_up = np.empty((rows, 2 * inner), dtype=np.int64)
        self._mlp = np.empty((rows, inner), dtype=np.int64)
        self.vocab = self.head.mult.shape[0]
        # Each position's final normalized rows, position-major: the head runs one position at
        # a time (:meth:`logits_at`), just before its tables read the logits, which are then
        # still in the CPU's cache (a whole call's logits, 25 MB at 96 lanes, were not).
        self._final = np.empty((chunk, lanes, d), dtype=np.int8)
        self._final_factor = np.empty((chunk, lanes), dtype=np.int64)
        self._next = 0
        self._offset = window - 1  # where the next call's first position goes

    def run(self, ids: np.ndarray, first: int, logits: np.ndarray | None = None) -> np.ndarray:
        """Logits ``(chunk, lanes, V)`` float32 of positions ``first .. first + chunk - 1``
        (into ``logits`` when given): :meth:`run_hidden`, then :meth:`logits_at` each."""
        self.run_hidden(ids, first)
        if logits is None:
            logits = np.empty((self.chunk, self.lanes, self.vocab), dtype=np.float32)
        for c in range(self.chunk):
            self.logits_at(c, logits[c])
        return logits

    def logits_at(self, c: int, out: np.ndarray) -> None:
        """Logits ``(lanes, V)`` float32 of position ``first + c`` of the last
        :meth:`run_hidden` into ``out`` (rows contiguous)."""
        k.head_logits(self.head.acc(self._final[c]), self.head.mult, self.head.shift,
                      self._final_factor[c], out)

    def run_hidden(self, ids: np.ndarray, first: int) -> None:
        """Every layer for positions ``first .. first + chunk - 1``, up to the head
        (:meth:`logits_at` gives each position's logits).

        ``ids`` ``(lanes, chunk)``: each lane's inputs at those positions. Calls must come in
        order, ``first`` advancing by ``chunk`` from 0 (the history is the previous call's).
        """
        if first != self._next:
            raise ValueError(f"prefill at position {first}, expected {self._next}")
        w = self.w
        cos, sin = rope_tables(first + self.chunk, w.head_dim, w.theta)
        cos, sin = cos[first:].numpy(), sin[first:].numpy()
        move = 0  # where the history ends, if it moves to the start before this call
        if self._offset + self.chunk > self.keys.shape[-1]:
            move, self._offset = self._offset, self.window - 1
        for lane in range(0, self.lanes, self.group):
            end = min(self.lanes, lane + self.group)
            self._run_group(ids, first, cos, sin, lane, end, move)
        self._next = first + self.chunk
        self._offset += self.chunk

    def _run_group(self, ids, first, cos, sin, lane, end, move) -> None:
        """Every layer for lanes ``lane .. end - 1``; their final rows into ``_final``."""
        w = self.w
        chunk = self.chunk
        rows = (end - lane) * chunk
        h = self.embed[ids[lane:end].reshape(-1)]  # lane-major rows
        d = h.shape[1]
        factor, sh = self._factor[:rows], self._sh[:rows]
        qkv_out, att, gate_up_out, mlp = (self._qkv[:rows], self._att[:rows],
                                          self._gate_up[:rows], self._mlp[:rows])
        back = self.window - 1
        for i, (qkv, out, gate_up, down, eps_in, eps_post) in enumerate(self.layers):
            xq = self._xq[:rows, :d]
            k.norm_quant(h, eps_in, xq, factor)
            k.linear_norm_out(qkv.acc(xq), qkv.mult, qkv.shift, factor, qkv.bias, _QKV_LIMIT,
                              qkv_out)
            if self.qk_norms[i] is not None:
                gain_q, gain_k, eps = self.qk_norms[i]
                k.head_norm(qkv_out, 0, w.heads, w.head_dim, gain_q, eps)
                k.head_norm(qkv_out, w.heads, w.kv_heads, w.head_dim, gain_k, eps)
            keys, values = self.keys[i, lane:end], self.values[i, lane:end]
            key_exps, value_exps = self.key_exps[i, lane:end], self.value_exps[i, lane:end]
            if move and back > 0:  # the room is used up: the history moves to the start
                for slot_minor in (keys, key_exps, value_exps):
                    slot_minor[..., :back] = slot_minor[..., move - back : move]
                values[:, :, :back] = values[:, :, move - back : move]
            k.attention_chunk(qkv_out, cos, sin, keys, values, key_exps, value_exps, first,
                              self._offset, chunk, self.window, w.heads, w.kv_heads,
                              w.score_mult, self.exp2, self.bits, att)
            xa = self._xq[:rows, : att.shape[1]]
            k.quant_rows(att, xa, factor, sh)
            k.residual_add(h, out.acc(xa), out.mult, out.shift, factor, sh, 12)
            k.norm_quant(h, eps_post, xq, factor)
            k.linear_norm_out(gate_up.acc(xq), gate_up.mult, gate_up.shift, factor,
                              gate_up.bias, _QKV_LIMIT, gate_up_out)
            xm = self._xq[:rows, : mlp.shape[1]]
            k.silu_mul_quant(gate_up_out, self.sigmoid, mlp, xm, factor, sh)
            k.residual_add(h, down.acc(xm), down.mult, down.shift, factor, sh, 16)
        xq = self._xq[:rows, :d]
        k.norm_quant(h, w.eps_final, xq, factor)
        # Position-major, so that each position's rows are one contiguous (lanes, d).
        self._final[:, lane:end] = xq.reshape(end - lane, chunk, d).transpose(1, 0, 2)
        self._final_factor[:, lane:end] = factor.reshape(end - lane, chunk).T
