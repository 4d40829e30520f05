"""Run the fuzz targets under atheris (coverage-guided, libFuzzer).

Usage::

    python tests/fuzz/fuzz.py TARGET [--seconds N]   # one target
    python tests/fuzz/fuzz.py all --seconds 20       # each target in turn (what CI runs)

New inputs go to a temporary directory; the committed seeds in ``tests/fuzz/corpus/TARGET``
are read, never written (add a new finding there by hand, with the fix that it found). A
failure prints the crashing input and exits non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def run_one(name: str, seconds: int) -> int:
    import atheris

    with atheris.instrument_imports(include=["llm_codecs", "targets"]):
        import targets
    if name not in targets.TARGETS:
        sys.exit(f"unknown target {name!r}; targets: {', '.join(targets.TARGETS)}")
    target = targets.TARGETS[name]
    seeds = HERE / "corpus" / name
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        argv = [sys.argv[0], scratch, str(seeds), f"-max_total_time={seconds}",
                "-max_len=4096", "-rss_limit_mb=4096", "-timeout=20",
                f"-artifact_prefix={scratch}/"]
        atheris.Setup(argv, target)
        atheris.Fuzz()  # exits the process: 0 when the time is up, non-zero on a finding
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a target of targets.py, or 'all'")
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    if args.target != "all":
        # Not imported before: atheris instruments the package only as it is first imported.
        return run_one(args.target, args.seconds)
    import targets

    status = 0
    for name in targets.TARGETS:
        # One process per target: atheris.Fuzz never returns.
        done = subprocess.run([sys.executable, __file__, name, "--seconds", str(args.seconds)],
                              capture_output=True, text=True)
        summary = [line for line in done.stderr.splitlines() if line.startswith("#")][-1:]
        print(f"{name}: exit {done.returncode} {' '.join(summary)}", flush=True)
        if done.returncode:
            print(done.stderr[-4000:], file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
