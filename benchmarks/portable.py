"""The portable engine against the float one and against the last float release, in one run.

For each file (first ``--bytes`` bytes, 64 KiB blocks, default settings otherwise):

- **size**: the ``llm`` frame with ``numerics="portable"`` (the default) against
  ``numerics="native"`` (the float forward of the same model), both made by this checkout;
- **speed**: compress and decompress KB/s of this checkout's defaults against commit
  ``--baseline`` (default 2435835, the last release of the float engine), each in its own fresh
  process on the same machine, after a warm-up block (model loaded, numba compiled), the fastest
  of ``--repeat`` runs (a shared 2-core machine varies by 10-20% from run to run).

Usage::

    python benchmarks/portable.py                     # the eight prose files of the model issue
    python benchmarks/portable.py --baseline 2435835 canterbury/alice29.txt

It needs git (a temporary worktree of the baseline commit). Prints Markdown.
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

_RUNNER = textwrap.dedent("""
    import json, sys, time
    import llm_codecs
    path, limit, params = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    repeat = int(sys.argv[4])
    data = open(path, "rb").read()[:limit]
    warm = llm_codecs.compress(data[:4096], "llm", **params)   # load the model, compile
    llm_codecs.decompress(warm)
    comp, decomp = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = llm_codecs.compress(data, "llm", **params)
        t1 = time.perf_counter()
        back = llm_codecs.decompress(frame)
        t2 = time.perf_counter()
        comp.append(t1 - t0)
        decomp.append(t2 - t1)
    print(json.dumps({"bytes": len(data), "frame": len(frame), "ok": back == data,
                      "compress_s": min(comp), "decompress_s": min(decomp)}))
""")


def run(python_path: str | None, path: Path, limit: int, params: dict, repeat: int) -> dict:
    """One fresh process of the code at ``python_path`` (this checkout if None): the fastest of
    ``repeat`` compress and decompress runs after a warm-up."""
    return run_fresh(_RUNNER, [str(path), str(limit), json.dumps(params), str(repeat)],
                     python_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", default=TEXT_SET)
    parser.add_argument("--bytes", type=int, default=256 << 10)
    parser.add_argument("--baseline", default="2435835")
    parser.add_argument("--repeat", type=int, default=2,
                        help="timed runs per process; the fastest is reported (default 2)")
    args = parser.parse_args()

    head = head_commit()
    rows = []
    with baseline_checkout(args.baseline) as base:
        for name in args.files:
            path = Path(name) if Path(name).is_file() else BENCH / name
            portable = run(None, path, args.bytes, {}, args.repeat)
            native = run(None, path, args.bytes, {"numerics": "native"}, 1)
            old = run(base, path, args.bytes, {}, args.repeat)
            rows.append((name, portable, native, old))
            print(name, json.dumps([portable, native, old]), file=sys.stderr)

    print(f"Commit {head} against {args.baseline}; {platform.machine()}, "
          f"{cpu_facts()['cpu']}, {os.cpu_count()} CPUs, Python {platform.python_version()}; first "
          f"{args.bytes:,} bytes of each file, 64 KiB blocks, default settings; speed: the "
          f"fastest of {args.repeat} runs.\n")
    print("| file | bytes | portable bpb | native bpb | portable / native | "
          "KB/s comp (baseline -> portable) | speed-up | KB/s decomp (baseline -> portable) "
          "| speed-up | baseline bpb |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, p, n, o in rows:
        kb = p["bytes"] / 1000

        def bpb(r):
            return 8 * r["frame"] / r["bytes"]

        print(f"| {name} | {p['bytes']:,} | {bpb(p):.3f} | {bpb(n):.3f} | "
              f"{p['frame'] / n['frame']:.4f} | {kb / o['compress_s']:.1f} -> "
              f"{kb / p['compress_s']:.1f} | {o['compress_s'] / p['compress_s']:.2f}x | "
              f"{kb / o['decompress_s']:.1f} -> {kb / p['decompress_s']:.1f} | "
              f"{o['decompress_s'] / p['decompress_s']:.2f}x | {bpb(o):.3f} |")


if __name__ == "__main__":
    main()
