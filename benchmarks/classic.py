"""Ratio and speed of the classic codecs (Huffman, LZ77) against zlib/bz2/lzma/zstd/brotli.

Every baseline is measured in the same run, on the same bytes, single-threaded, after a JIT
warm-up. Sizes are whole files: our codecs frame the file in their default blocks, the baselines
compress it as one stream.

Usage::

    python benchmarks/classic.py                 # the text/code/log set from the issue
    python benchmarks/classic.py --all           # every file of ../shared/corpus/bench
    python benchmarks/classic.py FILE ... --repeat 3
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import llm_codecs
from llm_codecs.baselines import available
from llm_codecs.codecs import make_codec

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "corpus" / "bench"
TEXT_SET = [
    "canterbury/alice29.txt", "canterbury/asyoulik.txt", "canterbury/lcet10.txt",
    "canterbury/plrabn12.txt", "canterbury/cp.html", "canterbury/fields.c",
    "canterbury/grammar.lsp", "canterbury/xargs.1", "canterbury_large/bible.txt",
    "canterbury_large/world192.txt", "silesia/dickens", "silesia/samba", "silesia/xml",
    "silesia/reymont", *sorted(f"loghub/{p.name}" for p in (BENCH / "loghub").glob("*.log")),
]

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]


def baselines() -> dict[str, Codec]:
    """The classic codecs available in this environment, at the levels the issue names."""
    labels = ["zlib-6", "zlib-9", "bz2-9", "xz-6", "zstd-3", "zstd-19", "brotli-11"]
    found = available(labels)
    for label in labels:
        if label not in found:
            print(f"# {label}: module not installed, column skipped", file=sys.stderr)
    return found


def ours() -> dict[str, Codec]:
    """Our codecs at the default level and the top level, through the public API."""
    top = make_codec("lz77", level=9)
    default_level = make_codec("lz77").params()["level"]
    return {
        "huffman": (lambda d: llm_codecs.compress(d, "huffman"), llm_codecs.decompress),
        f"lz77-{default_level}": (lambda d: llm_codecs.compress(d, "lz77"), llm_codecs.decompress),
        "lz77-9": (lambda d: llm_codecs.compress(d, top), llm_codecs.decompress),
    }


def timed(fn, arg, repeat: int) -> tuple[bytes, float]:
    best, out = math.inf, b""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(arg)
        best = min(best, time.perf_counter() - start)
    return out, best


def order0_bits(block: bytes) -> float:
    counts = np.bincount(np.frombuffer(block, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(block)
    return float(-(counts[counts > 0] * np.log2(p)).sum())


def huffman_vs_entropy(data: bytes) -> float:
    """Worst ratio, over blocks of >= 64 KiB, of Huffman payload bits to order-0 entropy."""
    codec = make_codec("huffman")
    bs = codec.default_block_size
    worst = 0.0
    for i in range(0, len(data), bs):
        block = data[i : i + bs]
        if len(block) < 65536:
            continue
        entropy = order0_bits(block)
        payload = 8 * len(codec.encode_block(block))
        worst = max(worst, payload / entropy if entropy else math.inf)
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="files (default: the issue's text/code/log set)")
    parser.add_argument("--all", action="store_true", help="every file of the bench corpus")
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings (default 1)")
    args = parser.parse_args(argv)

    if args.files:
        paths = [Path(f) for f in args.files]
    elif args.all:
        paths = sorted(p for p in BENCH.rglob("*") if p.is_file() and p.name != "LICENSE")
    else:
        paths = [BENCH / rel for rel in TEXT_SET]
    codecs = {**baselines(), **ours()}
    for compress, decompress in ours().values():
        decompress(compress(b"warm up the JIT " * 1000))

    sizes: dict[str, dict[str, int]] = {}
    speed: dict[str, list[float]] = {name: [0.0, 0.0] for name in codecs}
    total = 0
    worst_huffman: list[tuple[str, float]] = []
    for path in paths:
        data = path.read_bytes()
        name = str(path.relative_to(BENCH)) if path.is_relative_to(BENCH) else path.name
        total += len(data)
        sizes[name] = {"bytes": len(data)}
        for codec, (compress, decompress) in codecs.items():
            packed, t_c = timed(compress, data, args.repeat)
            restored, t_d = timed(decompress, packed, args.repeat)
            if restored != data:
                raise SystemExit(f"{codec} failed to round-trip {name}")
            sizes[name][codec] = len(packed)
            speed[codec][0] += t_c
            speed[codec][1] += t_d
        worst_huffman.append((name, huffman_vs_entropy(data)))
        print(f"# done {name}", file=sys.stderr, flush=True)

    names = list(codecs)
    print(f"Machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {llm_codecs.__version__=}, single thread\n")
    print("Bits per byte (whole file; lower is better)\n")
    print("| file | bytes | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for name, row in sizes.items():
        cells = " | ".join(f"{8 * row[c] / row['bytes']:.3f}" for c in names)
        print(f"| {name} | {row['bytes']:,} | {cells} |")
    sums = {c: sum(row[c] for row in sizes.values()) for c in names}
    print(f"| **total** | {total:,} | "
          + " | ".join(f"{8 * sums[c] / total:.3f}" for c in names) + " |")

    lz_default = next(c for c in names if c.startswith("lz77-") and c != "lz77-9")
    print("\nLZ77 against zlib (size ratio; < 1.000 means smaller than zlib)\n")
    print(f"| file | {lz_default} / zlib-6 | lz77-9 / zlib-9 |")
    print("|---|---:|---:|")
    for name, row in sizes.items():
        print(f"| {name} | {row[lz_default] / row['zlib-6']:.3f} | "
              f"{row['lz77-9'] / row['zlib-9']:.3f} |")
    print(f"| **total** | {sums[lz_default] / sums['zlib-6']:.3f} | "
          f"{sums['lz77-9'] / sums['zlib-9']:.3f} |")

    print("\nThroughput over the whole set (MB/s of original data; x = relative to zlib)\n")
    print("| codec | compress MB/s | decompress MB/s | compress vs zlib-6 | "
          "decompress vs zlib |")
    print("|---|---:|---:|---:|---:|")
    z_c, z_d = (total / 1e6 / t for t in speed["zlib-6"])
    for codec in names:
        c, d = (total / 1e6 / t for t in speed[codec])
        print(f"| {codec} | {c:.1f} | {d:.1f} | {c / z_c:.2f}x | {d / z_d:.2f}x |")

    print("\nHuffman payload / order-0 entropy, worst block of >= 64 KiB (target <= 1.010)\n")
    print("| file | worst ratio |")
    print("|---|---:|")
    for name, ratio in worst_huffman:
        print(f"| {name} | {ratio:.4f} |" if ratio else f"| {name} | (no block >= 64 KiB) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
