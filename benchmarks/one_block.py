"""One 64 KiB block on its own, with every CPU and with one: this checkout against a baseline.

What a Zarr chunk read, a range read or a one-block file costs: the first 64 KiB of each file
compressed as a frame of its own, and that block decoded by a range read, each the fastest of
``--repeat`` runs in a fresh process after a warm-up (model loaded, numba compiled). "all CPUs"
lets the process use every CPU it may (this checkout spreads one block's lanes over them when
they are spare, :mod:`llm_codecs.parts`); "one CPU" pins it to one CPU with one torch thread.

Usage::

    python benchmarks/one_block.py                              # alice29.txt, dickens
    python benchmarks/one_block.py --baseline 2435835 canterbury/lcet10.txt

It needs git. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import textwrap
from pathlib import Path

from fresh import baseline_checkout, head_commit, run_fresh  # benchmarks/fresh.py
from llm import BENCH  # benchmarks/llm.py

from llm_codecs.models.loading import cpu_facts

_CHILD = textwrap.dedent("""
    import json, os, sys, time
    path, repeat, pin = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    if pin:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch
    if pin:
        torch.set_num_threads(1)
    import llm_codecs
    block = open(path, "rb").read()[:65536]
    llm_codecs.decompress(llm_codecs.compress(block[:4096]))  # load the model, compile
    enc, dec = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = llm_codecs.compress(block)
        t1 = time.perf_counter()
        back = llm_codecs.decompress(frame, 0, len(block))
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    print(json.dumps({"ok": back == block, "frame": len(frame), "encode_s": min(enc),
                      "decode_s": min(dec)}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*",
                        default=["canterbury/alice29.txt", "silesia/dickens"])
    parser.add_argument("--baseline", default="2435835")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with baseline_checkout(args.baseline) as base:
        for name in args.files:
            path = Path(name) if Path(name).is_file() else BENCH / name
            for pin in ("0", "1"):
                got = {label: run_fresh(_CHILD, [str(path), str(args.repeat), pin], where)
                       for label, where in (("new", None), ("old", base))}
                rows.append((name, "one CPU" if pin == "1" else "all CPUs", got))
                print(name, pin, got, file=sys.stderr, flush=True)
    print(f"Commit {head_commit()} against {args.baseline}; {platform.machine()}, "
          f"{cpu_facts()['cpu']}, {len(os.sched_getaffinity(0))} CPUs, Python "
          f"{platform.python_version()}; the first 65,536 bytes of each file, default "
          f"settings; the fastest of {args.repeat} runs.\n")
    print("| file | CPUs | frame bytes (baseline -> new) | encode s (baseline -> new) | x | "
          "decode s | x |")
    print("|---|---|---|---|---|---|---|")
    for name, cpus, got in rows:
        new, old = got["new"], got["old"]
        print(f"| {name} | {cpus} | {old['frame']:,} -> {new['frame']:,} | "
              f"{old['encode_s']:.2f} -> {new['encode_s']:.2f} | "
              f"{old['encode_s'] / new['encode_s']:.2f}x | "
              f"{old['decode_s']:.2f} -> {new['decode_s']:.2f} | "
              f"{old['decode_s'] / new['decode_s']:.2f}x |")


if __name__ == "__main__":
    main()
