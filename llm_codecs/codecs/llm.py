"""The model-driven codec: a causal language model predicts each token, rANS codes it.

Exactness rests on one rule (``docs/determinism.md``): compression replays, call for call, the
computation decompression performs. The schedule classes below are that computation. For a block
of ``T`` tokens it is a pure function of the codec's configuration and ``T``:

- the tokens are cut into ``lanes_used`` contiguous segments of ``S`` tokens (the last one
  shorter); all lanes advance in lock-step, one token per lane per model call, with batch shape
  ``(lanes_used, 1)``, and one rANS state codes every lane's token of a step, lane 0 first;
- every lane starts from the model's start token;
- with the lean forward (``step="lean"``, Llama-family models, :mod:`~llm_codecs.models.llama_step`)
  each lane's KV cache is a ring of ``context`` slots: token ``t`` sits at position ``t`` and
  attends to the latest ``context`` tokens, the oldest slot being overwritten in place;
- with ``transformers``' own forward (``step="transformers"``, any causal LM), when a lane's
  cache holds ``context`` positions it is dropped and rebuilt by one forward over the last
  ``context // 2`` inputs (the *re-prefill*), again with the same shape on both sides;
- lanes past their segment's end keep receiving the start token, so shapes never change.

Nothing depends on how many blocks are coded together, so one block decoded alone (a range read,
one Zarr chunk) replays exactly what its encoder did.
"""

from __future__ import annotations

import copy
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from ..errors import CodecError, CorruptDataError, ModelMismatchError
from .base import BlockCodec, check_int_param

__all__ = ["LanguageModelCodec", "NumericsWarning"]

#: Fewest tokens a lane gets before the schedule adds another lane: a lane starts without
#: context, so very short lanes cost ratio. 192 lets a 64 KiB block of prose (about 21,000
#: tokens) use 96 lanes.
MIN_LANE_TOKENS = 192
#: A block whose bytes are more than this fraction control characters or invalid UTF-8 is binary:
#: a text model would only waste time on it.
BINARY_FRACTION = 0.05
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[*range(0, 9), 11, 12, *range(14, 32), 127]] = True
_ESCAPED = re.compile("[\udc80-\udcff]")
_FALLBACK_METHOD = 2  # lz77
_STEPS = ("auto", "lean", "transformers")
_NUMERICS = ("auto", "portable", "native")
#: torch threads the model runs with unless configured: a constant, not the machine's core
#: count, so that the same data and configuration give the same frame on every machine and in
#: every process (Dask workers, for one, start with torch limited to one thread).
DEFAULT_THREADS = 1
#: Layout of the LLM payload, recorded in the frame's fingerprint: one rANS64 state shared by
#: all lanes (:mod:`~llm_codecs.coding.rans`). Frames without it used one stream per lane.
PAYLOAD_LAYOUT = "rans64-shared"


class NumericsWarning(UserWarning):
    """A frame is decoded in another numerics environment than the one that made it.

    Decoding is attempted; the per-block checksum turns any divergence into
    :class:`~llm_codecs.CorruptDataError`, never into wrong bytes.
    """


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 56:
            raise CorruptDataError("LLM payload: truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def looks_binary(block: bytes) -> bool:
    """Cheap test: too many control bytes or invalid UTF-8 for the block to be text."""
    if not block:
        return False
    arr = np.frombuffer(block, dtype=np.uint8)
    limit = BINARY_FRACTION * len(block)
    if int(_CONTROL[arr].sum()) > limit:
        return True
    if int((arr >= 0x80).sum()) <= limit:
        return False  # too few high bytes for invalid UTF-8 to matter
    escaped = len(_ESCAPED.findall(block.decode("utf-8", "surrogateescape")))
    return escaped > limit


def lane_layout(tokens: int, lanes: int) -> tuple[int, int]:
    """``(lanes_used, steps)`` of the schedule for a block of ``tokens`` tokens."""
    if tokens == 0:
        return 0, 0
    used = max(1, min(lanes, tokens // MIN_LANE_TOKENS))
    steps = -(-tokens // used)
    used = -(-tokens // steps)  # drop lanes the rounding left empty
    return used, steps


class _ThreadGate:
    """Lets model runs overlap only while they all want the same torch thread count.

    The coded bits depend on torch's intra-op thread count. That setting lives partly in each
    OS thread (OpenMP's per-thread value, which a new thread does not inherit) and partly in the
    process, so every run sets it in its own thread, and runs that want different counts never
    overlap. Runs that want the same count proceed together: torch releases the GIL, so
    single-threaded runs of several blocks fill several cores. Each thread gets its own setting
    back when its run ends.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._threads = 0

    @contextmanager
    def hold(self, threads: int):
        import torch

        with self._cond:
            while self._active and self._threads != threads:
                self._cond.wait()
            self._threads = threads
            self._active += 1
        previous = torch.get_num_threads()  # this OS thread's value
        try:
            if previous != threads:
                torch.set_num_threads(threads)
            yield
        finally:
            if previous != threads:
                torch.set_num_threads(previous)
            with self._cond:
                self._active -= 1
                if self._active == 0:
                    self._cond.notify_all()


_GATE = _ThreadGate()

# Set once an LZ77 fallback has run in this process, so its numba kernels are compiled or loaded.
_fallback_ready = threading.Event()


class _RingSchedule:
    """A ring KV cache of ``context`` slots per lane (module docstring), run by the lean float
    forward (``engine="lean"``) or the portable integer one (``engine="portable"``)."""

    def __init__(self, loaded, lanes: int, steps: int, context: int, start_id: int,
                 engine: str = "lean"):
        import torch

        self.inputs = torch.full((lanes, steps), start_id, dtype=torch.int64,
                                 device=loaded.device)
        self._slots = max(1, min(context, steps))
        if engine == "portable":
            from ..portable import integer_step

            self._step = integer_step(loaded.model, lanes, self._slots, steps, loaded.device)
        else:
            from ..models.llama_step import LlamaStep

            self._step = LlamaStep(loaded.model, lanes, self._slots, positions=steps)

    def logits(self, t: int):
        """Float logits ``(lanes, V)`` predicting token ``t``; ``inputs[:, :t + 1]`` must be set."""
        return self._step.step(self.inputs[:, t], t, slot=t % self._slots,
                               filled=min(t + 1, self._slots))


class _ReprefillSchedule:
    """``transformers``' forward and cache, re-prefilled at ``context`` (module docstring)."""

    def __init__(self, loaded, lanes: int, steps: int, context: int, start_id: int):
        import inspect

        import torch

        self._model = loaded.model
        self._context = context
        self._keep = max(1, context // 2)
        self.inputs = torch.full((lanes, steps), start_id, dtype=torch.int64,
                                 device=loaded.device)
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; accept both.
        params = inspect.signature(self._model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._cache = None
        self._cached = 0

    def logits(self, t: int):
        """Float logits ``(lanes, V)`` predicting token ``t``; ``inputs[:, :t + 1]`` must be set."""
        if self._cache is None or self._cached >= self._context:
            begin = max(0, t + 1 - self._keep) if self._cache is not None else t
            out = self._model(self.inputs[:, begin : t + 1], use_cache=True, logits_to_keep=1)
            self._cached = t + 1 - begin
        else:
            out = self._model(self.inputs[:, t : t + 1], use_cache=True, logits_to_keep=1,
                              **{self._cache_kw: self._cache})
            self._cached += 1
        cache = out.get("cache")
        self._cache = cache if cache is not None else out.get("past_key_values")
        return out.logits[:, -1, :]


class LanguageModelCodec(BlockCodec):
    """Lossless coding of text with a causal language model and rANS (method 3).

    Each block is tokenized losslessly, a HuggingFace causal LM predicts every next token of many
    lanes at once, the predictions are quantized to integer tables of ``2**scale_bits`` and a
    64-bit rANS coder codes them all, step by step, through one state. A block is kept as LLM
    payload only if that beats the LZ77 codec on it; binary blocks go straight to LZ77 (and the
    frame stores a block raw if nothing pays).

    Parameters
    ----------
    model : str
        ``"default"`` (the embedded model), a HuggingFace hub id or a local directory.
    revision : str, optional
        Hub revision of ``model``.
    lanes : int
        Most parallel lanes per block (1 .. 1024; a lane gets at least 192 tokens). More lanes
        run faster, but each lane starts without context. The default, 96, codes the embedded
        model's 64 KiB blocks about 0.5% larger than 64 lanes and 15-25% faster on CPU
        (measured on ``valid/`` text, ``docs/benchmarks.md``).
    context : int
        Tokens of context per lane (16 .. 8192; capped by the model's own limit): the ring's
        size with the lean forward, the cache size before a re-prefill over the last
        ``context // 2`` with ``transformers``' forward. The default, 64, costs the embedded
        model about 0.2% in size against 128 and runs about 30% faster on CPU (attention reads
        the whole cache at every token).
    step : str
        With the float engine (``numerics="native"``), which forward computes the
        predictions: ``"lean"`` (a preallocated-cache forward for Llama-family models,
        :mod:`~llm_codecs.models.llama_step`), ``"transformers"`` (the model's own forward, any
        causal LM) or ``"auto"`` (lean when the model supports it). The two give different
        bits; the frame records which one was used. Choosing one makes ``numerics="auto"``
        native.
    numerics : str
        How the model's predictions are computed. ``"portable"``: the exact integer engine
        (:mod:`llm_codecs.portable`), whose predictions are the same on every CPU, thread count,
        torch version and on CUDA, so a frame decodes on any machine; Llama-family models only.
        ``"native"``: the model's float forward (``step`` chooses which); a frame then decodes
        only where the float kernels compute the same bits (the same CPU capability and math
        libraries; the frame records them). ``"auto"`` (default): portable when the model
        supports it and no float forward was chosen with ``step``, else native.
    scale_bits : int
        Precision of the frequency tables (24 .. 31).
    cache : bool
        Adapt the model's predictions to the block (default): a unigram cache of the tokens
        already coded and match models that predict what followed the same context earlier in
        the block (:mod:`~llm_codecs.coding.cache_mix`). It costs little where the model is
        good and saves much on repetitive text and on text unlike the model's training data.
    threads : int
        torch intra-op threads the model runs with (default :data:`DEFAULT_THREADS`); results
        depend on it, so it is recorded and decoding uses the same, whatever the process's own
        torch setting (restored afterwards).
    device : str
        ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
    dtype : str
        Model dtype, ``"float32"`` by default.
    fallback : bool
        Keep a block as LZ77 when that is smaller or the block is binary (default). ``False``
        codes every non-empty block with the model, to measure the model itself.
    local_files_only : bool
        Never use the network to find the model (not recorded: it does not change the output).
    """

    name: ClassVar[str] = "llm"
    method_id: ClassVar[int] = 3
    default_block_size: ClassVar[int] = 64 << 10
    max_block_size: ClassVar[int] = 4 << 20

    def __init__(
        self,
        model: str = "default",
        revision: str | None = None,
        lanes: int = 96,
        context: int = 64,
        step: str = "auto",
        numerics: str = "auto",
        scale_bits: int = 28,
        cache: bool = True,
        threads: int = DEFAULT_THREADS,
        device: str = "cpu",
        dtype: str = "float32",
        fallback: bool = True,
        local_files_only: bool = False,
    ):
        if not isinstance(model, str) or not model:
            raise CodecError(f"model must be a non-empty string, got {model!r}")
        if revision is not None and not isinstance(revision, str):
            raise CodecError(f"revision must be a string or None, got {revision!r}")
        if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise CodecError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
        self.model = model
        self.revision = revision
        self.lanes = check_int_param("lanes", lanes, 1, 1024)
        self.context = check_int_param("context", context, 16, 8192)
        if step not in _STEPS:
            raise CodecError(f"step must be one of {', '.join(_STEPS)}, got {step!r}")
        self.step = step
        if numerics not in _NUMERICS:
            raise CodecError(f"numerics must be one of {', '.join(_NUMERICS)}, got {numerics!r}")
        self.numerics = numerics
        #: Numerics of the frame being decoded, when the codec was bound to one (:meth:`bind`).
        self._frame_numerics: dict[str, Any] | None = None
        self.scale_bits = check_int_param("scale_bits", scale_bits, 24, 31)
        if not isinstance(cache, bool):
            raise CodecError(f"cache must be a bool, got {cache!r}")
        self.cache = cache
        self.threads = check_int_param("threads", threads, 1, 1024)
        self.device = device
        self.dtype = dtype
        if not isinstance(fallback, bool):
            raise CodecError(f"fallback must be a bool, got {fallback!r}")
        self.fallback = fallback
        self.local_files_only = bool(local_files_only)
        self._loaded = None
        self._load_lock = threading.Lock()
        self._fallback = None
        #: Ideal code length (bits) of the last block :meth:`encode_block` coded, for benchmarks.
        self.last_ideal_bits = 0.0

    # -- configuration -------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The parameters recorded in the frame header."""
        return {
            "model": self.model,
            "revision": self.revision,
            "lanes": self.lanes,
            "context": self.context,
            "step": self.step,
            "numerics": self.numerics,
            "scale_bits": self.scale_bits,
            "cache": self.cache,
            "threads": self.threads,
            "device": self.device,
            "dtype": self.dtype,
            "fallback": self.fallback,
        }

    @property
    def allowed_methods(self) -> frozenset[int]:
        """LLM payloads, and LZ77 for the blocks where the model did not pay."""
        return frozenset({self.method_id, _FALLBACK_METHOD})

    def __getstate__(self):
        # Never pickle a model: a worker loads its own, once per process.
        state = self.__dict__.copy()
        state.update(_loaded=None, _load_lock=None, _fallback=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._load_lock = threading.Lock()

    # -- model ----------------------------------------------------------------------------

    @property
    def loaded(self):
        """The loaded model (loaded on first use, shared by the whole process)."""
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    from ..models.loading import load_model

                    self._loaded = load_model(
                        self.model, revision=self.revision, device=self._run_device(),
                        dtype=self.dtype, local_files_only=self.local_files_only,
                    )
        return self._loaded

    def _run_device(self) -> str:
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                warnings.warn(
                    f"frame was made on {self.device} but CUDA is not available: decoding on "
                    "CPU, which will most likely fail its checksums",
                    NumericsWarning, stacklevel=3,
                )
                return "cpu"
        return self.device

    def fingerprint(self) -> dict[str, Any]:
        """Model identity and what the coded bits depend on besides it.

        A portable frame names the engine and its version (the arithmetic is specified, so no
        machine facts matter); a native frame records the machine's numerics and the forward.
        """
        from ..models.loading import numerics

        loaded = self.loaded
        if self.resolved_numerics() == "portable":
            from ..portable import ENGINE

            return {"model": loaded.identity, "engine": ENGINE, "coder": PAYLOAD_LAYOUT}
        return {"model": loaded.identity, "numerics": numerics(loaded, self.threads),
                "step": self.resolved_step(), "coder": PAYLOAD_LAYOUT}

    def resolved_numerics(self) -> str:
        """``"portable"`` or ``"native"``: the engine this codec runs with its model.

        Raises
        ------
        CodecError
            ``numerics="portable"`` with a model the portable engine does not support.
        """
        if self.numerics == "native":
            return "native"
        from ..portable import portable_support

        reason = portable_support(self.loaded.model)
        if self.numerics == "portable":
            if reason:
                raise CodecError(f"numerics='portable' is not available for {self.model!r}: "
                                 f"{reason}; use numerics='native'")
            return "portable"
        return "native" if reason or self.step != "auto" else "portable"

    def bind(self, fingerprint: dict[str, Any] | None) -> LanguageModelCodec:
        """The codec that decodes a frame with ``fingerprint`` (checked, see the base class).

        A frame whose fingerprint names no engine was made by the float forward (every frame
        from before the portable engine): with ``numerics="auto"`` it is decoded natively.
        """
        codec = self
        if (self.numerics == "auto" and isinstance(fingerprint, dict)
                and "engine" not in fingerprint):
            codec = copy.copy(self)
            codec.numerics = "native"
        if isinstance(fingerprint, dict) and isinstance(fingerprint.get("numerics"), dict):
            if codec is self:
                codec = copy.copy(self)
            codec._frame_numerics = fingerprint["numerics"]
        codec.check_fingerprint(fingerprint)
        return codec

    def decode_failure_hint(self) -> str | None:
        """Why a native frame may fail here although it is intact, and how to read it."""
        from ..models.loading import numerics

        if self._frame_numerics is None or self.resolved_numerics() != "native":
            return None
        mine = numerics(self.loaded, self.threads)
        theirs = self._frame_numerics
        differs = sorted(k for k in theirs if theirs[k] != mine.get(k))
        unknown = sorted(k for k in mine if k not in theirs)
        if not differs and not unknown:
            return None
        text = "this frame was made by the float ('native') engine, whose results depend on the "
        text += "machine's float kernels"
        if differs:
            text += ("; the encoder had " + ", ".join(f"{k}={theirs[k]!r}" for k in differs)
                     + ", this machine has " + ", ".join(f"{k}={mine.get(k)!r}" for k in differs))
        if unknown:
            text += (f"; the encoder's {', '.join(unknown)} were not recorded (this machine: "
                     + ", ".join(f"{k}={mine[k]!r}" for k in unknown) + ")")
        return text + (
            ". The data is most likely intact: decode it on a machine like the encoder's (same "
            "CPU capability, math library and device), then re-encode it with "
            "numerics='portable' to read it anywhere"
        )

    def resolved_step(self) -> str:
        """``"lean"`` or ``"transformers"``: the forward this codec runs with its model.

        Raises
        ------
        CodecError
            ``step="lean"`` with a model the lean forward does not support.
        """
        from ..models.llama_step import supports

        if self.step == "transformers":
            return "transformers"
        if supports(self.loaded.model):
            return "lean"
        if self.step == "lean":
            raise CodecError(
                f"step='lean' needs a Llama-family model; {self.model!r} is "
                f"{type(self.loaded.model).__name__}: use step='transformers' or 'auto'"
            )
        return "transformers"

    def _schedule(self, loaded, lanes: int, steps: int, start_id: int):
        context = self._context_for(loaded)
        if self.resolved_numerics() == "portable":
            return _RingSchedule(loaded, lanes, steps, context, start_id, engine="portable")
        kind = _RingSchedule if self.resolved_step() == "lean" else _ReprefillSchedule
        return kind(loaded, lanes, steps, context, start_id)

    def check_fingerprint(self, fingerprint: dict[str, Any] | None) -> None:
        """Refuse a frame made with another model; warn about other numerics.

        Raises
        ------
        ModelMismatchError
            The frame's model hash differs from the loaded model's (or the model is missing).
        CorruptDataError
            The frame carries no usable fingerprint.
        """
        if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("model"), dict):
            raise CorruptDataError("LLM frame without a model fingerprint")
        theirs = fingerprint["model"]
        ours = self.loaded.identity
        if theirs.get("sha256") != ours["sha256"]:
            raise ModelMismatchError(
                f"frame was made with model {theirs.get('name')!r} (revision "
                f"{theirs.get('revision')}, sha256 {str(theirs.get('sha256'))[:16]}...), but "
                f"{self.model!r} loads as sha256 {ours['sha256'][:16]}..."
            )
        if "engine" in fingerprint:
            self._check_portable(fingerprint)
            return
        if self.resolved_numerics() != "native":
            raise ModelMismatchError(
                "frame was made by the float ('native') engine, this codec runs the portable "
                "one: decode with numerics='native' (or 'auto')"
            )
        # Frames from before the lean forward, the in-block cache and the compact rANS state
        # carry no "step", those from before the shared rANS state no "coder"; this version
        # cannot replay them.
        if "step" not in fingerprint or fingerprint.get("coder") != PAYLOAD_LAYOUT:
            raise CorruptDataError(
                f"LLM frame made by an earlier, incompatible llm_codecs (its fingerprint has "
                f"coder {fingerprint.get('coder')!r}, this version writes {PAYLOAD_LAYOUT!r}): "
                "decode it with the version that wrote it"
            )
        theirs_step = fingerprint["step"]
        if theirs_step != self.resolved_step():
            raise ModelMismatchError(
                f"frame was coded with the {theirs_step!r} forward, this codec runs "
                f"{self.resolved_step()!r} (its step={self.step!r}): decode with "
                f"step={theirs_step!r}"
            )
        mine = self.fingerprint()["numerics"]
        recorded = fingerprint.get("numerics") or {}
        # Only what the frame recorded: earlier versions recorded fewer facts.
        differs = sorted(k for k in mine if k in recorded and recorded[k] != mine[k])
        if differs:
            detail = ", ".join(f"{k}: {recorded.get(k)!r} -> {mine[k]!r}" for k in differs)
            warnings.warn(
                f"decoding in another numerics environment ({detail}); any divergence is "
                "reported as CorruptDataError",
                NumericsWarning, stacklevel=2,
            )

    def _check_portable(self, fingerprint: dict[str, Any]) -> None:
        from ..portable import ENGINE, ENGINES

        engine = fingerprint.get("engine")
        if engine not in ENGINES:
            raise CorruptDataError(
                f"frame was made by portable engine {engine!r}, which this llm_codecs does not "
                f"know (it runs {', '.join(ENGINES)}): upgrade llm_codecs to decode it"
            )
        if fingerprint.get("coder") != PAYLOAD_LAYOUT:
            raise CorruptDataError(f"LLM frame with an unknown payload layout "
                                   f"{fingerprint.get('coder')!r}")
        if self.resolved_numerics() != "portable":
            raise ModelMismatchError(
                f"frame was made by the portable engine {engine!r}, this codec runs the float "
                "('native') one: decode with numerics='portable' (or 'auto')"
            )
        if engine != ENGINE:  # pragma: no cover - a single engine version exists so far
            raise CorruptDataError(f"portable engine {engine!r} is not implemented")

    # -- coding ---------------------------------------------------------------------------

    def frame_fallbacks(self) -> list[BlockCodec]:
        """LZ77 levels 9 and default when ``fallback`` is on (see the base class)."""
        return self._fallback_codecs() if self.fallback else []

    def _fallback_codecs(self) -> list[BlockCodec]:
        if self._fallback is None:
            from . import make_codec

            # Level 9 is usually smaller, but not always (spreadsheets, some binaries): both are
            # tried, and both are cheap next to the model.
            self._fallback = [make_codec("lz77", level=9), make_codec("lz77")]
        return self._fallback

    def _fallback_payload(self, block: bytes) -> bytes:
        payload = min((c.encode_block(block) for c in self._fallback_codecs()), key=len)
        _fallback_ready.set()
        return payload

    @property
    def workers(self) -> int:
        """Blocks coded at once: one per ``threads`` cores (each block's run is independent)."""
        return max(1, (os.cpu_count() or 1) // self.threads)

    def encode_blocks(self, blocks: list[bytes]) -> list[tuple[int, bytes]]:
        """Code each block with the model, or with LZ77 where that is smaller or it is binary.

        Blocks are coded in parallel threads (:attr:`workers`); each block's bits depend only on
        the block and the configuration, never on which blocks run beside it.
        """
        if len(blocks) <= 1 or self.workers <= 1:
            return [self._encode_one(b) for b in blocks]
        _ = self.loaded  # load once, before the threads race for it
        with ThreadPoolExecutor(min(self.workers, len(blocks))) as pool:
            return list(pool.map(self._encode_one, blocks))

    def _encode_one(self, block: bytes) -> tuple[int, bytes]:
        if not self.fallback:
            coded = self.encode_block(block) if block else b""
            if coded is None:
                raise CodecError("the model's tokenizer cannot represent this block")
            return self.method_id, coded
        if not block or looks_binary(block):
            return _FALLBACK_METHOD, self._fallback_payload(block)
        if _fallback_ready.is_set():
            # LZ77 runs beside the model: numba releases the GIL while it codes.
            with ThreadPoolExecutor(1) as pool:
                fallback = pool.submit(self._fallback_payload, block)
                coded = self.encode_block(block)
                payload = fallback.result()
        else:
            # The first LZ77 call of a process may compile its kernels (tens of seconds on a
            # fresh install). Compilation holds the GIL and numba's lock almost throughout, so a
            # model run beside it would crawl. The model codes first, then LZ77 compiles.
            coded = self.encode_block(block)
            payload = self._fallback_payload(block)
        if coded is not None and len(coded) < len(payload):
            return self.method_id, coded
        return _FALLBACK_METHOD, payload

    def _context_for(self, loaded) -> int:
        limit = loaded.max_positions
        return min(self.context, limit) if limit else self.context

    def _start_id(self, loaded) -> int:
        cfg = loaded.model.config
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(cfg, name, None)
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, int) and 0 <= value < loaded.vocab_size:
                return value
        return 0

    def _run(self, fn):
        """Run ``fn(loaded)`` with the recorded torch thread count and no autograd."""
        import torch

        loaded = self.loaded
        with _GATE.hold(self.threads), torch.inference_mode():
            return fn(loaded)

    def encode_block(self, block: bytes) -> bytes | None:
        """The LLM payload of one block, or None if the tokenizer cannot represent it."""
        from ..models.tokens import UnsupportedTokenizerError

        try:
            ids = self.loaded.tokenizer.encode(block)
        except UnsupportedTokenizerError:
            return None
        return self._run(lambda loaded: self._encode_ids(loaded, ids))

    def _encode_ids(self, loaded, ids: np.ndarray) -> bytes:
        import torch

        from ..coding import rans
        from ..coding.cache_mix import TokenCacheMixer

        T = len(ids)
        used, steps = lane_layout(T, self.lanes)
        start_id = self._start_id(loaded)
        targets, active = self._grid(ids, used, steps, start_id)
        schedule = self._schedule(loaded, used, steps, start_id)
        schedule.inputs[:, 1:] = torch.from_numpy(targets[:, :-1]).to(loaded.device)
        # Step-major, as the decoder meets the symbols.
        starts = np.empty((steps, used), dtype=np.int64)
        freqs = np.empty_like(starts)
        mixer = TokenCacheMixer(used, loaded.vocab_size, self.scale_bits, self.cache, steps)
        for t in range(steps):
            cum = mixer.tables(schedule.logits(t))
            starts[t], freqs[t] = rans.symbol_bounds(cum, targets[:, t])
            mixer.observe(targets[:, t], active[:, t])
        coded = active.T
        # The model's cross-entropy under the very tables coded: the coder's overhead reference.
        self.last_ideal_bits = float(
            (self.scale_bits - np.log2(freqs[coded].astype(np.float64))).sum()
        )
        payload = bytearray()
        _put_varint(payload, T)
        payload += rans.encode(starts[coded], freqs[coded], self.scale_bits)
        return bytes(payload)

    @staticmethod
    def _grid(ids: np.ndarray, used: int, steps: int, start_id: int):
        """``(targets, active)``, each ``(used, steps)``: lane ``i`` codes row ``i``."""
        grid = np.full(used * steps, start_id, dtype=np.int64)
        grid[: len(ids)] = ids
        active = np.zeros(used * steps, dtype=bool)
        active[: len(ids)] = True
        return grid.reshape(used, steps), active.reshape(used, steps)

    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode an LLM payload back into ``size`` bytes.

        Raises
        ------
        CorruptDataError
            If the payload is malformed, its streams do not decode exactly, or the tokens do not
            make ``size`` bytes.
        """
        payload = bytes(payload)
        T, pos = _get_varint(payload, 0)
        # Every token is at least one byte: this bounds all the work a forged header can cause.
        if not 1 <= T <= size:
            raise CorruptDataError(f"LLM payload: {T} tokens cannot make {size} bytes")
        used, steps = lane_layout(T, self.lanes)
        stream = payload[pos:]
        ids = self._run(lambda loaded: self._decode_stream(loaded, stream, T, used, steps))
        data = self.loaded.tokenizer.decode(ids)
        if data is None or len(data) != size:
            raise CorruptDataError("LLM payload: tokens do not decode to the block")
        return data

    def _decode_stream(self, loaded, stream: bytes, T: int, used: int,
                       steps: int) -> np.ndarray:
        import torch

        from ..coding.cache_mix import TokenCacheMixer
        from ..coding.rans import RansDecoder

        start_id = self._start_id(loaded)
        _, active = self._grid(np.zeros(T, dtype=np.int64), used, steps, start_id)
        schedule = self._schedule(loaded, used, steps, start_id)
        decoder = RansDecoder(stream)
        out = np.empty((used, steps), dtype=np.int64)
        mixer = TokenCacheMixer(used, loaded.vocab_size, self.scale_bits, self.cache, steps)
        for t in range(steps):
            cum = mixer.tables(schedule.logits(t))
            symbols = decoder.decode_step(cum, active[:, t], self.scale_bits)
            mixer.observe(symbols, active[:, t])
            out[:, t] = np.where(active[:, t], symbols, start_id)
            if t + 1 < steps:
                schedule.inputs[:, t + 1] = torch.from_numpy(out[:, t]).to(loaded.device)
        decoder.check_finished()
        return out.reshape(-1)[:T]
