"""Size and speed of the ``llm`` codec per ``lanes`` setting, on ``valid/`` text (for choices).

Each sample is 256 KiB (four 64 KiB blocks, coded two at a time with the defaults), compressed
and decompressed whole with :func:`llm_codecs.compress`; every round trip is checked.

Usage::

    python benchmarks/lanes.py 32 64
    python benchmarks/lanes.py 64 128 --min-lane-tokens 128   # a shorter shortest lane

``--min-lane-tokens`` overrides :data:`llm_codecs.codecs.llm.MIN_LANE_TOKENS` in this process
only (both sides of the round trip): frames made that way decode only with the same override.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import llm_codecs

VALID = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "valid"
# (file, first byte): prose from the middle of two books, and WikiText-2.
SAMPLES = {
    "gutenberg/pg2814.txt": 100_000,
    "gutenberg/pg36.txt": 50_000,
    "wiki.valid.tokens": 0,
}
SIZE = 256 << 10


def main(argv: list[str] | None = None) -> None:
    """Print one Markdown row per lanes setting and sample."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lanes", type=int, nargs="+")
    parser.add_argument("--min-lane-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    if args.min_lane_tokens:
        from llm_codecs.codecs import llm

        llm.MIN_LANE_TOKENS = args.min_lane_tokens
    samples = {name: (VALID / name).read_bytes()[at : at + SIZE] for name, at in SAMPLES.items()}
    llm_codecs.compress(b"load the model first " * 200, "llm")
    print("| lanes | sample | bits per byte | KB/s compress | KB/s decompress |")
    print("|---|---|---|---|---|")
    for lanes in args.lanes:
        for name, data in samples.items():
            t0 = time.perf_counter()
            frame = llm_codecs.compress(data, "llm", lanes=lanes)
            t1 = time.perf_counter()
            back = llm_codecs.decompress(frame)
            t2 = time.perf_counter()
            if back != data:
                raise SystemExit(f"round trip failed: lanes={lanes} {name}")
            print(f"| {lanes} | {name} | {8 * len(frame) / len(data):.4f} "
                  f"| {len(data) / (t1 - t0) / 1e3:.1f} | {len(data) / (t2 - t1) / 1e3:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
