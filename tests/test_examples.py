"""The scripts in examples/ run as documented, each in its own interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, timeout: int = 180) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=timeout, cwd=EXAMPLES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("codec", ["lz77", "huffman"])
def test_zarr_text_archive(tmp_path, codec):
    out = run_example("zarr_text_archive.py", "--codec", codec, "--out", str(tmp_path))
    assert f"llm_codecs.{codec}" in out and "400 documents" in out
    assert (tmp_path / "docs.zarr" / "zarr.json").exists()


def test_fsspec_log(tmp_path):
    out = run_example("fsspec_log.py", "--target", f"file://{tmp_path}", "--lines", "20000")
    assert "app.log.llmz" in out and "1 of" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log.llmz"]


@pytest.mark.slow
def test_dask_job(tmp_path):
    out = run_example("dask_job.py", "--out", str(tmp_path))
    assert "scheduler: tcp://" in out and "16 chunks" in out


def test_benchmark_model_on_your_own_files(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_bytes(b"Meeting notes, Tuesday.\r\nThe archive team agreed on the layout.\r\n" * 40)
    out = run_example("benchmark_model.py", str(mine), "--max-bytes", "3000", timeout=300)
    assert "model: default" in out and "notes.txt" in out and "bits per byte" in out
