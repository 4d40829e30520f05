"""Find, load, fingerprint and cache the language models the LLM codec runs.

One loaded model per process and configuration, behind a lock: Zarr decodes several chunks at
once in threads, and Dask workers must each load a model once, never receive one pickled.
``"default"`` is the small model shipped in ``llm_codecs/models/default``; anything else is
handed to ``transformers`` exactly as a user would (a hub id or a local directory), so the
embedded model and a hub model share every line of loading code.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CodecError, ModelMismatchError
from .tokens import ByteTokenizer

__all__ = ["DEFAULT_MODEL_DIR", "LoadedModel", "load_model", "resolve_model"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
_DTYPES = ("float32", "float64", "bfloat16", "float16")

_cache: dict[tuple, LoadedModel] = {}
_cache_lock = threading.Lock()
# One lock per key so that loading one model does not block users of another.
_key_locks: dict[tuple, threading.Lock] = {}


@dataclass
class LoadedModel:
    """A model ready to predict, with everything the frame records about it.

    Attributes
    ----------
    model : transformers.PreTrainedModel
        In eval mode, on ``device``, in ``dtype``.
    tokenizer : ByteTokenizer
        Lossless bytes <-> ids.
    identity : dict
        ``{"name", "revision", "sha256"}``: the hash covers the weights (names, shapes, dtypes,
        values) and the tokenizer's full JSON, so any change to either is detected.
    device, dtype : str
    """

    model: Any
    tokenizer: ByteTokenizer
    identity: dict[str, Any]
    device: str
    dtype: str

    @property
    def vocab_size(self) -> int:
        """Width of the model's output logits."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def max_positions(self) -> int | None:
        """Longest sequence the model accepts, if its config says."""
        cfg = self.model.config
        for name in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None


def resolve_model(model: str) -> str:
    """The path or hub id that ``transformers`` should load for ``model``."""
    if not isinstance(model, str) or not model:
        raise CodecError(f"model must be a non-empty string, got {model!r}")
    if model == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise ModelMismatchError(
                f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; reinstall "
                "llm_codecs"
            )
        return str(DEFAULT_MODEL_DIR)
    return os.path.expanduser(model) if model.startswith("~") else model


def _hash_model(model, tokenizer) -> str:
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    return digest.hexdigest()


def _load(model: str, revision: str | None, device: str, dtype: str,
          local_files_only: bool) -> LoadedModel:
    import torch
    import transformers

    source = resolve_model(model)
    kwargs = {"revision": revision, "local_files_only": local_files_only}
    # Loading bars would interleave with the CLI's own progress bar.
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        lm = transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype), attn_implementation="sdpa", **kwargs
        )
    except (OSError, ValueError) as exc:
        raise ModelMismatchError(
            f"cannot load model {model!r}"
            + (f" (revision {revision})" if revision else "")
            + f": {exc}".rstrip()
        ) from exc
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    if device.startswith("cuda"):
        # Autotuning picks kernels by timing and TF32 by default: both would differ between runs.
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    lm.eval().to(device)
    # Hash what was loaded, after the dtype cast: that is what the numbers depend on.
    identity = {"name": model, "revision": revision, "sha256": _hash_model(lm, tokenizer)}
    return LoadedModel(lm, ByteTokenizer(tokenizer), identity, device, dtype)


def load_model(model: str = "default", *, revision: str | None = None, device: str = "cpu",
               dtype: str = "float32", local_files_only: bool = False) -> LoadedModel:
    """Load ``model`` once per process (thread-safe) and return it.

    Parameters
    ----------
    model : str
        ``"default"`` (the embedded model), a HuggingFace hub id, or a local directory in
        HuggingFace format.
    revision : str, optional
        Hub revision (branch, tag or commit).
    device : str
        ``"cpu"`` or a CUDA device such as ``"cuda"``.
    dtype : str
        Weights' dtype: ``"float32"`` (default), ``"float64"``, ``"bfloat16"``, ``"float16"``.
    local_files_only : bool
        Never touch the network (``HF_HUB_OFFLINE=1`` has the same effect).

    Raises
    ------
    ModelMismatchError
        The model cannot be found or loaded (the message names it).
    UnsupportedTokenizerError
        Its tokenizer cannot represent arbitrary bytes.
    """
    if dtype not in _DTYPES:
        raise CodecError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    key = (model, revision, device, dtype)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        loaded = _load(model, revision, device, dtype, local_files_only)
        with _cache_lock:
            _cache[key] = loaded
        return loaded


def numerics(loaded: LoadedModel, threads: int) -> dict[str, Any]:
    """The facts a model's exact output depends on besides the model itself."""
    import torch
    import transformers

    if loaded.device.startswith("cuda"):
        device_name = torch.cuda.get_device_name(torch.device(loaded.device))
    else:
        device_name = platform.machine()
    facts = {
        "device": loaded.device.split(":")[0],
        "device_name": device_name,
        "dtype": loaded.dtype,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": threads,
        "attention": "sdpa",
    }
    if not loaded.device.startswith("cuda"):
        facts.update(cpu_facts())
    return facts


def cpu_facts() -> dict[str, str]:
    """What a CPU float forward's bits depend on besides the software versions.

    torch's kernel dispatch level (``ATEN_CPU_CAPABILITY`` overrides it), the BLAS and the
    instruction set it may use (``MKL_ENABLE_INSTRUCTIONS``, ``MKL_CBWR``), and the CPU model.
    """
    import torch

    return {
        "cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "blas_isa": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "auto")
        + (f"/cbwr={os.environ['MKL_CBWR']}" if os.environ.get("MKL_CBWR") else ""),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
