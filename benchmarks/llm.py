"""Ratio, coding overhead and speed of the LLM codec against classic codecs, in one run.

Two tables, both Markdown:

1. **Per file**: bits per byte of the ``llm`` codec (default settings: LZ77 fallback per block)
   and with no fallback (``fallback=False``: the model and its in-block cache code every block),
   against LZ77 and gzip -9, bzip2 -9, xz -9e, zstd -19, brotli -11 compressing the *same
   64 KiB blocks* one by one (as a Zarr chunk or a random-access block is), the best of those
   five on the whole data as one stream, plus KB/s both ways for the ``llm`` codec.
2. **Coder overhead**: total payload bits of the model-coded blocks against the model's own
   cross-entropy under the very quantized tables that were coded (the issue's bound is
   ``x 1.001 + 64 bits per stream``; a block is one stream), with tokens/s.

Usage::

    python benchmarks/llm.py                          # default model, the issue's text files
    python benchmarks/llm.py --all --max-blocks 2     # every bench file, first 2 blocks each
    python benchmarks/llm.py --model PATH_OR_HUB_ID FILE ...

Files are read from ``../shared/corpus/bench`` (relative names) or any path.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import llm_codecs
from llm_codecs.baselines import available
from llm_codecs.codecs import make_codec
from llm_codecs.codecs.llm import looks_binary
from llm_codecs.frame import FrameReader

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "corpus" / "bench"
TEXT_SET = [
    "canterbury/alice29.txt", "canterbury/asyoulik.txt", "canterbury/lcet10.txt",
    "canterbury/plrabn12.txt", "canterbury_large/bible.txt", "silesia/dickens",
    "misc/wikitext2.test.tokens", "misc/tinyshakespeare.txt",
]
BLOCK = 64 << 10


def classic_block_codecs() -> dict:
    """Classic codecs at the levels the issue names, each applied to one block."""
    return {label: pair[0] for label, pair in
            available(["gzip-9", "bz2-9", "xz-9e", "zstd-19", "brotli-11"]).items()}


def bpb(compressed: int, original: int) -> float:
    return 8 * compressed / original if original else 0.0


def file_row(name: str, data: bytes, codec_params: dict, stats: dict) -> list[str]:
    """One table row: bits per byte of every codec on ``data`` cut in 64 KiB blocks."""
    blocks = [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]
    codecs = classic_block_codecs()
    classic = {label: sum(len(fn(b)) for b in blocks) for label, fn in codecs.items()}
    # The same codecs on the whole data as one stream: no random access, more context.
    whole_label, whole = min(((label, len(fn(data))) for label, fn in codecs.items()),
                             key=lambda item: item[1])
    lz77 = len(llm_codecs.compress(data, "lz77", block_size=BLOCK))

    t0 = time.perf_counter()
    frame = llm_codecs.compress(data, "llm", block_size=BLOCK, **codec_params)
    t1 = time.perf_counter()
    assert llm_codecs.decompress(frame) == data, f"{name}: round trip failed"
    t2 = time.perf_counter()
    methods = [b.method for b in FrameReader(frame).blocks]

    pure = make_codec("llm", **{**codec_params, "fallback": False})
    model_bits = ideal_bits = streams = tokens = 0
    start = time.perf_counter()
    skipped = False
    for block in blocks:
        if looks_binary(block):
            skipped = True  # the model alone on binary data: minutes of model time, ~8+ bpb
            continue
        payload = pure.encode_block(block)
        model_bits += 8 * len(payload)
        ideal_bits += pure.last_ideal_bits
        n = len(pure.loaded.tokenizer.encode(block))
        tokens += n
        streams += 1  # one rANS stream per block, whatever the lanes
    pure_seconds = time.perf_counter() - start
    if not skipped:
        stats["files"].append((name, len(data), model_bits, ideal_bits, streams, tokens,
                               pure_seconds))

    best = min(classic.values())
    cells = [name, f"{len(data):,}", f"{bpb(len(frame), len(data)):.3f}",
             "binary" if skipped else f"{bpb(model_bits / 8, len(data)):.3f}",
             f"{bpb(lz77, len(data)):.3f}"]
    cells += [f"{bpb(classic[k], len(data)):.3f}" for k in classic]
    cells += [f"{100 * (1 - len(frame) / best):+.1f}%",
              f"{bpb(whole, len(data)):.3f} ({whole_label})",
              f"{100 * (1 - len(frame) / whole):+.1f}%",
              f"{100 * (len(frame) / lz77 - 1):+.2f}%",
              f"{methods.count(3)}/{len(methods)}",
              f"{len(data) / 1e3 / (t1 - t0):.1f}", f"{len(data) / 1e3 / (t2 - t1):.1f}"]
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="bench-relative names or paths")
    parser.add_argument("--all", action="store_true", help="every file of the bench corpus")
    parser.add_argument("--model", default="default")
    parser.add_argument("--max-blocks", type=int, default=4,
                        help="code at most this many 64 KiB blocks from the start of each file")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="extra llm codec parameter (integer values), e.g. -p lanes=64")
    args = parser.parse_args(argv)

    params: dict = {"model": args.model}
    for item in args.param:
        key, _, value = item.partition("=")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    names = args.files or TEXT_SET
    if args.all:
        names = sorted(str(p.relative_to(BENCH)) for p in BENCH.rglob("*") if p.is_file())

    codec = make_codec("llm", **params)
    t0 = time.perf_counter()
    codec.encode_block(b"warm up")
    print(f"model {args.model!r} loaded in {time.perf_counter() - t0:.1f} s; "
          f"{platform.machine()} {platform.python_version()}, torch threads "
          f"{codec.threads}, params {codec.params()}\n")

    classic = list(classic_block_codecs())
    header = ["file", "bytes", "llm", "no fallback", "lz77", *classic,
              "llm vs best classic", "best classic, one stream", "llm vs one stream",
              "llm vs lz77", "model blocks", "KB/s comp", "KB/s decomp"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    stats: dict = {"files": []}
    for name in names:
        path = Path(name) if Path(name).exists() else BENCH / name
        data = path.read_bytes()[: args.max_blocks * BLOCK]
        print("| " + " | ".join(file_row(name, data, params, stats)) + " |", flush=True)

    print("\nCoder overhead (no fallback: every block model-coded)\n")
    print("| file | tokens | payload bits | cross-entropy bits | bound (x1.001 + 64/stream) "
          "| payload / cross-entropy | tokens/s |")
    print("|---|---|---|---|---|---|---|")
    for name, _, bits, ideal, streams, tokens, seconds in stats["files"]:
        bound = ideal * 1.001 + 64 * streams
        print(f"| {name} | {tokens:,} | {bits:,} | {ideal:,.0f} | {bound:,.0f} "
              f"{'ok' if bits <= bound else 'OVER'} | {bits / ideal:.5f} | "
              f"{tokens / seconds:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
