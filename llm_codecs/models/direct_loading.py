"""Load a Llama or Qwen3 model directory without ``transformers``' model and tokenizer classes.

Importing ``transformers``' Llama modelling code and its tokenizer machinery takes about two
seconds, every time a process starts: more than the portable engine needs to code a block. The
portable engine reads only the weights, a few numbers of ``config.json`` and the tokenizer, so
for a directory where those are unambiguous this module builds them straight from the files
(``safetensors`` and ``tokenizers``, both of which ``transformers`` itself uses):

- :class:`DirectCausalLM` holds the weights under the attribute paths of ``transformers``' classes
  (``model.layers[i].self_attn.q_proj.weight``, ``lm_head.weight``, ...), cast to the requested
  dtype as ``from_pretrained(dtype=...)`` casts them, tied head included, and its
  :meth:`~DirectCausalLM.state_dict` has the same names, shapes, dtypes and values: the model's
  hash (:func:`llm_codecs.models.loading._hash_model`) is the one ``transformers`` gives;
- :class:`DirectTokenizer` is the ``tokenizers`` object of ``tokenizer.json`` itself, which is
  what ``transformers`` hands the codec for these tokenizers.

Only what this module can reproduce exactly is accepted (:func:`direct_refusal` says why not):
``llama`` and ``qwen3`` configurations that state every value the engines read (no
``transformers`` default fills a gap), no biases, one ``model.safetensors`` holding every weight
with the expected shape, and a plain fast tokenizer whose special tokens are all in
``tokenizer.json``. Anything else is loaded by ``transformers`` as before. A test checks, for the
embedded model and tiny models of both families, that both loaders give the same hash, the same
configuration values and byte-identical frames; the float forwards that need a real
``transformers`` module get one on demand (:meth:`LoadedModel.torch_model
<llm_codecs.models.loading.LoadedModel.torch_model>`).
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

__all__ = ["DirectCausalLM", "DirectConfig", "DirectTokenizer", "direct_refusal", "load_direct"]

_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM"}
#: Values the engines read, which ``config.json`` must state (a missing one would be filled by
#: a default of ``transformers``' configuration class, which this module does not replicate).
_REQUIRED = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers",
             "num_key_value_heads", "head_dim", "vocab_size", "rms_norm_eps", "hidden_act",
             "tie_word_embeddings", "max_position_embeddings", "bos_token_id", "eos_token_id")
_TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
#: ``tokenizer_config.json`` keys that do not change the tokenizer ``transformers`` builds (any
#: other key might: ``add_bos_token``, for one, rewrites its post-processor).
_TOKENIZER_KEYS = frozenset({"backend", "tokenizer_class", "bos_token", "eos_token", "unk_token",
                             "pad_token", "model_max_length", "clean_up_tokenization_spaces"})
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")
_WEIGHTS = "model.safetensors"


class DirectConfig(SimpleNamespace):
    """``config.json`` as attributes, like a ``transformers`` configuration (reads only)."""


class DirectTokenizer:
    """The ``tokenizers.Tokenizer`` of ``tokenizer.json``, under the name
    (``backend_tokenizer``) by which the codec reads a ``transformers`` fast tokenizer."""

    def __init__(self, backend) -> None:
        self.backend_tokenizer = backend

    def __len__(self) -> int:
        return int(self.backend_tokenizer.get_vocab_size(with_added_tokens=True))


class DirectCausalLM:
    """A causal LM's weights under ``transformers``' attribute paths (module docstring).

    Parameters
    ----------
    config : DirectConfig
    tensors : dict
        Every weight by its ``state_dict`` name, the head included (the embedding itself when
        tied).
    """

    def __init__(self, config: DirectConfig, tensors: dict[str, Any]) -> None:
        self.config = config
        self._tensors = tensors
        self._torch_model = None  # transformers' module, loaded on demand (loading.py)
        eps = float(config.rms_norm_eps)

        def linear(prefix: str) -> SimpleNamespace:
            return SimpleNamespace(weight=tensors[f"{prefix}.weight"], bias=None)

        def norm(prefix: str) -> SimpleNamespace:
            return SimpleNamespace(weight=tensors[f"{prefix}.weight"], variance_epsilon=eps)

        layers = []
        for i in range(int(config.num_hidden_layers)):
            p = f"model.layers.{i}"
            attention = SimpleNamespace(
                **{name: linear(f"{p}.self_attn.{name}")
                   for name in ("q_proj", "k_proj", "v_proj", "o_proj")},
                scaling=int(config.head_dim) ** -0.5)
            if config.model_type == "qwen3":
                attention.q_norm = norm(f"{p}.self_attn.q_norm")
                attention.k_norm = norm(f"{p}.self_attn.k_norm")
            mlp = SimpleNamespace(**{name: linear(f"{p}.mlp.{name}")
                                     for name in ("gate_proj", "up_proj", "down_proj")})
            layers.append(SimpleNamespace(self_attn=attention, mlp=mlp,
                                          input_layernorm=norm(f"{p}.input_layernorm"),
                                          post_attention_layernorm=norm(
                                              f"{p}.post_attention_layernorm")))
        self.model = SimpleNamespace(embed_tokens=linear("model.embed_tokens"), layers=layers,
                                     norm=norm("model.norm"))
        self.lm_head = linear("lm_head")

    def state_dict(self) -> dict[str, Any]:
        """Weights by name, as ``transformers``' ``state_dict()`` lists them."""
        return dict(self._tensors)

    def get_output_embeddings(self) -> SimpleNamespace:
        """The head (``.weight`` ``(V, d)``)."""
        return self.lm_head

    def eval(self) -> DirectCausalLM:
        """Itself: nothing here trains."""
        return self

    def to(self, device) -> DirectCausalLM:
        """The same model with its weights on ``device`` (a tied head stays tied)."""
        moved: dict[int, Any] = {}
        tensors = {}
        for name, t in self._tensors.items():
            if id(t) not in moved:
                moved[id(t)] = t.to(device)
            tensors[name] = moved[id(t)]
        if all(tensors[name] is t for name, t in self._tensors.items()):
            return self
        return DirectCausalLM(self.config, tensors)


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _config_refusal(cfg: dict) -> str | None:
    kind = cfg.get("model_type")
    if kind not in _ARCHITECTURES:
        return f"model_type {kind!r}"
    if cfg.get("architectures") != [_ARCHITECTURES[kind]]:
        return f"architectures {cfg.get('architectures')!r}"
    missing = [k for k in _REQUIRED if k not in cfg]
    if missing:
        return f"config.json does not state {', '.join(missing)}"
    if "rope_parameters" not in cfg and "rope_theta" not in cfg:
        return "config.json does not state the rotary base"
    if cfg.get("attention_bias", False) or cfg.get("mlp_bias", False):
        return "biases"
    if cfg.get("pretraining_tp", 1) != 1 or cfg.get("use_sliding_window", False):
        return "tensor-parallel or sliding-window settings"
    dims = [cfg[k] for k in _REQUIRED[:7]]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in dims):
        return "dimensions that are not positive integers"
    if not isinstance(cfg["tie_word_embeddings"], bool):
        return "tie_word_embeddings that is not a boolean"
    return None


def _tokenizer_refusal(directory: str) -> str | None:
    settings = _read_json(os.path.join(directory, "tokenizer_config.json"))
    spec = _read_json(os.path.join(directory, "tokenizer.json"))
    if settings is None or spec is None:
        return "no readable tokenizer.json and tokenizer_config.json"
    if settings.get("tokenizer_class") not in _TOKENIZER_CLASSES:
        return f"tokenizer class {settings.get('tokenizer_class')!r}"
    extra = sorted(set(settings) - _TOKENIZER_KEYS)
    if extra:
        return f"tokenizer settings {', '.join(extra)}"
    added = spec.get("added_tokens") or []
    special = {t.get("content") for t in added if isinstance(t, dict) and t.get("special")}
    for key in _SPECIAL_KEYS:
        token = settings.get(key)
        if token is not None and token not in special:
            # transformers would add it to the tokenizer: another tokenizer, another hash.
            return f"{key} {token!r} is not a special token of tokenizer.json"
    return None


def direct_refusal(directory: str) -> str | None:
    """Why :func:`load_direct` cannot load ``directory`` exactly as ``transformers`` would, or
    None when it can."""
    cfg = _read_json(os.path.join(directory, "config.json"))
    if cfg is None:
        return "no readable config.json"
    if not os.path.isfile(os.path.join(directory, _WEIGHTS)):
        return f"no single {_WEIGHTS}"
    return _config_refusal(cfg) or _tokenizer_refusal(directory)


def _expected_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    d, inner, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H, K, D = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    shapes = {"model.embed_tokens.weight": (V, d), "model.norm.weight": (d,)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        shapes.update({
            f"{p}.self_attn.q_proj.weight": (H * D, d), f"{p}.self_attn.k_proj.weight": (K * D, d),
            f"{p}.self_attn.v_proj.weight": (K * D, d), f"{p}.self_attn.o_proj.weight": (d, H * D),
            f"{p}.mlp.gate_proj.weight": (inner, d), f"{p}.mlp.up_proj.weight": (inner, d),
            f"{p}.mlp.down_proj.weight": (d, inner), f"{p}.input_layernorm.weight": (d,),
            f"{p}.post_attention_layernorm.weight": (d,),
        })
        if cfg["model_type"] == "qwen3":
            shapes[f"{p}.self_attn.q_norm.weight"] = (D,)
            shapes[f"{p}.self_attn.k_norm.weight"] = (D,)
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, d)
    return shapes


def load_direct(directory: str, dtype: str) -> tuple[DirectCausalLM, DirectTokenizer] | None:
    """The model and tokenizer of ``directory`` in ``dtype``, or None when this module cannot
    load it exactly as ``transformers`` would (:func:`direct_refusal`, or weights whose names or
    shapes are not the ones the configuration implies): the caller then uses ``transformers``.
    """
    if direct_refusal(directory) is not None:
        return None
    import torch
    from safetensors import safe_open
    from tokenizers import Tokenizer

    cfg = _read_json(os.path.join(directory, "config.json"))
    shapes = _expected_shapes(cfg)
    target = getattr(torch, dtype)
    tensors = {}
    try:
        with safe_open(os.path.join(directory, _WEIGHTS), framework="pt") as f:
            names = set(f.keys())
            if names != set(shapes) and names != set(shapes) | {"lm_head.weight"}:
                return None
            for name, shape in shapes.items():
                t = f.get_tensor(name)
                if tuple(t.shape) != shape or not t.is_floating_point():
                    return None
                tensors[name] = t.to(target).contiguous()
        tokenizer = Tokenizer.from_file(os.path.join(directory, "tokenizer.json"))
    except Exception:
        # Whatever a damaged file raises: transformers then loads it, or says what is wrong.
        return None
    if cfg["tie_word_embeddings"]:
        # The head is the embedding itself, also when the file stores a copy (transformers
        # ignores the copy and ties).
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    return DirectCausalLM(DirectConfig(**cfg), tensors), DirectTokenizer(tokenizer)
