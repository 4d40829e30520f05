"""Seconds before the first blocks are coded, on a fresh install and on a warm one.

Each measurement runs in a new process that compresses a file with the default ``llm`` codec
and reports when the model starts and finishes each block. "cold" gives numba an empty cache
directory (``NUMBA_CACHE_DIR``), as a fresh install has: every kernel is compiled. "warm" runs
again with that cache.

Usage::

    python benchmarks/startup.py                       # alice29.txt
    python benchmarks/startup.py PATH
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "bench"

# Runs in the child: times are seconds since the child started, imports included.
CHILD = r"""
import sys, time
t0 = time.perf_counter()
import llm_codecs
from llm_codecs.codecs import llm
encode = llm.LanguageModelCodec._encode_ids
done = []
def timed(self, loaded, ids, *args, **kwargs):
    out = encode(self, loaded, ids, *args, **kwargs)
    done.append(time.perf_counter() - t0)
    return out
llm.LanguageModelCodec._encode_ids = timed
llm_codecs.compress(open(sys.argv[1], "rb").read())
print(f"{min(done):.1f} {time.perf_counter() - t0:.1f}")
"""

# The first LZ77 call alone (both levels the llm codec's fallback tries), in seconds.
LZ77_CHILD = r"""
import sys, time
from llm_codecs.codecs import make_codec
block = open(sys.argv[1], "rb").read()[:65536]
t0 = time.perf_counter()
for level in (9, 5):
    make_codec("lz77", level=level).encode_block(block)
print(f"{time.perf_counter() - t0:.1f}")
"""


def main(argv: list[str] | None = None) -> None:
    """Print a Markdown table (first model block done, whole file; cold then warm), then the
    first LZ77 call on its own with an empty cache."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(BENCH / "canterbury" / "alice29.txt"))
    args = parser.parse_args(argv)
    print("| run | first model block coded (s) | whole file compressed (s) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for run in ("cold", "warm"):
            out = subprocess.run([sys.executable, "-c", CHILD, args.file], env=env, check=True,
                                 capture_output=True, text=True).stdout.split()
            print(f"| {run} | {out[0]} | {out[1]} |", flush=True)
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", LZ77_CHILD, args.file], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"\nFirst LZ77 call (levels 9 and 5, one 64 KiB block), cold: {out[0]} s")


if __name__ == "__main__":
    main()
