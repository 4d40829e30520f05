"""On a fresh install, compile the in-block models' kernels in a second process while this one
compiles the model's.

numba compiles a kernel at its first call and keeps it in its disk cache (``cache=True``), so
only the first run on a machine pays. The first model block of a fresh install waits for the
portable forward's kernels, then for the tables' (the in-block models and the rANS coder), and
a compression then for context mixing's (the classic fallback), one after the other: numba's
compiler holds the GIL and one process-wide lock, so threads cannot share that work. A process
can. Where a process is about to need a group of kernels its disk cache lacks (the tables at
its first model block, context mixing at its first fallback), :func:`start` launches ``python
-m llm_codecs.compile_helper GROUP...``, which compiles the group by running its code on
synthetic input and prints the group's name when done, while this process compiles what it
needs first (the model's kernels, LZ77's); the code that needs the group calls
:func:`wait_for` first and then loads it from the cache. (A helper does not lower its
priority: the process waiting for it may be the one that needs it most.)

Nothing a frame holds depends on this: a kernel is the same machine code whichever process
compiled it. A helper that fails, or is not started, changes only the time (each kernel is
then compiled where it is first called). It is not started with fewer than two usable CPUs, in
a process that has forked from the one that started it, or when ``LLM_CODECS_COMPILE_HELPER``
is ``0``; a process that exits stops its helper.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

__all__ = ["GROUPS", "start", "wait_for"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))

#: Longest wait for a helper's group, in seconds: past it, the caller compiles the kernels
#: itself (a helper compiles a group in seconds to tens of seconds).
WAIT_LIMIT = 300.0


def _tables_probe():
    from .coding import _quantize_kernel

    return _quantize_kernel.mixed_rows


def _cm_probe():
    from .coding import _cm3_kernel

    return _cm3_kernel.run


def _compile_tables() -> None:
    """Code and decode a few steps of random logits through :func:`.codecs.llm_steps.run_steps`:
    the in-block models' kernels and the rANS coder's, with the types a model block gives them."""
    import numpy as np
    import torch

    from .codecs.llm_steps import DecodingSide, EncodingSide, run_steps
    from .coding.cache_mix import TokenCacheMixer

    lanes, steps, vocab, scale_bits = 16, 3, 64, 28
    logits = torch.from_numpy(np.random.default_rng(0).normal(
        size=(steps, lanes, vocab)).astype(np.float32))
    tokens = np.random.default_rng(1).integers(0, vocab, size=(lanes, steps))

    class Replay:
        def logits(self, t):
            return logits[t]

        def feed(self, t, fed):
            pass

    def mixer():
        return TokenCacheMixer(lanes, vocab, scale_bits, True, steps)

    side = EncodingSide(tokens)
    run_steps(Replay(), mixer(), lanes * steps, lanes, steps, 0, side)
    stream, _ = side.stream(np.ones((lanes, steps), dtype=bool), scale_bits)
    decoder = DecodingSide(stream, scale_bits)
    run_steps(Replay(), mixer(), lanes * steps, lanes, steps, 0, decoder)
    decoder.finish()


def _compile_cm() -> None:
    """Code a little text with context mixing, as the ``llm`` codec's fallback does."""
    from .codecs import make_codec

    make_codec("cm").encode_block(b"compile the context-mixing kernel " * 8)


#: Kernel groups: ``(a kernel of the group, to see whether the cache has it; what compiles
#: the group)``.
GROUPS: dict[str, tuple[Callable, Callable[[], None]]] = {
    "tables": (_tables_probe, _compile_tables),
    "cm": (_cm_probe, _compile_cm),
}


def _on_disk(dispatcher) -> bool:
    """Whether numba's disk cache holds ``dispatcher`` compiled from this source for this CPU.

    It reads numba's cache index, which is not a public interface: if numba changes it, the
    answer is yes, and no helper starts."""
    try:
        index = dispatcher._cache._cache_file._load_index()
        magic = dispatcher.targetctx.codegen().magic_tuple()
        return any(key[1] == magic for key in index)
    except Exception:  # any change in numba's internals means "do not help"
        return True


class _Helper:
    """A helper process and, per group, an event set when it has compiled the group (or
    exited)."""

    def __init__(self, groups: Sequence[str]):
        self.pid = os.getpid()
        self.done = {group: threading.Event() for group in groups}
        # -P: not the working directory first on the path, where a file could shadow a module.
        # The helper checks that it imported this very package (the cache is per source file).
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "llm_codecs.compile_helper", _PACKAGE, *groups],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, OMP_NUM_THREADS="1"), text=True)
        threading.Thread(target=self._read, name="llmz-compile-helper", daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            event = self.done.get(line.strip())
            if event is not None:
                event.set()
        self.process.wait()
        for event in self.done.values():  # exited: nothing more will come
            event.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


_lock = threading.Lock()
_considered: set[str] = set()
_helpers: dict[str, _Helper] = {}


def start(groups: Sequence[str], cpus: int) -> None:
    """Compile those of ``groups`` that numba's disk cache lacks in a helper process, unless
    fewer than two of ``cpus`` or the environment say not to. Each group is considered once
    per process; the call is cheap after that."""
    with _lock:
        groups = [group for group in groups if group not in _considered]
        if not groups:
            return
        _considered.update(groups)
        if (cpus < 2 or os.environ.get("LLM_CODECS_COMPILE_HELPER", "1") == "0"
                or not sys.executable):
            return
        missing = [group for group in groups if not _on_disk(GROUPS[group][0]())]
        if not missing:
            return
        try:
            helper = _Helper(missing)
        except (OSError, ValueError):  # cannot start a process here: compile where needed
            return
        for group in missing:
            _helpers[group] = helper


def wait_for(group: str) -> None:
    """Return once no helper of this process is still compiling ``group``."""
    helper = _helpers.get(group)
    if helper is not None and helper.pid == os.getpid():
        helper.done[group].wait(WAIT_LIMIT)


def _stop_helpers() -> None:
    for helper in set(_helpers.values()):
        if helper.pid == os.getpid():
            helper.stop()


def _forget_in_child() -> None:
    # A forked child has the parent's records but not its reader threads.
    global _lock
    _lock = threading.Lock()
    _considered.clear()
    _helpers.clear()


atexit.register(_stop_helpers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def main(argv: Sequence[str]) -> None:
    """Compile each group named in ``argv[1:]``, printing its name when done (or failed: the
    process that asked then compiles what is missing itself); nothing if this is not the
    package at ``argv[0]``, whose kernels the asking process uses."""
    if not argv or os.path.realpath(argv[0]) != os.path.realpath(_PACKAGE):
        return
    for group in argv[1:]:
        with contextlib.suppress(Exception):  # whoever needs the group compiles it itself
            GROUPS[group][1]()
        print(group, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
