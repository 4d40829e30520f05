"""Measure how well a language model compresses your own files, next to classic codecs.

For each file: bits per byte of the ``llm`` codec (the model, with LZ77 where that is smaller),
of the model alone (``fallback=False``: what a researcher usually wants to report), of
``lz77 -9``, zlib -9 and xz -9, and the LLM codec's speed. Every result is decoded and compared
with the original before it is reported.

    python examples/benchmark_model.py FILE... [--model default|HUB_ID|DIR] [--max-bytes N]
"""

from __future__ import annotations

import argparse
import lzma
import time
import zlib
from pathlib import Path

import llm_codecs


def bits_per_byte(compressed: int, original: int) -> float:
    return 8 * compressed / max(1, original)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", default="default",
                        help="'default' (embedded), a HuggingFace hub id or a local directory")
    parser.add_argument("--max-bytes", type=int, default=256 << 10,
                        help="measure at most this many bytes from the start of each file")
    args = parser.parse_args(argv)

    print(f"model: {args.model}")
    print(f"{'file':<28} {'bytes':>9} {'llm':>6} {'model':>6} {'lz77-9':>6} {'zlib-9':>6} "
          f"{'xz-9':>6} {'KB/s':>6}")
    for path in args.files:
        data = path.read_bytes()[: args.max_bytes]
        start = time.perf_counter()
        frame = llm_codecs.compress(data, "llm", model=args.model)
        seconds = time.perf_counter() - start
        model_only = llm_codecs.compress(data, "llm", model=args.model, fallback=False)
        for packed in (frame, model_only):
            assert llm_codecs.decompress(packed) == data, f"{path}: round trip failed"
        sizes = [len(frame), len(model_only),
                 len(llm_codecs.compress(data, "lz77", level=9)),
                 len(zlib.compress(data, 9)), len(lzma.compress(data, preset=9))]
        cells = " ".join(f"{bits_per_byte(n, len(data)):6.3f}" for n in sizes)
        print(f"{path.name[:28]:<28} {len(data):>9,} {cells} {len(data) / 1e3 / seconds:6.1f}")
    print("(bits per byte; lower is better)")


if __name__ == "__main__":
    main()
