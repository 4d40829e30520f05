"""Deterministic quantization of a Llama-family model into the portable engine's integers.

Runs once per loaded model, on the CPU, in numpy float64 whatever the model's device: every
operation is an IEEE-754 ``*``, ``/``, ``max`` or round-half-even of float64 numbers made from
the model's float32 (or narrower) weights, each correctly rounded by the standard, so the
integers are the same on every machine. The folded products ``W * g`` of two float32 numbers are
even exact in float64.

- Linear layers: each RMSNorm's gain is folded into the columns of the matrix that follows it;
  each output row ``o`` gets int8 weights ``round(127 * W[o] / max|W[o]|)`` and the scale
  ``max|W[o]| / 127 ~= m_o * 2**-e_o`` with a 15-bit mantissa ``m_o`` (``docs/format.md``).
- Biases (Qwen2's QKV) and the embedding table: ``round(x * 2**16)``, int64 (Q16).
"""

from __future__ import annotations

import decimal
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import CodecError
from .arith import decimal_constant, fixed

__all__ = ["IntLinear", "IntModel", "integer_model", "portable_support"]

#: Model types whose blocks the engine computes: RMSNorm, rotary attention with grouped KV
#: heads (and Qwen2's QKV biases, Qwen3's per-head query and key norms), SwiGLU MLP.
MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
#: Widest matrix input: every int8 GEMM sum stays below 2**28 (``docs/format.md``).
MAX_INNER = 1 << 14
MAX_HEAD_DIM = 256
_MANTISSA_BITS = 15
_MAX_SHIFT = 40

_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class IntLinear:
    """One linear layer as the engine computes it.

    Attributes
    ----------
    weight_t : torch.Tensor
        int8 ``(in, out)``: the transposed quantized weights.
    mult, shift : torch.Tensor
        int64 ``(out,)``: row ``o``'s scale is ``mult[o] * 2**-shift[o]``.
    bias : torch.Tensor or None
        int64 ``(out,)`` in Q16.
    """

    weight_t: torch.Tensor
    mult: torch.Tensor
    shift: torch.Tensor
    bias: torch.Tensor | None


@dataclass(frozen=True)
class IntLayer:
    """One decoder layer: fused QKV and gate/up projections, output and down projections."""

    qkv: IntLinear
    out: IntLinear
    gate_up: IntLinear
    down: IntLinear
    eps_in: int
    eps_post: int
    #: Qwen3: per-head RMSNorm of queries and keys before the rotary embedding:
    #: ``(query gain, key gain, eps)``, the gains Q16 ``(head_dim,)``.
    qk_norm: tuple | None = None


@dataclass(frozen=True)
class IntModel:
    """Everything the integer forward reads, on one device."""

    embed: torch.Tensor  # int64 (V, d), Q16
    layers: list[IntLayer]
    eps_final: int
    head: IntLinear
    heads: int
    kv_heads: int
    head_dim: int
    theta: float
    score_mult: int  # round(2**14 / (ln 2 * sqrt(head_dim)))


def portable_support(model: Any) -> str | None:
    """Why ``model`` cannot run on the portable engine, or None if it can.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A loaded causal LM.
    """
    from ..models.llama_step import _rope_theta, supports

    cfg = getattr(model, "config", None)
    kind = getattr(cfg, "model_type", None)
    family = f"this one is {kind!r} ({type(model).__name__})"
    if kind not in MODEL_TYPES:
        return ("the portable engine runs Llama-family models (Llama, Mistral, Qwen2, Qwen3, "
                f"SmolLM); {family}")
    if kind == "qwen3":
        if not _qwen3_like(model):
            return "this Qwen3 model's blocks are not the ones the portable engine computes"
    elif not supports(model):
        return f"this model's blocks are not the ones the portable engine computes; {family}"
    if _rope_theta(cfg) is None:
        return "the portable engine supports only the default (unscaled) rotary embedding"
    inner = model.model
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    scaling = getattr(inner.layers[0].self_attn, "scaling", head_dim ** -0.5)
    if abs(float(scaling) * head_dim ** 0.5 - 1.0) > 1e-12:
        return "the portable engine supports only the 1/sqrt(head_dim) attention scale"
    if head_dim > MAX_HEAD_DIM or head_dim % 2:
        return f"head_dim {head_dim} is not supported by the portable engine"
    if max(cfg.hidden_size, cfg.intermediate_size,
           cfg.num_attention_heads * head_dim) > MAX_INNER:
        return f"matrices wider than {MAX_INNER} are not supported by the portable engine"
    eps = float(getattr(cfg, "rms_norm_eps", 1e-6))
    if not 0.0 <= eps < 2 ** -7:
        return f"rms_norm_eps {eps} is not supported by the portable engine"
    return None


def _qwen3_like(model: Any) -> bool:
    """Qwen3: Llama blocks plus per-head query/key RMSNorms, full attention in every layer."""
    cfg = model.config
    if getattr(cfg, "hidden_act", None) != "silu" or getattr(cfg, "attention_bias", False):
        return False
    if getattr(cfg, "use_sliding_window", False) or getattr(cfg, "mlp_bias", False):
        return False
    if any(kind != "full_attention" for kind in (getattr(cfg, "layer_types", None) or [])):
        return False
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(model, "lm_head"):
        return False
    return all(hasattr(layer.self_attn, "q_norm") and hasattr(layer.self_attn, "k_norm")
               for layer in inner.layers)


def _np(t: torch.Tensor) -> np.ndarray:
    # float32/bf16/fp16 -> float64 is exact.
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _linear(weight: np.ndarray, gain: np.ndarray | None, bias: np.ndarray | None,
            device) -> IntLinear:
    w = weight * gain[None, :] if gain is not None else weight
    peak = np.abs(w).max(axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    q = np.rint(w / safe[:, None] * 127.0)
    scale = peak / 127.0
    frac, exp = np.frexp(scale)  # scale = frac * 2**exp, frac in [0.5, 1) (0 for 0)
    mult = np.rint(frac * (1 << _MANTISSA_BITS)).astype(np.int64)
    shift = (_MANTISSA_BITS - exp).astype(np.int64)
    # A row whose scale is below 2**-25 (or zero) is a row of zeros: it keeps every shift of
    # the engine below 63.
    tiny = shift > _MAX_SHIFT
    q[tiny] = 0.0
    mult[tiny] = 0
    shift = np.where(tiny, _MANTISSA_BITS, shift)
    if (shift < 8).any():
        raise CodecError("weights larger than 2**8 in magnitude are not supported by the "
                         "portable engine")
    bias_q = None if bias is None else torch.from_numpy(
        np.rint(bias * 65536.0).astype(np.int64)).to(device)
    return IntLinear(
        torch.from_numpy(q.astype(np.int8).T.copy()).to(device),
        torch.from_numpy(mult).to(device), torch.from_numpy(shift).to(device), bias_q,
    )


def _eps(value: float) -> int:
    # round(eps * 2**70): float * 2**70 is exact, rint of a float64 is exact.
    return int(np.rint(np.float64(value) * 2.0 ** 70))


def integer_model(model: Any, device="cpu") -> IntModel:
    """The portable engine's integers for ``model`` (built once per model and device).

    Raises
    ------
    CodecError
        The model is not supported (:func:`portable_support` says why).
    """
    reason = portable_support(model)
    if reason:
        raise CodecError(reason)
    per_model = _cache.setdefault(model, {})
    key = str(device)
    if key in per_model:
        return per_model[key]
    from ..models.llama_step import _rope_theta

    cfg = model.config
    inner = model.model
    heads = int(cfg.num_attention_heads)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    layers = []
    for layer in inner.layers:
        att, mlp = layer.self_attn, layer.mlp
        g_in = _np(layer.input_layernorm.weight)
        g_post = _np(layer.post_attention_layernorm.weight)
        projections = (att.q_proj, att.k_proj, att.v_proj)
        qkv_w = np.concatenate([_np(p.weight) for p in projections])
        qkv_b = None
        if att.q_proj.bias is not None:
            qkv_b = np.concatenate([_np(p.bias) for p in projections])
        gate_up = np.concatenate([_np(mlp.gate_proj.weight), _np(mlp.up_proj.weight)])
        qk_norm = None
        if hasattr(att, "q_norm"):
            qk_norm = (_q16(att.q_norm.weight, device), _q16(att.k_norm.weight, device),
                       _eps(att.q_norm.variance_epsilon))
        layers.append(IntLayer(
            _linear(qkv_w, g_in, qkv_b, device), _linear(_np(att.o_proj.weight), None, None,
                                                         device),
            _linear(gate_up, g_post, None, device), _linear(_np(mlp.down_proj.weight), None,
                                                            None, device),
            _eps(layer.input_layernorm.variance_epsilon),
            _eps(layer.post_attention_layernorm.variance_epsilon), qk_norm,
        ))
    embed = torch.from_numpy(np.rint(_np(inner.embed_tokens.weight) * 65536.0).astype(np.int64))
    head = _linear(_np(model.lm_head.weight), _np(inner.norm.weight), None, device)
    ctx = decimal.Context(prec=40)
    score = ctx.divide(decimal.Decimal(1),
                       ctx.multiply(decimal_constant("ln2"), ctx.sqrt(decimal.Decimal(head_dim))))
    built = IntModel(
        embed.to(device), layers, _eps(inner.norm.variance_epsilon), head, heads, kv_heads,
        head_dim, _rope_theta(cfg), fixed(score, 14),
    )
    per_model[key] = built
    return built


def _q16(t: torch.Tensor, device) -> torch.Tensor:
    return torch.from_numpy(np.rint(_np(t) * 65536.0).astype(np.int64)).to(device)
