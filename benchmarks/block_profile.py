"""Where one decoded 64 KiB block's time goes: a profile, this checkout against another commit.

Decoding one block alone is what a Zarr chunk read or a range read costs, and the decoder cannot
batch positions as the encoder does, so it is the step loop at its barest. For each version (this
checkout, and ``--baseline`` from a temporary git worktree), in a fresh process pinned to one
CPU with one torch thread: compress the file's first 64 KiB with the defaults, decode it once to
load and compile, time ``--repeat`` decodes by range read (the fastest is printed), then decode
once more under ``cProfile`` and print the functions that took the most time of their own.

Usage::

    python benchmarks/block_profile.py                          # alice29.txt, this checkout
    python benchmarks/block_profile.py --baseline 65792c1 silesia/dickens

Prints Markdown.
"""

from __future__ import annotations

import argparse
import textwrap

from fresh import baseline_checkout, head_commit, run_fresh  # benchmarks/fresh.py
from llm import BENCH  # benchmarks/llm.py

_CHILD = textwrap.dedent("""
    import cProfile, json, os, pstats, sys, time
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import torch
    torch.set_num_threads(1)
    import llm_codecs
    path, repeat, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    block = open(path, "rb").read()[:65536]
    frame = llm_codecs.compress(block)
    llm_codecs.decompress(frame, 0, len(block))  # load the model, compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        back = llm_codecs.decompress(frame, 0, len(block))
        times.append(time.perf_counter() - t0)
    profile = cProfile.Profile()
    profile.enable()
    llm_codecs.decompress(frame, 0, len(block))
    profile.disable()
    stats = pstats.Stats(profile).stats
    rows = sorted(((tt, calls, f"{os.path.basename(fn)}:{name}" if line else name)
                   for (fn, line, name), (_, calls, tt, _, _) in stats.items()), reverse=True)
    print(json.dumps({"ok": back == block, "block_s": min(times), "frame": len(frame),
                      "profiled_s": sum(r[0] for r in rows), "top": rows[:top]}))
""")


def _profile(path: str, repeat: int, top: int, python_path: str | None = None) -> dict:
    return run_fresh(_CHILD, [path, str(repeat), str(top)], python_path)


def _table(label: str, result: dict) -> None:
    total = result["profiled_s"]
    print(f"\n**{label}**: one block decoded in {result['block_s']:.2f} s (fastest run); "
          f"under cProfile {total:.2f} s; frame {result['frame']:,} bytes\n")
    print("| function | calls | s | share |")
    print("|---|---|---|---|")
    for seconds, calls, name in result["top"]:
        print(f"| `{name}` | {calls} | {seconds:.3f} | {seconds / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", default="canterbury/alice29.txt",
                        help="path under the bench corpus, or any path")
    parser.add_argument("--baseline", help="a commit to profile too, from a git worktree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    path = BENCH / args.file if (BENCH / args.file).exists() else args.file
    results = [(f"{head_commit()} (this checkout)", _profile(str(path), args.repeat, args.top))]
    if args.baseline:
        with baseline_checkout(args.baseline) as base:
            results.append((args.baseline, _profile(str(path), args.repeat, args.top, base)))
    print(f"`{args.file}`, first 64 KiB, default settings, one CPU, one torch thread")
    for label, result in results:
        _table(label, result)


if __name__ == "__main__":
    main()
