"""What the benchmarks that compare commits share: fresh processes and a baseline checkout."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def head_commit() -> str:
    """This checkout's commit, short."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True).stdout.strip()


def run_fresh(code: str, args: list[str], python_path: str | None = None) -> dict:
    """Run ``code`` in a new interpreter with ``args`` and the package at ``python_path`` (this
    checkout if None); return the JSON of its last line of output, which must say ``"ok"``."""
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, check=True, cwd=python_path or ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit(f"round trip failed: {args}")
    return result


@contextlib.contextmanager
def baseline_checkout(commit: str) -> Iterator[str]:
    """A temporary git worktree of ``commit``, removed afterwards; yields its path."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), commit],
                       cwd=ROOT, check=True)
        try:
            yield str(base)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
