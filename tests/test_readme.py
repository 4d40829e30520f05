"""The README's and the CLI reference's examples run as written, offline, from a clone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DATA = ROOT / "examples" / "data"


def _blocks(path: Path, lang: str, after: str) -> list[str]:
    """The fenced ``lang`` blocks of ``path`` that follow the heading ``after``."""
    text = path.read_text()
    text = text[text.index(after):]
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def _offline_env() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


def _run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                          env=_offline_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture
def clone(tmp_path):
    """A directory laid out like a clone, as far as the examples read it."""
    shutil.copytree(EXAMPLE_DATA, tmp_path / "examples" / "data")
    return tmp_path


def test_readme_main_job_runs_as_written(clone):
    (block,) = _blocks(ROOT / "README.md", "bash", "Run the main job")[:1]
    result = _run_bash(block, clone)
    assert result.returncode == 0, result.stderr
    original = (EXAMPLE_DATA / "alice29.txt").read_bytes()
    assert (clone / "alice29.txt").read_bytes() == original
    assert "codec:          llm" in result.stdout
    # The embedded model coded every block, smaller than the best classic codec here.
    import llm_codecs

    frame = (clone / "alice29.txt.llmz").read_bytes()
    reader = llm_codecs.open_frame(frame)
    assert reader.header.params["model"] == "default"
    assert {b.method for b in reader.blocks} == {3}, "the model codes English prose"
    assert len(frame) < 0.7 * len(llm_codecs.compress(original, "lz77", level=9))


def test_readme_30_second_example_runs_offline_as_written(clone):
    block = _blocks(ROOT / "README.md", "python", "## 30-second example")[0]
    assert "HuggingFaceTB" not in block  # the hub model has its own block, which needs the network
    result = subprocess.run([sys.executable, "-c", block], cwd=clone, env=_offline_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (clone / "lines.zarr" / "zarr.json").exists()


def _cli_fixture_files(where: Path) -> None:
    prose = (EXAMPLE_DATA / "alice29.txt").read_bytes()[:12_000]
    (where / "alice29.txt").write_bytes(prose)
    log = b"".join(b"2026-12-02 10:%02d:%02d %s worker %d finished job\n"
                   % (i // 60 % 60, i % 60, b"ERROR" if i % 97 == 0 else b"INFO", i % 7)
                   for i in range(1500))
    (where / "big.log").write_bytes(log)
    (where / "data.bin").write_bytes(bytes(range(256)) * 40)
    (where / "dir").mkdir()
    (where / "dir" / "a.txt").write_bytes(prose[:3000])


def test_cli_reference_compress_examples_run(tmp_path):
    _cli_fixture_files(tmp_path)
    (block,) = _blocks(ROOT / "docs" / "cli.md", "bash", "## compress")[:1]
    result = _run_bash(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"alice29.txt", "alice29.txt.llmz", "big.log.llmz", "out.llmz", "dir.tar.llmz"} <= {
        p.name for p in tmp_path.iterdir()}
    assert not (tmp_path / "big.log").exists()


def test_cli_reference_decompress_examples_run(tmp_path):
    _cli_fixture_files(tmp_path)
    setup = ("llm-codecs compress alice29.txt\n"
             "llm-codecs compress --codec lz77 big.log\n"
             "llm-codecs compress --codec lz77 -c data.bin > frame.bin\n"
             "tar cf - dir | llm-codecs compress --codec lz77 - > dir.tar.llmz\n"
             "rm -r dir\n")
    assert _run_bash(setup, tmp_path).returncode == 0
    (block,) = _blocks(ROOT / "docs" / "cli.md", "bash", "## decompress")[:1]
    result = _run_bash(block, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" in result.stdout
    assert (tmp_path / "frame.out").read_bytes() == (tmp_path / "data.bin").read_bytes()
    assert (tmp_path / "dir" / "a.txt").exists()
