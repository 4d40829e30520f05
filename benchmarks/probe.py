"""How often the ``llm`` codec's probe gives up on a block, and how often that is wrong.

For each 64 KiB text block of the named files, the model codes the block to the end (what it
does with ``probe=False``) and with the probe (``probe=True``, the default): the probe gives up
after :data:`~llm_codecs.codecs.llm.PROBE_EARLY_STEPS` or
:data:`~llm_codecs.codecs.llm.PROBE_STEPS` steps when the rate of its last steps says the
model cannot beat the classic fallback (LZ77, LZMA, context mixing) on the block. A give-up is
*wrong* when the full model run was smaller than the fallback; the table gives the bytes that
cost and the model time the probe saved.

Usage::

    python benchmarks/probe.py                    # loghub logs, silesia/xml, nci, prose
    python benchmarks/probe.py --max-blocks 2 FILE ...
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from llm_codecs.codecs import make_codec
from llm_codecs.codecs.llm import (
    PROBE_EARLY_GAIN,
    PROBE_EARLY_STEPS,
    PROBE_EARLY_WINDOW,
    PROBE_GAIN,
    PROBE_STEPS,
    PROBE_WINDOW,
    looks_binary,
)
from llm_codecs.models.loading import cpu_facts

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "bench"
FILES = [
    "loghub/Linux_2k.log", "loghub/Apache_2k.log", "loghub/HDFS_2k.log", "loghub/Mac_2k.log",
    "loghub/OpenStack_2k.log", "loghub/Spark_2k.log", "loghub/Thunderbird_2k.log",
    "loghub/Windows_2k.log", "silesia/xml", "silesia/nci", "canterbury/alice29.txt",
    "silesia/dickens",
]
BLOCK = 64 << 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--max-blocks", type=int, default=2)
    args = parser.parse_args(argv)
    codec = make_codec("llm")
    fallbacks = codec._fallback_codecs()  # LZ77 levels 9 and 5, LZMA, CM
    codec.encode_block(b"warm up the model")
    print(f"# {platform.node()}: {cpu_facts()['cpu']}; probe after {PROBE_EARLY_STEPS} steps "
          f"(window {PROBE_EARLY_WINDOW}, gain {PROBE_EARLY_GAIN}) and {PROBE_STEPS} steps "
          f"(window {PROBE_WINDOW}, gain {PROBE_GAIN})", file=sys.stderr)
    print("| file | block | fallback bytes | model bytes (full run) | probe | wrong | bytes lost | "
          "full run s | probe s |")
    print("|---|---:|---:|---:|---|---|---:|---:|---:|")
    totals = {"blocks": 0, "given_up": 0, "wrong": 0, "lost": 0, "lz_wins": 0,
              "full_s": 0.0, "probe_s": 0.0}
    for name in args.files:
        path = Path(name) if Path(name).exists() else BENCH / name
        data = path.read_bytes()
        for b in range(min(args.max_blocks, max(1, -(-len(data) // BLOCK)))):
            block = data[b * BLOCK : (b + 1) * BLOCK]
            if not block or looks_binary(block):
                continue
            rival = min(len(c.encode_block(block)) for c in fallbacks)
            start = time.perf_counter()
            full = codec.encode_block(block)
            full_s = time.perf_counter() - start
            start = time.perf_counter()
            probed = codec.encode_block(block, lambda r=rival: r)
            probe_s = time.perf_counter() - start
            given_up = probed is None
            wrong = given_up and full is not None and len(full) < rival
            lost = (rival - len(full)) if wrong else 0
            totals["blocks"] += 1
            totals["given_up"] += given_up
            totals["wrong"] += wrong
            totals["lost"] += lost
            totals["lz_wins"] += full is None or len(full) >= rival
            totals["full_s"] += full_s
            totals["probe_s"] += probe_s
            print(f"| {name} | {b} | {rival:,} | {len(full):,} | "
                  f"{'gave up' if given_up else 'coded'} | {'WRONG' if wrong else ''} | "
                  f"{lost:,} | {full_s:.1f} | {probe_s:.1f} |", flush=True)
    t = totals
    print(f"\n{t['blocks']} blocks: the fallback smaller on {t['lz_wins']}; the probe gave up on "
          f"{t['given_up']}, wrongly on {t['wrong']} ({t['lost']:,} bytes lost); model time "
          f"{t['full_s']:.0f} s -> {t['probe_s']:.0f} s with the probe")
    return 0


if __name__ == "__main__":
    sys.exit(main())
