"""A lean forward for Llama-family models with a preallocated KV cache.

The codec's inner loop runs a small model one token per lane at a time. With ``transformers``'
generic forward most of that time is not arithmetic: dozens of module calls per layer, mask and
position bookkeeping, and a ``DynamicCache`` that grows by concatenation (a copy of the whole
cache at every step). :class:`LlamaStep` computes the same function - RMSNorm, rotary attention
with grouped KV heads, SwiGLU MLP, tied or untied head - straight from the loaded model's
weights, with fused QKV and gate/up projections and a cache written in place.

It is not bit-identical to ``transformers``' forward (fused matrices sum in another order), and
need not be: the codec runs the same code with the same shapes when encoding and decoding.
Which forward a frame used is part of its configuration (the codec's ``step`` parameter).

Only models whose computation is exactly this one are accepted (:func:`supports`): Llama,
Mistral without sliding windows, Qwen2 (with its QKV biases), default RoPE, SiLU.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf

from ..growth import capacity, grown

__all__ = ["LlamaStep", "supports"]

# Fused matrices per loaded model, built once: a block's schedule must not copy the weights.
_fused: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2"})


def _rope_theta(config) -> float | None:
    """The RoPE base of a default (unscaled) rotary embedding, or None for anything else."""
    params = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None) or {}
    rope_type = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    if rope_type != "default":
        return None
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    return float(theta) if theta else None


def supports(model: Any) -> bool:
    """Whether ``model`` computes exactly what :class:`LlamaStep` computes.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A loaded causal LM.
    """
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) not in _MODEL_TYPES:
        return False
    if getattr(cfg, "hidden_act", None) != "silu" or _rope_theta(cfg) is None:
        return False
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return False
    if getattr(cfg, "mlp_bias", False) or getattr(cfg, "pretraining_tp", 1) != 1:
        return False
    inner = getattr(model, "model", None)
    return inner is not None and hasattr(inner, "layers") and hasattr(model, "lm_head")


#: Rotary tables are computed in chunks of this many positions, so a position's value never
#: depends on how long a table was asked for (vectorized ``cos`` may treat an array's tail
#: differently).
_ROTARY_CHUNK = 1024


def _rotary_tables(positions: int, head_dim: int, theta: float, dtype) -> tuple:
    """``cos`` and ``sin`` of positions ``0 .. positions - 1``, each ``(positions, head_dim)``.

    Angles are computed in float64 and rounded to ``dtype`` once.
    """
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    chunks = -(-max(positions, 1) // _ROTARY_CHUNK)
    cos, sin = [], []
    for c in range(chunks):
        pos = np.arange(c * _ROTARY_CHUNK, (c + 1) * _ROTARY_CHUNK, dtype=np.float64)
        angles = np.outer(pos, inv_freq)
        angles = np.concatenate([angles, angles], axis=1)
        cos.append(np.cos(angles))
        sin.append(np.sin(angles))
    cos = torch.from_numpy(np.concatenate(cos)[:positions]).to(dtype)
    sin = torch.from_numpy(np.concatenate(sin)[:positions]).to(dtype)
    return cos, sin


def _weights(model: Any) -> tuple:
    """Embedding, per-layer fused weights, final norm epsilon and head of ``model`` (cached).

    Each RMSNorm's gain is folded into the columns of the matrix that follows it
    (``linear(x * g, W) == linear(x, W * g)``), so a norm is a plain normalization.
    """
    cached = _fused.get(model)
    if cached is not None:
        return cached
    inner = model.model
    layers = []
    for layer in inner.layers:
        att, mlp = layer.self_attn, layer.mlp
        norm_in, norm_post = layer.input_layernorm, layer.post_attention_layernorm
        projections = (att.q_proj, att.k_proj, att.v_proj)
        qkv_w = torch.cat([p.weight.detach() for p in projections]) * norm_in.weight.detach()
        qkv_b = None
        if att.q_proj.bias is not None:
            qkv_b = torch.cat([p.bias.detach() for p in projections])
        gate_up = torch.cat([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()])
        layers.append((
            float(norm_in.variance_epsilon), qkv_w, qkv_b, att.o_proj.weight.detach(),
            float(norm_post.variance_epsilon), gate_up * norm_post.weight.detach(),
            mlp.down_proj.weight.detach(),
        ))
    head = model.lm_head.weight.detach() * inner.norm.weight.detach()
    cached = (inner.embed_tokens.weight.detach(), layers, float(inner.norm.variance_epsilon),
              head)
    _fused[model] = cached
    return cached


def _normalize(h: torch.Tensor, eps: float) -> torch.Tensor:
    """RMS normalization without gain, computed in float32 (as transformers' RMSNorm)."""
    x = h.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(eps))).to(h.dtype)


class LlamaStep:
    """Preallocated-cache forward of a Llama-family model for ``lanes`` parallel sequences.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model for which :func:`supports` is true, in eval mode.
    lanes : int
        Batch size (every call uses all lanes).
    slots : int
        KV-cache slots per lane.
    positions : int, optional
        Highest position + 1 a token may take (default ``slots``).
    """

    def __init__(self, model: Any, lanes: int, slots: int, positions: int | None = None):
        cfg = model.config
        inner = model.model
        first = inner.layers[0].self_attn
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None)
                            or cfg.hidden_size // cfg.num_attention_heads)
        self.scale = float(getattr(first, "scaling", self.head_dim ** -0.5))
        self.positions = slots if positions is None else max(positions, slots)
        self.lanes, self.slots = lanes, slots
        self.embed, self.layers, self.norm_eps, self.head = _weights(model)
        self.dtype, self.device = self.embed.dtype, self.embed.device
        self._theta = _rope_theta(cfg)
        # Rotary rows and cache slots are allocated as positions are reached
        # (llm_codecs.growth): a lane's declared length buys nothing before it is decoded.
        self.cos = self.sin = torch.zeros((0, self.head_dim), dtype=self.dtype,
                                          device=self.device)
        shape = (len(self.layers), lanes, self.kv_heads, 0, self.head_dim)
        self.keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.values = torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _reserve(self, position: int, slot: int) -> None:
        """Grow the rotary rows to ``position`` and the cache to ``slot``."""
        have = self.cos.shape[0]
        if position >= have:
            rows = capacity(position + 1, max(self.positions, position + 1), have)
            cos, sin = _rotary_tables(rows, self.head_dim, self._theta, self.dtype)
            self.cos, self.sin = cos.to(self.device), sin.to(self.device)
        self.keys = grown(self.keys, 3, slot + 1, self.slots)
        self.values = grown(self.values, 3, slot + 1, self.slots)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def step(self, ids: torch.Tensor, position: int, slot: int | None = None,
             filled: int | None = None) -> torch.Tensor:
        """Run one token per lane, ``ids`` ``(lanes,)``, at ``position``; logits ``(lanes, V)``.

        The token's keys and values go to cache ``slot`` (default ``position``) and it attends
        to the first ``filled`` slots (default ``slot + 1``), which must hold this lane's
        earlier tokens: all of them, or a ring of the latest ones (the rotary encoding makes
        attention depend on relative positions only, so slot order does not matter).
        """
        lanes = ids.shape[0]
        H, K, D = self.heads, self.kv_heads, self.head_dim
        G = H // K
        slot = position if slot is None else slot
        n = slot + 1 if filled is None else filled
        self._reserve(position, slot)
        h = nnf.embedding(ids, self.embed)
        cos, sin = self.cos[position], self.sin[position]
        for i, (eps_in, qkv_w, qkv_b, o_w, eps_post, gu_w, down_w) in enumerate(self.layers):
            x = _normalize(h, eps_in)
            qkv = nnf.linear(x, qkv_w, qkv_b).view(lanes, H + 2 * K, D)
            qk = self._rotate(qkv[:, : H + K], cos, sin)
            self.keys[i, :, :, slot] = qk[:, H:]
            self.values[i, :, :, slot] = qkv[:, H + K :]
            keys = self.keys[i, :, :, :n]  # (lanes, K, n, D)
            values = self.values[i, :, :, :n]
            q = qk[:, :H].reshape(lanes, K, G, D)
            scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(self.scale)
            att = torch.matmul(torch.softmax(scores, dim=-1), values)  # (lanes, K, G, D)
            h = h + nnf.linear(att.reshape(lanes, H * D), o_w)
            x = _normalize(h, eps_post)
            gate, up = nnf.linear(x, gu_w).chunk(2, dim=-1)
            h = h + nnf.linear(nnf.silu(gate) * up, down_w)
        h = _normalize(h, self.norm_eps)
        return nnf.linear(h, self.head)
