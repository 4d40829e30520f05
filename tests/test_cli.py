"""The ``llm-codecs`` command line: file handling, safety and error reporting, end to end.

Most cases call :func:`llm_codecs.cli.main` in-process (fast); a few go through
``python -m llm_codecs`` to cover the real entry point, pipes and exit statuses.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import llm_codecs
from llm_codecs import cli

from .helpers import BENCH

CODECS = ["huffman", "lz77"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def text() -> bytes:
    """alice29.txt from the bench corpus, or similar text when the corpus is not there."""
    path = BENCH / "canterbury" / "alice29.txt"
    if path.is_file():
        return path.read_bytes()
    rng = random.Random(29)
    words = [b"alice", b"rabbit", b"queen", b"said", b"the", b"hatter", b"tea", b"of", b"a"]
    return b" ".join(rng.choice(words) for _ in range(30_000))


@pytest.fixture
def alice(tmp_path, text) -> Path:
    path = tmp_path / "alice29.txt"
    path.write_bytes(text)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    path.chmod(0o640)
    return path


def run(argv, capsysbinary) -> tuple[int, bytes, str]:
    """Run the CLI in-process; return its status, stdout bytes and stderr text."""
    status = cli.main([str(a) for a in argv])
    out, err = capsysbinary.readouterr()
    return status, out, err.decode()


def leftovers(directory: Path) -> list[str]:
    """Temporary files the CLI may have left behind in ``directory``."""
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def frame_for(tmp_path: Path, data: bytes, name: str = "data.llmz", **kwargs) -> Path:
    path = tmp_path / name
    path.write_bytes(llm_codecs.compress(data, **kwargs))
    return path


def python_m(*args, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "llm_codecs", *map(str, args)],
        input=stdin, capture_output=True, env=env, cwd=ROOT, timeout=timeout, check=False,
    )


# --------------------------------------------------------------------------------------------
# compress / decompress


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_replaces_files_like_gzip(alice, text, codec, capsysbinary):
    status, out, err = run(["compress", "--codec", codec, alice], capsysbinary)
    packed = alice.with_name("alice29.txt.llmz")
    assert (status, out, err) == (0, b"", "")
    assert not alice.exists(), "the input goes once the output is in place"
    assert llm_codecs.open_frame(packed.read_bytes()).header.codec == codec
    assert len(packed.read_bytes()) < len(text)
    # Like gzip, the output keeps the input's permissions and modification time.
    assert packed.stat().st_mode & 0o777 == 0o640
    assert packed.stat().st_mtime == 1_000_000_000

    status, out, err = run(["decompress", packed], capsysbinary)
    assert (status, out, err) == (0, b"", "")
    assert alice.read_bytes() == text
    assert not packed.exists()
    assert alice.stat().st_mode & 0o777 == 0o640
    assert leftovers(alice.parent) == []


def test_keep_level_block_size_and_output(alice, text, tmp_path, capsysbinary):
    target = tmp_path / "sub" / "out.llmz"
    target.parent.mkdir()
    status, _, err = run(
        ["compress", "-k", "--codec", "lz77", "--level", "9", "--block-size", "16K",
         "-o", target, alice], capsysbinary)
    assert status == 0, err
    assert alice.read_bytes() == text, "-k keeps the input"
    reader = llm_codecs.open_frame(target.read_bytes())
    assert reader.header.params.get("level") == 9
    assert reader.header.block_size == 16 << 10
    assert len(reader.blocks) == -(-len(text) // (16 << 10))

    restored = tmp_path / "restored.txt"
    status, _, err = run(["decompress", "-k", "-o", restored, target], capsysbinary)
    assert status == 0, err
    assert restored.read_bytes() == text
    assert target.exists()


def test_stdout_keeps_input(alice, text, capsysbinary):
    status, out, err = run(["compress", "-c", "--codec", "lz77", alice], capsysbinary)
    assert status == 0, err
    assert alice.exists(), "writing to stdout never removes the input"
    assert not alice.with_name("alice29.txt.llmz").exists()
    assert llm_codecs.decompress(out) == text


def test_empty_file(tmp_path, capsysbinary):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert run(["compress", empty], capsysbinary)[0] == 0
    assert run(["decompress", tmp_path / "empty.llmz"], capsysbinary)[0] == 0
    assert empty.read_bytes() == b""


def test_refuses_to_overwrite_without_force(alice, text, capsysbinary):
    packed = alice.with_name("alice29.txt.llmz")
    packed.write_bytes(b"precious")
    status, _, err = run(["compress", "--codec", "lz77", alice], capsysbinary)
    assert status == 1
    assert err.startswith(f"llm-codecs: {alice}: ") and "already exists" in err
    assert packed.read_bytes() == b"precious", "the existing file is untouched"
    assert alice.read_bytes() == text, "the input stays when nothing was written"

    status, _, err = run(["compress", "--codec", "huffman", "-f", "-k", alice], capsysbinary)
    assert status == 0, err
    assert llm_codecs.decompress(packed.read_bytes()) == text

    status, _, err = run(["decompress", packed], capsysbinary)
    assert status == 1 and "already exists" in err
    assert alice.read_bytes() == text and packed.exists()
    assert leftovers(alice.parent) == []


def test_one_failure_does_not_stop_the_others(alice, tmp_path, capsysbinary):
    missing = tmp_path / "missing.txt"
    status, _, err = run(["compress", "--codec", "lz77", missing, alice], capsysbinary)
    assert status == 1
    assert f"llm-codecs: {missing}: No such file or directory" in err
    assert alice.with_name("alice29.txt.llmz").exists()


def test_decompress_needs_the_suffix_or_an_output_name(alice, text, tmp_path, capsysbinary):
    odd = frame_for(tmp_path, text, "frame.bin", codec="lz77")
    status, _, err = run(["decompress", odd], capsysbinary)
    assert status == 1 and "unknown suffix" in err
    assert odd.exists()
    status, _, err = run(["decompress", "-o", tmp_path / "plain", odd], capsysbinary)
    assert status == 0, err
    assert (tmp_path / "plain").read_bytes() == text


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_frame_reports_and_leaves_nothing(tmp_path, text, damage, capsysbinary):
    frame = bytearray(llm_codecs.compress(text, "lz77", block_size=16 << 10))
    if damage == "flip":
        frame[len(frame) // 2] ^= 0x10
    elif damage == "truncate":
        frame = frame[: len(frame) // 2]
    else:
        frame = bytearray(b"this is not a frame at all, just some text" * 3)
    bad = tmp_path / "bad.txt.llmz"
    bad.write_bytes(bytes(frame))

    status, _, err = run(["decompress", bad], capsysbinary)
    assert status == 1
    assert err.startswith(f"llm-codecs: {bad}: ")
    assert "Traceback" not in err
    assert not (tmp_path / "bad.txt").exists(), "no partial output"
    assert bad.exists(), "a frame that failed to decompress is kept"
    assert leftovers(tmp_path) == []
    # info reads only the header and index, so it notices everything but payload damage.
    if damage != "flip":
        assert run(["info", bad], capsysbinary)[0] == 1


def test_interrupt_cleans_up_temporary_file(alice, text, monkeypatch, capsysbinary):
    def interrupted(src, dst, *args, **kwargs):
        dst.write(b"half a frame")
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "compress_stream", interrupted)
    status, _, err = run(["compress", alice], capsysbinary)
    assert status == 130 and "interrupted" in err
    assert alice.read_bytes() == text
    assert sorted(p.name for p in alice.parent.iterdir()) == ["alice29.txt"]


def test_range_extraction(tmp_path, text, capsysbinary):
    frame = frame_for(tmp_path, text, "alice.llmz", codec="lz77", block_size=4096)
    for offset, size in [(0, 10), (4000, 300), (5000, 20_000), (len(text) - 5, 100)]:
        status, out, err = run(
            ["decompress", "-c", "--offset", offset, "--size", size, frame], capsysbinary)
        assert status == 0, err
        assert out == text[offset : offset + size]
    status, _, err = run(["decompress", "--offset", "1K", frame], capsysbinary)
    assert status == 0, err
    assert (tmp_path / "alice").read_bytes() == text[1024:]
    assert frame.exists(), "extracting a range never removes the frame"


def test_progress_bar_goes_to_a_terminal_stderr_only(alice, text, monkeypatch, capsysbinary):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for quiet in (False, True):
        terminal = Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        status = cli.main(["compress", "--codec", "lz77", "-c", "--block-size", "16K", str(alice)]
                          + (["-q"] if quiet else []))
        out, _ = capsysbinary.readouterr()
        assert status == 0
        assert llm_codecs.decompress(out) == text, "stdout carries the frame and nothing else"
        assert bool(terminal.getvalue()) is not quiet


@pytest.mark.parametrize(
    "argv",
    [
        ["compress", "-o", "x", "a", "b"],
        ["compress", "--block-size", "12X", "a"],
        ["compress", "--level", "99", "--codec", "lz77", "a"],
        ["compress", "--codec", "nope", "a"],
        ["compress", "-c", "-o", "x", "a"],
        ["decompress"],
        ["bench", "--against", "zlib,gzip9", "a"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv, capsysbinary):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "usage:" in capsysbinary.readouterr().err.decode()


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("65536", 65536), ("64K", 65536), ("64k", 65536), ("64KiB", 65536), ("64KB", 65536),
     ("1M", 1 << 20), ("1MiB", 1 << 20), ("2G", 2 << 30), ("0", 0)],
)
def test_parse_size(spelling, value):
    assert cli.parse_size(spelling) == value


@pytest.mark.parametrize("spelling", ["", "K", "1.5M", "-1", "12X", "iB", "1 M B"])
def test_parse_size_rejects(spelling):
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        cli.parse_size(spelling)


# --------------------------------------------------------------------------------------------
# info and bench


def test_info(tmp_path, text, capsysbinary):
    # Random bytes do not compress, so their blocks are stored: both methods show up.
    data = text[:20_000] + random.Random(1).randbytes(12_288)
    frame = frame_for(tmp_path, data, codec="lz77", block_size=4096, level=9)
    status, out, err = run(["info", frame], capsysbinary)
    assert status == 0, err
    report = out.decode()
    assert "codec:          lz77" in report
    assert '"level": 9' in report
    assert "blocks:         8 (" in report
    assert "stored: 3" in report and "lz77: 5" in report
    assert f"original size:  {len(data):,} bytes" in report
    assert "bits per byte" in report

    status, out, _ = run(["info", "-v", frame], capsysbinary)
    rows = [line.split() for line in out.decode().splitlines()]
    blocks = [r for r in rows if len(r) == 5 and r[0].isdigit()]
    assert [int(r[0]) for r in blocks] == list(range(8))
    assert blocks[-1][-1] == "stored"


def test_bench_lists_ours_and_classic(tmp_path, text, monkeypatch, capsysbinary):
    small = tmp_path / "small.txt"
    small.write_bytes(text[:20_000])
    # Pretend zstandard is missing: the row must say so instead of failing.
    monkeypatch.setitem(sys.modules, "zstandard", None)
    status, out, err = run(
        ["bench", "--repeat", "1", "--against", "zlib,zstd", small], capsysbinary)
    assert status == 0, err
    report = out.decode()
    assert "zlib-6" in report
    assert "zstd-3" in report and "not installed" in report
    for codec in CODECS:
        assert codec in report
    assert "MB/s" in report and "bits/byte" in report


# --------------------------------------------------------------------------------------------
# End to end through `python -m llm_codecs`


def test_subprocess_stdin_stdout_round_trip(text):
    packed = python_m("compress", "--codec", "lz77", "-", stdin=text)
    assert packed.returncode == 0, packed.stderr
    assert packed.stderr == b"", "no progress bar when stderr is not a terminal"
    assert packed.stdout[:4] == b"LLMZ"
    restored = python_m("decompress", "-", stdin=packed.stdout)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == text


def test_subprocess_errors_have_no_traceback(tmp_path):
    bad = tmp_path / "bad.llmz"
    bad.write_bytes(b"LLMZ" + b"\0" * 100)
    result = python_m("decompress", "-k", bad)
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"llm-codecs: {bad}: ")
    assert b"Traceback" not in result.stderr
    assert python_m("compress", "--block-size", "huge", bad).returncode == 2



def test_bench_leaves_the_model_out_unless_asked_and_says_how_long(tmp_path, text, capsysbinary):
    small = tmp_path / "small.txt"
    small.write_bytes(text[:3000])
    status, out, err = run(["bench", "--repeat", "1", "--against", "none", small], capsysbinary)
    assert status == 0, err
    rows = [line.split()[0] for line in out.decode().splitlines()[2:] if line.strip()]
    assert rows and "llm" not in " ".join(rows) and any(r.startswith("lz77") for r in rows)
    assert "llm not run (ask with --codec)" in err and " s on these files" in err
    status, out, err = run(["bench", "--codec", "llm", "--repeat", "5", "--against", "none",
                            small], capsysbinary)
    assert status == 0, err
    assert "timed once (not --repeat)" in err and "llm" in out.decode()


def test_progress_eta_counts_from_the_first_block(monkeypatch):
    import io

    from llm_codecs.cli import _Progress

    now = [0.0]
    bar = _Progress(total=1000, file=io.StringIO(), smoothing=0, mininterval=0)
    monkeypatch.setattr(bar, "_time", lambda: now[0])
    bar.start_t = bar.last_print_t = 0.0
    bar.starting("starting")
    now[0] = 30.0
    bar.update(100)  # the first block arrives after 30 s of start-up
    now[0] = 31.0
    bar.update(100)  # the next one a second later
    meter = bar.format_dict
    assert (meter["n"] - meter["initial"]) / meter["elapsed"] == pytest.approx(100)
    assert "<00:08" in bar.format_meter(**meter)  # 800 bytes left at 100 B/s, not at 6.7 B/s


def test_info_describes_a_frame_whose_codec_this_build_does_not_know(tmp_path, capsysbinary):
    from .helpers import rewrite_header

    frame = llm_codecs.compress(b"future data " * 100, "lz77")
    future = rewrite_header(frame, 1, lambda f: f.update(codec="zstd-from-the-future"))
    path = tmp_path / "future.llmz"
    path.write_bytes(future)
    status, out, err = run(["info", path], capsysbinary)
    assert status == 0, err
    assert "zstd-from-the-future" in out.decode() and "1,200 bytes" in out.decode()
    with pytest.raises(llm_codecs.CorruptDataError, match="unusable codec"):
        llm_codecs.decompress(future)


def test_every_baseline_round_trips_and_the_families_name_real_ones():
    from llm_codecs.baselines import BASELINES, FAMILIES, available

    assert {label for labels in FAMILIES.values() for label in labels} <= set(BASELINES)
    data = b"the same table for the CLI and the benchmarks " * 50
    for label, (comp, decomp) in available(list(BASELINES)).items():
        assert decomp(comp(data)) == data, label
