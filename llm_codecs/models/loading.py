"""Load, fingerprint and cache the language models the LLM codec runs.

A model is known by its hash (:func:`_hash_model`: weights after the dtype cast, and the
tokenizer), which every frame records. Loaded models are kept in a small process-wide cache
keyed by that hash (at most ``LLM_CODECS_MAX_MODELS``, default 3, least recently used out), so
the names one model goes by (``"default"``, its directory, a symbolic link, a copy, any
``revision`` string) share one copy. Loading happens behind a lock: Zarr decodes several chunks
at once in threads, and Dask workers must each load a model once, never receive one pickled.

``"default"`` is the small model shipped in ``llm_codecs/models/default``; anything else is
handed to ``transformers`` exactly as a user would (a hub id or a local directory), so the
embedded model and a hub model share the loading code. The one shortcut: a local
directory whose files :mod:`.direct_loading` can read exactly as ``transformers`` reads them
(the embedded model's, for one) is loaded without importing ``transformers``' model classes,
about two seconds of every process start; same weights, same tokenizer, same hash.
:func:`load_model` loads a model by name (to compress, or for a codec configured with one);
decoding finds the model a frame names by its hash instead (:mod:`.finding`), and never uses
the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CodecError, ModelMismatchError, UnsupportedTokenizerError
from . import hashes
from .tokens import ByteTokenizer

__all__ = ["DEFAULT_MODEL_DIR", "LoadedModel", "cached_model", "clear_cache", "load_directory",
           "load_model", "resolve_model"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
_DTYPES = ("float32", "float64", "bfloat16", "float16")
#: Loaded models kept when ``LLM_CODECS_MAX_MODELS`` does not say.
DEFAULT_MAX_MODELS = 3
_MAX_ALIASES = 1024

#: (sha256, device, dtype) -> loaded model, least recently used first.
_cache: OrderedDict[tuple[str, str, str], LoadedModel] = OrderedDict()
#: How a model was asked for -> the hash it loaded as (a local directory's key includes its
#: files' sizes and times, so a directory whose files change is loaded again).
_aliases: dict[tuple, str] = {}
_cache_lock = threading.Lock()
# One load at a time: loads are rare, and two at once would double the peak memory. Reentrant
# because finding a model (finding.py) loads candidates while holding it.
_load_lock = threading.RLock()


@dataclass
class LoadedModel:
    """A model ready to predict, with everything the frame records about it.

    Attributes
    ----------
    model : transformers.PreTrainedModel or DirectCausalLM
        In eval mode, on ``device``, in ``dtype``: the ``transformers`` module, or the weights
        under its attribute paths when read directly (:mod:`.direct_loading`;
        :meth:`torch_model` gives the module).
    tokenizer : ByteTokenizer
        Lossless bytes <-> ids.
    identity : dict
        ``{"name", "revision", "sha256"}``: the hash covers the weights (names, shapes, dtypes,
        values) and the tokenizer's full JSON, so any change to either is detected. The name and
        revision are those it was asked for by; aliases of one model share ``model`` and
        ``tokenizer`` and differ only here.
    device, dtype : str
    source : str, optional
        The directory or hub id it was loaded from.
    """

    model: Any
    tokenizer: ByteTokenizer
    identity: dict[str, Any]
    device: str
    dtype: str
    #: Where the model was loaded from, for :meth:`torch_model`.
    source: str | None = None

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

    def torch_model(self):
        """The model as a ``transformers`` module (what its generic forward runs).

        A model loaded by :mod:`.direct_loading` holds only its weights; its module is loaded
        from the same directory on first use, and must have the same hash.

        Raises
        ------
        ModelMismatchError
            The module ``transformers`` loads hashes differently.
        """
        from .direct_loading import DirectCausalLM

        if not isinstance(self.model, DirectCausalLM):
            return self.model
        with _load_lock:
            if self.model._torch_model is None:
                full = _load_transformers(self.source, None, self.device, self.dtype, True,
                                          str(self.source))
                if full.identity["sha256"] != self.identity["sha256"]:
                    raise ModelMismatchError(
                        f"model {self.source!r} hashes as {self.identity['sha256']} when read "
                        f"directly but as {full.identity['sha256']} through transformers"
                    )
                self.model._torch_model = full.model
        return self.model._torch_model

    def named(self, name: str | None, revision: str | None) -> LoadedModel:
        """This model under another name (the same weights, tokenizer and hash)."""
        identity = {"name": name, "revision": revision, "sha256": self.identity["sha256"]}
        if identity == self.identity:
            return self
        return dataclasses.replace(self, identity=identity)


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


def _check_dtype(dtype: str) -> None:
    if dtype not in _DTYPES:
        raise CodecError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")


def max_models() -> int:
    """How many loaded models the process keeps (``LLM_CODECS_MAX_MODELS``, at least 1)."""
    try:
        return max(1, int(os.environ.get("LLM_CODECS_MAX_MODELS", DEFAULT_MAX_MODELS)))
    except ValueError:
        return DEFAULT_MAX_MODELS


def clear_cache() -> None:
    """Forget every loaded model (codecs that hold one keep theirs until they go)."""
    with _cache_lock:
        _cache.clear()
        _aliases.clear()


def cached_model(sha256: str, device: str, dtype: str) -> LoadedModel | None:
    """The loaded model with ``sha256`` on ``device`` in ``dtype``, if the process has it."""
    key = (sha256, device, dtype)
    with _cache_lock:
        loaded = _cache.get(key)
        if loaded is not None:
            _cache.move_to_end(key)
        return loaded


def known_hash(path: str, device: str, dtype: str) -> str | None:
    """The hash the model directory ``path`` loads as, if known without loading it."""
    signature = hashes.directory_signature(path)
    if signature is None:
        return None
    with _cache_lock:
        sha = _aliases.get(("dir", signature, device, dtype))
    return sha or hashes.lookup(path, dtype)


def _keep(loaded: LoadedModel) -> LoadedModel:
    """Cache ``loaded`` by its hash; if that hash is already cached, return that copy."""
    key = (loaded.identity["sha256"], loaded.device, loaded.dtype)
    with _cache_lock:
        have = _cache.get(key)
        if have is not None:
            _cache.move_to_end(key)
            return have
        _cache[key] = loaded
        while len(_cache) > max_models():
            _cache.popitem(last=False)
        return loaded


def _get(key: tuple, source: str, revision: str | None, device: str, dtype: str,
         local_files_only: bool, want: str | None, label: str,
         keep: bool = True) -> LoadedModel:
    """The model ``source`` loads as, from the cache when ``key`` was seen before.

    It is cached if ``keep`` and its hash is ``want`` (any hash when ``want`` is None).
    """
    with _cache_lock:
        sha = _aliases.get(key)
    if sha is not None and (hit := cached_model(sha, device, dtype)) is not None:
        return hit
    with _load_lock:
        with _cache_lock:
            sha = _aliases.get(key)
        if sha is not None and (hit := cached_model(sha, device, dtype)) is not None:
            return hit
        loaded = _load(source, revision, device, dtype, local_files_only, label)
        sha = loaded.identity["sha256"]
        if key[0] == "dir":
            hashes.remember(source, dtype, sha)
        with _cache_lock:
            if len(_aliases) >= _MAX_ALIASES:
                _aliases.clear()
            _aliases[key] = sha
        return _keep(loaded) if keep and want in (None, sha) else loaded


def load_directory(path: str, *, device: str = "cpu", dtype: str = "float32",
                   want: str | None = None, keep: bool = True) -> LoadedModel:
    """Load the model directory ``path``, never using the network.

    The model is cached (by hash, shared with its aliases) when ``keep`` is true and its hash is
    ``want`` (any hash when ``want`` is None). Raises what :func:`load_model` raises.
    """
    _check_dtype(dtype)
    signature = hashes.directory_signature(path)
    if signature is None:
        raise ModelMismatchError(f"{path} is not a model directory (no config.json)")
    real = os.path.realpath(path)
    key = ("dir", signature, device, dtype)
    return _get(key, real, None, device, dtype, True, want, path, keep).named(real, None)


def _hash_model(model, tokenizer) -> str:
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    digest.update(tokenizer.backend_tokenizer.to_str().encode())
    return digest.hexdigest()


def _load(source: str, revision: str | None, device: str, dtype: str,
          local_files_only: bool, label: str) -> LoadedModel:
    if os.path.isdir(source):
        from .direct_loading import load_direct

        direct = load_direct(source, dtype)
        if direct is not None:
            lm, tokenizer = direct
            _check_complete(lm, {}, tokenizer, label)
            return _ready(lm, tokenizer, source, revision, device, dtype)
    return _load_transformers(source, revision, device, dtype, local_files_only, label)


def _ready(lm, tokenizer, source: str, revision: str | None, device: str,
           dtype: str) -> LoadedModel:
    """``lm`` on ``device``, in eval mode, with its identity."""
    if device.startswith("cuda"):
        import torch

        # Autotuning picks kernels by timing and TF32 by default: both would differ between runs.
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    lm = lm.eval().to(device)
    # Hash what was loaded, after the dtype cast: that is what the numbers depend on.
    identity = {"name": source, "revision": revision, "sha256": _hash_model(lm, tokenizer)}
    return LoadedModel(lm, ByteTokenizer(tokenizer), identity, device, dtype, source)


def _load_transformers(source: str, revision: str | None, device: str, dtype: str,
                       local_files_only: bool, label: str) -> LoadedModel:
    import torch
    import transformers
    from safetensors import SafetensorError

    kwargs = {"revision": revision, "local_files_only": local_files_only}
    # Loading bars would interleave with the CLI's own progress bar.
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        lm, info = transformers.AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype), attn_implementation="sdpa",
            output_loading_info=True, **kwargs
        )
    except (OSError, ValueError, SafetensorError) as exc:  # the last: a damaged weights file
        raise ModelMismatchError(
            f"cannot load model {label!r}"
            + (f" (revision {revision})" if revision else "")
            + f": {exc}".rstrip()
        ) from exc
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    _check_complete(lm, info, tokenizer, label)
    return _ready(lm, tokenizer, source, revision, device, dtype)


def _check_complete(lm, info: dict, tokenizer, label: str) -> None:
    """Refuse a model that is not all in its files, or whose tokenizer it cannot predict.

    Weights missing from the checkpoint (an encoder directory loaded as a causal LM gets a
    language-model head) are initialised at random by ``transformers``: such a model would
    round-trip in the process that made the frame and fail in every other one.
    """
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k) for k in info.get("mismatched_keys") or ())
    if missing or mismatched:
        shown = ", ".join((missing + mismatched)[:4])
        more = len(missing) + len(mismatched) - 4
        raise ModelMismatchError(
            f"model {label!r} is not a complete causal language model: "
            f"{len(missing) + len(mismatched)} of its weights are not in its files ({shown}"
            + (f" and {more} more" if more > 0 else "")
            + ") and would be random; is it an encoder or a base model without its LM head?"
        )
    ids = len(tokenizer)
    width = int(lm.get_output_embeddings().weight.shape[0])
    if ids > width:
        raise UnsupportedTokenizerError(
            f"model {label!r}: its tokenizer has {ids} token ids but the model predicts only "
            f"{width}; the tokenizer and the weights do not belong together"
        )


def load_model(model: str = "default", *, revision: str | None = None, device: str = "cpu",
               dtype: str = "float32", local_files_only: bool = False) -> LoadedModel:
    """Load ``model`` once per process (thread-safe) and return it.

    Names of one model (paths to the same directory, copies of it, any ``revision`` of a local
    directory) share one loaded copy; the returned :attr:`LoadedModel.identity` carries the name
    and revision asked for.

    Parameters
    ----------
    model : str
        ``"default"`` (the embedded model), a HuggingFace hub id, or a local directory in
        HuggingFace format.
    revision : str, optional
        Hub revision (branch, tag or commit); ignored for a local directory.
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
    _check_dtype(dtype)
    source = resolve_model(model)
    signature = hashes.directory_signature(source) if os.path.isdir(source) else None
    if signature is not None:
        key: tuple = ("dir", signature, device, dtype)
        loaded = _get(key, os.path.realpath(source), None, device, dtype, True, None, model)
    else:
        key = ("hub", source, revision, device, dtype)
        loaded = _get(key, source, revision, device, dtype, local_files_only, None, model)
    return loaded.named(model, revision)


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
