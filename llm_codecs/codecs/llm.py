"""The model-driven codec: a causal language model predicts each token, rANS codes it.

This module holds the codec's configuration, its model and the per-block policy (model or
classic fallback: LZ77, LZMA or CM; blocks in parallel threads). The computation it replays on
both sides is in :mod:`.llm_schedule` (lanes, KV-cache schedules), the step loop both directions
share in :mod:`.llm_steps`, and what a frame records about its numerics in
:mod:`.llm_fingerprint`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np

from .. import compile_helper
from ..coding.scale import check_scale_bits
from ..coding.varint import get_varint, put_varint
from ..errors import CodecError, CorruptDataError
from . import plain_bounds
from .base import BlockCodec, check_int_param
from .llm_fingerprint import PAYLOAD_LAYOUT, FingerprintPolicy, NumericsWarning
from .llm_schedule import (
    MIN_LANE_TOKENS,
    PrefillSchedule,
    ReprefillSchedule,
    RingSchedule,
    lane_layout,
    token_grid,
)
from .thread_gate import GATE

__all__ = ["MIN_LANE_TOKENS", "PAYLOAD_LAYOUT", "LanguageModelCodec", "NumericsWarning",
           "lane_layout", "looks_binary"]

#: A block whose bytes are more than this fraction control characters or invalid UTF-8 is binary:
#: a text model would only waste time on it.
BINARY_FRACTION = 0.05
_CONTROL = np.zeros(256, dtype=bool)
_CONTROL[[*range(0, 9), 11, 12, *range(14, 32), 127]] = True
_ESCAPED = re.compile("[\udc80-\udcff]")
#: Methods of the classic fallback: LZ77 (levels 9 and 5), LZMA2 (liblzma), context mixing
#: (version 5 written, versions 1 to 4 still read).
_FALLBACK_METHODS = frozenset({2, 4, 5, 6, 7, 8, 9})
_STEPS = ("auto", "lean", "transformers")
_NUMERICS = ("auto", "portable", "native")
#: torch threads the model runs with unless configured: a constant, not the machine's core
#: count, so that the same data and configuration give the same frame on every machine and in
#: every process (Dask workers, for one, start with torch limited to one thread).
DEFAULT_THREADS = 1
#: Most torch threads a codec may record. A header is input from a stranger: 1,024 threads made
#: a 2 KB decode take 116 s on two cores and left 2,047 threads behind. 256 covers the largest
#: machines a frame is made on; the portable engine never runs more than the machine's CPUs.
MAX_THREADS = 256


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, where the OS reports one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def usable_cpus() -> int:
    """CPUs this process's work may keep busy: :func:`available_cpus`, at most
    ``OMP_NUM_THREADS`` where it is set (the limit torch and the BLAS libraries obey, which Dask
    sets to 1 in its worker processes so that processes sharing a machine do not each take all
    of it)."""
    cpus = available_cpus()
    with contextlib.suppress(KeyError, ValueError):
        cpus = min(cpus, max(1, int(os.environ["OMP_NUM_THREADS"])))
    return cpus


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


#: Steps (tokens per lane) the model codes before it may give up on a block: a lane's context
#: (64 tokens) is full by then. With 96 lanes that is 20-30% of a 64 KiB block, spread over the
#: whole block.
PROBE_STEPS = 64
#: The probe extrapolates the rate of its last steps (earlier ones have less context and a
#: colder in-block cache, and cost far more than the block's average on repetitive text).
PROBE_WINDOW = 16
#: A block's bits against the probe's extrapolation, at the low end of what the choice files
#: gave (42 blocks of prose, JSON, CSV, XML, logs and code from ``valid/`` and this machine:
#: 0.78 to 1.78, median 0.98; ``benchmarks/probe.py`` reports how it fares on ``bench/``):
#: the model gives up only where it is clearly behind.
PROBE_GAIN = 0.78
#: An earlier, cruder look, for the blocks the model is far behind on (logs, markup, tables,
#: text in other scripts, where context mixing wins): after this many steps, the rate of
#: steps :data:`PROBE_EARLY_WINDOW` .. :data:`PROBE_EARLY_STEPS` - 1 (a lane's context a
#: quarter full) is extrapolated with a much lower gain. The choice files (47 blocks of
#: ``valid/``, this machine's logs, XML, man pages, man-db index and CJK texts, against the
#: classic fallback with context mixing version 3) say at which gain each block would be
#: given up (its bits over the extrapolation, times the fallback's size over the model's):
#: 0.87 or more on every block the model wins, 0.17-0.56 on those it loses. 0.55 gives up all
#: of the latter but one (the model codes it to the end, and the smaller fallback is kept).
#: ``benchmarks/probe.py`` reports how it fares on ``bench/``.
PROBE_EARLY_STEPS = 16
PROBE_EARLY_WINDOW = 8
PROBE_EARLY_GAIN = 0.55


def model_may_win(window_bits: float, window_tokens: int, tokens: int,
                  rival_bytes: int, gain: float | None = None) -> bool:
    """Whether a block may still beat ``rival_bytes`` after the model's probe.

    ``window_bits`` is the ideal code length of the ``window_tokens`` tokens of the probe's
    window; the block has ``tokens`` tokens; ``gain`` is the probe's (:data:`PROBE_GAIN` when
    None, :data:`PROBE_EARLY_GAIN` for the early look). The estimate leans to the model on
    purpose: a wrong "no" loses ratio, a wrong "yes" only time.
    """
    if window_tokens == 0:
        return True
    estimate = (PROBE_GAIN if gain is None else gain) * window_bits / window_tokens * tokens
    return estimate < 8 * rival_bytes


# Set once an LZ77 fallback has run in this process, so its numba kernels are compiled or loaded.
_fallback_ready = threading.Event()


class _LateRival:
    """A rival (the fallback) whose size is known only after the model has coded: the probe's
    looks are kept, ``(bits, count, tokens, gain)`` each, and judged by :meth:`gives_up` as
    :func:`model_may_win` would have judged them during the run."""

    def __init__(self) -> None:
        self.looks: list[tuple[float, int, int, float]] = []

    def gives_up(self, rival_bytes: int) -> bool:
        """Whether one of the looks would have given the block up against ``rival_bytes``."""
        return any(not model_may_win(bits, count, tokens, rival_bytes, gain)
                   for bits, count, tokens, gain in self.looks)


class LanguageModelCodec(FingerprintPolicy, BlockCodec):
    """Lossless coding of text with a causal language model and rANS (method 3).

    Each block is tokenized losslessly, a HuggingFace causal LM predicts every next token of many
    lanes at once, the predictions are quantized to integer tables of ``2**scale_bits`` and a
    64-bit rANS coder codes them all, step by step, through one state. A block is kept as LLM
    payload only if that beats the classic fallback on it (the smallest of LZ77, LZMA and
    context mixing); binary blocks go straight to the fallback (and the frame stores a block raw
    if nothing pays).

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
        torch intra-op threads the model runs with (1 .. :data:`MAX_THREADS`, default
        :data:`DEFAULT_THREADS`). The float engine's results depend on it, so it is recorded
        and decoding a native frame uses the same, whatever the process's own torch setting
        (restored afterwards); the portable engine's do not, so it runs with at most the
        machine's CPUs (:func:`available_cpus`), whatever a frame recorded.
    device : str
        ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
    dtype : str
        Model dtype, ``"float32"`` by default.
    fallback : bool
        Keep a block as LZ77, LZMA or CM when that is smaller or the block is binary (default).
        ``False`` codes every non-empty block with the model, to measure the model itself.
    local_files_only : bool
        Never use the network to find the model (not recorded: it does not change the output).
    probe : bool
        With ``fallback``, let the model give up on a block after its first
        :data:`PROBE_EARLY_STEPS` or :data:`PROBE_STEPS` steps when the rate of its last steps
        says it cannot beat the fallback on it (default): most of the model's time is saved on
        blocks the fallback wins clearly. ``False`` runs the model on every text block. Not
        recorded: decoding never needs it.
    """

    name: ClassVar[str] = "llm"
    method_id: ClassVar[int] = 3
    default_block_size: ClassVar[int] = 64 << 10
    max_block_size: ClassVar[int] = 4 << 20
    models_text: ClassVar[bool] = True

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
        probe: bool = True,
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
        #: The portable engine version of the frame being decoded (:meth:`bind`); frames this
        #: codec writes use the latest.
        self._frame_engine: str | None = None
        self.scale_bits = check_scale_bits(scale_bits)
        if not isinstance(cache, bool):
            raise CodecError(f"cache must be a bool, got {cache!r}")
        self.cache = cache
        self.threads = check_int_param("threads", threads, 1, MAX_THREADS)
        self.device = device
        self.dtype = dtype
        if not isinstance(fallback, bool):
            raise CodecError(f"fallback must be a bool, got {fallback!r}")
        self.fallback = fallback
        self.local_files_only = bool(local_files_only)
        if not isinstance(probe, bool):
            raise CodecError(f"probe must be a bool, got {probe!r}")
        self.probe = probe
        #: Blocks the model gave up on after its probe, and blocks it coded to the end.
        self.probe_counts = {"given_up": 0, "coded": 0}
        self._count_lock = threading.Lock()
        #: The model identity of the frame being decoded when the codec was built from that
        #: frame's header (:meth:`bind` with ``models``): the model is then found by its hash,
        #: the caller's ``_offered`` models first, and ``model``/``revision`` are only hints.
        self._wanted: dict[str, Any] | None = None
        self._offered: tuple[str, ...] = ()
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
        """LLM payloads, and LZ77, LZMA or CM for the blocks where the model did not pay."""
        return frozenset({self.method_id, *_FALLBACK_METHODS})

    def __getstate__(self):
        # Never pickle a model: a worker loads its own, once per process.
        state = self.__dict__.copy()
        state.update(_loaded=None, _load_lock=None, _fallback=None, _count_lock=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._load_lock = threading.Lock()
        self._count_lock = threading.Lock()

    # -- model ----------------------------------------------------------------------------

    @property
    def loaded(self):
        """The loaded model (loaded on first use, shared by the whole process).

        A codec decoding a frame it was built from (see :meth:`bind`) finds the model by the
        frame's hash, without the network (:func:`~llm_codecs.models.finding.find_model`); any
        other loads its ``model``.
        """
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    if self._wanted is not None:
                        from ..models.finding import find_model

                        self._loaded = find_model(
                            self._wanted, device=self._run_device(), dtype=self.dtype,
                            offered=self._offered, hints=[(self.model, self.revision)],
                        )
                    else:
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
                # The portable engine computes the same values on the CPU; the float engine
                # most likely does not (a native frame being decoded has _frame_numerics).
                if self.numerics == "native" or self._frame_numerics is not None:
                    warnings.warn(
                        f"frame was made on {self.device} but CUDA is not available: decoding "
                        "on CPU, which will most likely fail its checksums",
                        NumericsWarning, stacklevel=3,
                    )
                return "cpu"
        return self.device

    def lane_parts(self, lanes: int) -> int:
        """Threads one block's portable forward on the CPU runs its ``lanes`` in
        (:mod:`llm_codecs.portable.lane_parts`): its share of the CPUs among the model runs in
        progress or announced (:meth:`side_by_side`), this one included, each part with
        :meth:`run_threads` torch threads and at least
        :data:`~llm_codecs.parts.MIN_PART_LANES` lanes. The frame is the same
        whatever it is.

        The CPUs are those of :func:`usable_cpus`.
        """
        from ..parts import MIN_PART_LANES

        spare = usable_cpus() // (max(1, GATE.active) * self.run_threads())
        return max(1, min(spare, lanes // MIN_PART_LANES))

    def _schedule(self, loaded, lanes: int, steps: int, start_id: int, tokens=None):
        context = self._context_for(loaded)
        portable = self.resolved_numerics() == "portable"
        parts = self.lane_parts(lanes) if portable and str(loaded.device) == "cpu" else 1
        threads = self.run_threads()

        def hold():
            return GATE.hold(threads)

        if portable and tokens is not None and str(loaded.device) == "cpu":
            # The encoder knows every input: many positions per model call, same logits.
            inputs = np.concatenate((np.full((lanes, 1), start_id, dtype=np.int64),
                                     tokens[:, :-1]), axis=1)
            return PrefillSchedule(loaded, inputs, context, self.portable_engine(), parts, hold)
        if portable:
            return RingSchedule(loaded, lanes, steps, context, start_id,
                                engine=self.portable_engine(), parts=parts, hold=hold)
        if self.resolved_step() == "lean":
            return RingSchedule(loaded, lanes, steps, context, start_id)
        return ReprefillSchedule(loaded, lanes, steps, context, start_id)

    # -- coding ---------------------------------------------------------------------------

    def frame_fallbacks(self) -> list[BlockCodec]:
        """LZ77 levels 9 and default, LZMA and context mixing, when ``fallback`` is on (see
        the base class)."""
        return self._fallback_codecs() if self.fallback else []

    def would_code(self, data, block_size: int) -> bool:
        """False when every block is empty or binary: the fallback codes them all without the
        model."""
        view = memoryview(data).cast("B")
        if not self.fallback:
            return len(view) > 0
        return any(not looks_binary(bytes(view[i : i + block_size]))
                   for i in range(0, len(view), block_size))

    def _fallback_codecs(self) -> list[BlockCodec]:
        if self._fallback is None:
            from . import make_codec

            # LZ77 level 9 is usually smaller than level 5, but not always (spreadsheets, some
            # binaries); LZMA is much smaller on binaries; context mixing on logs, markup and
            # text the model knows little of. All are tried, and all are cheap next to the
            # model (LZMA about 10 ms per 64 KiB, context mixing about 125 ms, the model 1.5-2 s).
            self._fallback = [make_codec("lz77", level=9), make_codec("lz77"), make_codec("lzma"),
                              make_codec("cm")]
        return self._fallback

    def _fallback_payload(self, block: bytes,
                          bounds: plain_bounds.PlainFrameBounds | None = None) -> tuple[int, bytes]:
        """The smallest classic payload of ``block``: ``(method, payload)``; every fallback's
        size counted in ``bounds`` when given."""
        # On a fresh install: context mixing compiles in a helper while LZ77 compiles here.
        compile_helper.start(("cm",), usable_cpus())
        coded = [(c.method_id, c.encode_block(block)) for c in self._fallback_codecs()]
        _fallback_ready.set()
        if bounds is not None:
            bounds.add(len(block), [len(payload) for _, payload in coded])
        return min(coded, key=lambda pair: len(pair[1]))

    @property
    def workers(self) -> int:
        """Blocks coded at once: one per ``threads`` cores (each block's run is independent)."""
        return max(1, available_cpus() // self.threads)

    def encode_blocks(self, blocks: list[bytes]) -> list[tuple[int, bytes]]:
        """Code each block with the model, or with the fallback where that is smaller or it is
        binary.

        Blocks are coded in parallel threads (:attr:`workers`); each block's bits depend only on
        the block and the configuration, never on which blocks run beside it.
        """
        # Read here, in the caller's context: the pool's threads do not see its variables.
        bounds = plain_bounds.current() if self.fallback else None
        if len(blocks) <= 1 or self.workers <= 1:
            return [self._encode_one(b, bounds) for b in blocks]
        _ = self.loaded  # load once, before the threads race for it
        workers = min(self.workers, len(blocks))
        with self.side_by_side(workers), ThreadPoolExecutor(workers) as pool:
            return list(pool.map(self._encode_one, blocks, [bounds] * len(blocks)))

    def side_by_side(self, blocks: int):
        """Context in which ``blocks`` blocks are coded at once: each block's forward then
        keeps to its share of the CPUs (:meth:`lane_parts`)."""
        return GATE.side_by_side(blocks)

    def _encode_one(self, block: bytes,
                    bounds: plain_bounds.PlainFrameBounds | None = None) -> tuple[int, bytes]:
        if not self.fallback:
            coded = self.encode_block(block) if block else b""
            if coded is None:
                raise CodecError("the model's tokenizer cannot represent this block")
            return self.method_id, coded
        if not block or looks_binary(block):
            return self._fallback_payload(block, bounds)
        if _fallback_ready.is_set():
            # The fallback runs beside the model: numba and liblzma release the GIL while they
            # code. It is done long before the model's probe asks for its size.
            with ThreadPoolExecutor(1) as pool:
                fallback = pool.submit(self._fallback_payload, block, bounds)
                rival = (lambda: len(fallback.result()[1])) if self.probe else None
                coded = self.encode_block(block, rival)
                method, payload = fallback.result()
        else:
            # The first LZ77 call of a process may compile its kernels (tens of seconds on a
            # fresh install). Compilation holds the GIL and numba's lock almost throughout, so a
            # model run beside it would crawl. The model codes first, then LZ77 compiles, and
            # the probe's looks are judged then: the same decisions as above, so a frame does
            # not depend on what the process did before.
            late = _LateRival() if self.probe else None
            coded = self.encode_block(block, late)
            method, payload = self._fallback_payload(block, bounds)
            if late is not None and late.looks:
                if late.gives_up(len(payload)):
                    coded = None
                with self._count_lock:
                    self.probe_counts["coded" if coded is not None else "given_up"] += 1
        if coded is not None and len(coded) < len(payload):
            return self.method_id, coded
        return method, payload

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

    def run_threads(self) -> int:
        """torch threads a model run uses: ``threads`` with the float engine, whose bits depend
        on it; with the portable engine, whose bits do not, no more than :func:`available_cpus`
        (more only oversubscribes the machine and leaves idle threads behind)."""
        if self.resolved_numerics() == "portable":
            return min(self.threads, available_cpus())
        return self.threads

    def _run(self, fn):
        """Run ``fn(loaded)`` with :meth:`run_threads` torch threads and no autograd."""
        import torch

        loaded = self.loaded
        with GATE.hold(self.run_threads()), torch.inference_mode():
            return fn(loaded)

    def encode_block(self, block: bytes, rival=None) -> bytes | None:
        """The LLM payload of one block, or None if the tokenizer cannot represent it.

        With ``rival``, a callable returning the size in bytes of the block's other coding
        (the classic fallback), the model may give up after its probe (:func:`model_may_win`),
        and then returns None too.
        """
        from ..models.tokens import UnsupportedTokenizerError

        try:
            ids = self.loaded.tokenizer.encode(block)
        except UnsupportedTokenizerError:
            return None
        return self._run(lambda loaded: self._encode_ids(loaded, ids, rival))

    def _encode_ids(self, loaded, ids: np.ndarray, rival=None) -> bytes | None:
        from .llm_steps import EncodingSide, run_steps

        compile_helper.start(("tables",), usable_cpus())

        T = len(ids)
        used, steps = lane_layout(T, self.lanes)
        start_id = self._start_id(loaded)
        tokens, active = token_grid(ids, used, steps, start_id)
        side = EncodingSide(tokens)
        checkpoints = {}
        if rival is not None and steps >= 2 * PROBE_STEPS:
            def look(stop: int, window: int, gain: float) -> bool:
                bits, count = side.ideal_bits(stop - window, stop, active, self.scale_bits)
                if isinstance(rival, _LateRival):
                    rival.looks.append((bits, count, T, gain))
                    return True
                return model_may_win(bits, count, T, rival(), gain)

            checkpoints = {
                PROBE_EARLY_STEPS: lambda: look(PROBE_EARLY_STEPS, PROBE_EARLY_WINDOW,
                                                PROBE_EARLY_GAIN),
                PROBE_STEPS: lambda: look(PROBE_STEPS, PROBE_WINDOW, PROBE_GAIN),
            }
        done = run_steps(self._schedule(loaded, used, steps, start_id, tokens),
                         self._mixer(loaded, used, steps), T, used, steps, start_id, side,
                         checkpoints)
        if not (isinstance(rival, _LateRival) and rival.looks):  # counted once judged
            with self._count_lock:
                self.probe_counts["coded" if done is not None else "given_up"] += 1
        if done is None:
            return None
        stream, self.last_ideal_bits = side.stream(active, self.scale_bits)
        payload = bytearray()
        put_varint(payload, T)
        return bytes(payload) + stream

    def _mixer(self, loaded, lanes: int, steps: int):
        from ..coding.cache_mix import TokenCacheMixer

        return TokenCacheMixer(lanes, loaded.vocab_size, self.scale_bits, self.cache, steps,
                               self.lane_parts(lanes))

    def decode_block(self, payload: bytes, size: int) -> bytes:
        """Decode an LLM payload back into ``size`` bytes.

        Raises
        ------
        CorruptDataError
            If the payload is malformed, its streams do not decode exactly, or the tokens do not
            make ``size`` bytes.
        """
        payload = bytes(payload)
        T, pos = get_varint(payload, 0, "LLM payload")
        # Every token is at least one byte: this bounds all the work a forged header can cause.
        if not 1 <= T <= size:
            raise CorruptDataError(f"LLM payload: {T} tokens cannot make {size} bytes")
        used, steps = lane_layout(T, self.lanes)
        stream = payload[pos:]
        ids = self._run(lambda loaded: self._decode_stream(loaded, stream, T, used, steps))
        data = self.loaded.tokenizer.decode(ids, limit=size)
        if data is None or len(data) != size:
            raise CorruptDataError("LLM payload: tokens do not decode to the block")
        return data

    def _decode_stream(self, loaded, stream: bytes, T: int, used: int,
                       steps: int) -> np.ndarray:
        from ..coding import rans
        from .llm_steps import DecodingSide, run_steps

        # Every token of the vocabulary keeps a count in every table, which bounds how many
        # tokens a stream of this length can hold (weakly: see rans.max_symbols).
        most = rans.max_symbols(len(stream), self.scale_bits, loaded.vocab_size - 1)
        if most is not None and most < T:
            raise CorruptDataError(f"LLM payload: {len(stream)} bytes cannot code {T} tokens")
        start_id = self._start_id(loaded)
        compile_helper.start(("tables",), usable_cpus())
        side = DecodingSide(stream, self.scale_bits)
        tokens = run_steps(self._schedule(loaded, used, steps, start_id),
                           self._mixer(loaded, used, steps), T, used, steps, start_id, side)
        side.finish()
        return tokens.reshape(-1)[:T]
