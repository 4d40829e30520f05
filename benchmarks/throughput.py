"""Throughput of the ``llm`` codec against a baseline commit, side by side in one run.

For each file (first ``--bytes`` bytes, default settings, 64 KiB blocks), each in its own fresh
process, for this checkout and for ``--baseline`` (default 2435835, the last release of the
float engine, from a temporary git worktree):

- **whole file**: compress and decompress KB/s with the defaults (every CPU this process may
  use), the fastest of ``--repeat`` runs after a warm-up (model loaded, numba compiled), and the
  process's peak RSS;
- **one block alone, one core**: the time to decode the file's first 64 KiB block by a range
  read (what a Zarr chunk read costs), in a process pinned to one CPU with one torch thread.

Usage::

    python benchmarks/throughput.py                 # the eight prose files, a log, XML
    python benchmarks/throughput.py --repeat 2 canterbury/alice29.txt

It needs git. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from pathlib import Path

from fresh import baseline_checkout, head_commit, run_fresh  # benchmarks/fresh.py
from llm import BENCH, TEXT_SET  # benchmarks/llm.py: the same files, one list

from llm_codecs.models.loading import cpu_facts

#: The eight prose files of the default-model issue, one loghub log and XML.
FILES = [*TEXT_SET, "loghub/Linux_2k.log", "silesia/xml"]

_WHOLE = textwrap.dedent("""
    import json, resource, sys, time
    import llm_codecs
    path, limit, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    data = open(path, "rb").read()[:limit]
    llm_codecs.decompress(llm_codecs.compress(data[:4096]))  # load the model, compile
    comp, decomp = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = llm_codecs.compress(data)
        t1 = time.perf_counter()
        back = llm_codecs.decompress(frame)
        t2 = time.perf_counter()
        comp.append(t1 - t0)
        decomp.append(t2 - t1)
    print(json.dumps({"bytes": len(data), "frame": len(frame), "ok": back == data,
                      "compress_s": min(comp), "decompress_s": min(decomp),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

_ONE_BLOCK = textwrap.dedent("""
    import json, os, sys, time
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch
    torch.set_num_threads(1)
    import llm_codecs
    path, repeat = sys.argv[1], int(sys.argv[3])
    block = open(path, "rb").read()[:65536]
    frame = llm_codecs.compress(block)
    llm_codecs.decompress(llm_codecs.compress(block[:4096]))  # load the model, compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        back = llm_codecs.decompress(frame, 0, 65536)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"ok": back == block, "block_s": min(times)}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=FILES)
    parser.add_argument("--bytes", type=int, default=256 << 10)
    parser.add_argument("--baseline", default="2435835")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs per process; the fastest is reported (default 1)")
    args = parser.parse_args()

    head = head_commit()
    rows = []
    with baseline_checkout(args.baseline) as base:
        for name in args.files:
            path = Path(name) if Path(name).is_file() else BENCH / name
            child_args = [str(path), str(args.bytes), str(args.repeat)]
            row = {}
            for label, where in (("new", None), ("old", base)):
                row[label] = run_fresh(_WHOLE, child_args, where)
                row[label].update(run_fresh(_ONE_BLOCK, child_args, where))
            rows.append((name, row))
            print(name, json.dumps(row), file=sys.stderr, flush=True)

    print(f"Commit {head} against {args.baseline}; {platform.machine()}, {cpu_facts()['cpu']}, "
          f"{len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}; first "
          f"{args.bytes:,} bytes of each file, default settings; the fastest of {args.repeat} "
          f"run(s).\n")
    print("| file | bytes | bpb (baseline -> new) | size | KB/s compress (baseline -> new) | "
          "x | KB/s decompress | x | one block, one core, s | x | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows:
        new, old = row["new"], row["old"]
        kb = new["bytes"] / 1000

        def bpb(r):
            return 8 * r["frame"] / r["bytes"]

        print(f"| {name} | {new['bytes']:,} | {bpb(old):.3f} -> {bpb(new):.3f} | "
              f"{new['frame'] / old['frame'] - 1:+.2%} | "
              f"{kb / old['compress_s']:.1f} -> {kb / new['compress_s']:.1f} | "
              f"{old['compress_s'] / new['compress_s']:.2f}x | "
              f"{kb / old['decompress_s']:.1f} -> {kb / new['decompress_s']:.1f} | "
              f"{old['decompress_s'] / new['decompress_s']:.2f}x | "
              f"{old['block_s']:.2f} -> {new['block_s']:.2f} | "
              f"{old['block_s'] / new['block_s']:.2f}x | "
              f"{old['peak_rss_mb']:.0f} -> {new['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
