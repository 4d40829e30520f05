"""The classic compressors llm_codecs compares itself with: one table for the CLI's ``bench``
and the scripts in ``benchmarks/``.

Each entry is a label (the compressor and its level, as every table prints it) and how to load
its ``(compress, decompress)`` pair. Modules are imported only when an entry is loaded, and
``zstandard`` / ``brotli`` may be missing (:func:`available` leaves them out).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["BASELINES", "FAMILIES", "Pair", "available", "load"]

#: ``(compress, decompress)``, each ``bytes -> bytes``.
Pair = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]


def _entry(module: str, comp: Callable[[Any, bytes], bytes],
           decomp: Callable[[Any, bytes], bytes]) -> tuple[str, Callable, Callable]:
    return module, comp, decomp


def _zstd(level: int):
    return _entry("zstandard", lambda m, d: m.ZstdCompressor(level=level).compress(d),
                  lambda m, f: m.ZstdDecompressor().decompress(f))


#: label -> (module, compress(module, data), decompress(module, frame)).
BASELINES: dict[str, tuple[str, Callable, Callable]] = {
    "zlib-6": _entry("zlib", lambda m, d: m.compress(d, 6), lambda m, f: m.decompress(f)),
    "zlib-9": _entry("zlib", lambda m, d: m.compress(d, 9), lambda m, f: m.decompress(f)),
    "gzip-9": _entry("gzip", lambda m, d: m.compress(d, 9, mtime=0),
                     lambda m, f: m.decompress(f)),
    "bz2-9": _entry("bz2", lambda m, d: m.compress(d, 9), lambda m, f: m.decompress(f)),
    "xz-6": _entry("lzma", lambda m, d: m.compress(d, preset=6), lambda m, f: m.decompress(f)),
    "xz-9e": _entry("lzma", lambda m, d: m.compress(d, preset=9 | m.PRESET_EXTREME),
                    lambda m, f: m.decompress(f)),
    "zstd-3": _zstd(3),
    "zstd-19": _zstd(19),
    "brotli-11": _entry("brotli", lambda m, d: m.compress(d, quality=11),
                        lambda m, f: m.decompress(f)),
}

#: The CLI's ``bench --against`` families, each with its rows (default levels, and zstd's top).
FAMILIES: dict[str, list[str]] = {
    "zlib": ["zlib-6"],
    "bz2": ["bz2-9"],
    "lzma": ["xz-6"],
    "zstd": ["zstd-3", "zstd-19"],
    "brotli": ["brotli-11"],
}


def load(label: str) -> Pair:
    """The ``(compress, decompress)`` pair of ``label``.

    Raises
    ------
    ImportError
        Its module is not installed.
    """
    module, comp, decomp = BASELINES[label]
    mod = importlib.import_module(module)
    return (lambda data: comp(mod, data)), (lambda frame: decomp(mod, frame))


def available(labels: list[str]) -> dict[str, Pair]:
    """The pairs of ``labels`` whose modules are installed, in order."""
    found = {}
    for label in labels:
        try:
            found[label] = load(label)
        except ImportError:
            continue
    return found
