"""fsspec integration: the ``llmz::`` filesystem over local, memory and S3, and the compression."""

from __future__ import annotations

import io
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import uuid

import fsspec
import pytest

import llm_codecs
from llm_codecs import CorruptDataError
from llm_codecs.frame import FrameReader
from llm_codecs.integrations import fsspec as llmz_fsspec
from llm_codecs.integrations.fsspec import LLMZFileSystem

LOG = b"".join(b"%06d GET /api/v1/items?id=%d 200 %dms\n" % (i, i * 7 % 1000, i % 97)
               for i in range(40_000))
BLOCK = 16 << 10  # small blocks: many of them in LOG


@pytest.fixture
def memroot():
    """A fresh directory in the memory filesystem."""
    root = f"/t-{uuid.uuid4().hex[:8]}"
    yield root
    mem = fsspec.filesystem("memory")
    if mem.exists(root):
        mem.rm(root, recursive=True)


@pytest.fixture(scope="module")
def s3():
    """Storage options of a real S3 API (moto server) on loopback, with a fresh bucket."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-west-2"},
    }
    fsspec.filesystem("s3", **options).mkdir("bucket")
    try:
        yield options
    finally:
        server.stop()


def _count_decodes(monkeypatch) -> list[int]:
    decoded: list[int] = []
    original = FrameReader.read_block

    def counting(self, i):
        decoded.append(i)
        return original(self, i)

    monkeypatch.setattr(FrameReader, "read_block", counting)
    return decoded


# -- memory ------------------------------------------------------------------------------------


def test_memory_write_list_read(memroot):
    url = f"llmz::memory://{memroot}/logs/app.log"
    with fsspec.open(url, "wb", llmz={"codec": "lz77", "level": 9, "block_size": BLOCK}) as f:
        for i in range(0, len(LOG), 100_000):
            f.write(LOG[i : i + 100_000])
    mem = fsspec.filesystem("memory")
    assert mem.ls(f"{memroot}/logs", detail=False) == [f"{memroot}/logs/app.log.llmz"]
    stored = mem.cat_file(f"{memroot}/logs/app.log.llmz")
    assert len(stored) < len(LOG) // 4
    header = llm_codecs.open_frame(stored).header
    assert (header.codec, header.params["level"], header.block_size) == ("lz77", 9, BLOCK)

    fs, path = fsspec.core.url_to_fs(f"llmz::memory://{memroot}")
    assert isinstance(fs, LLMZFileSystem)
    [entry] = fs.ls(f"{path}/logs")
    assert entry["name"] == f"{memroot}/logs/app.log"
    assert entry["size"] == len(LOG) and entry["type"] == "file"
    assert entry["llmz_stored_size"] == len(stored)
    assert fs.ls(f"{path}/logs", detail=False) == [f"{memroot}/logs/app.log"]
    assert fs.info(f"{path}/logs/app.log")["size"] == len(LOG)
    assert fs.find(path) == [f"{memroot}/logs/app.log"]
    assert fs.glob(f"{path}/**/*.log") == [f"{memroot}/logs/app.log"]
    assert fs.du(path) == len(LOG)
    assert fs.isfile(f"{path}/logs/app.log") and fs.isdir(f"{path}/logs")

    with fsspec.open(url, "rb") as f:
        assert f.size == len(LOG)
        f.seek(123_457)
        assert f.read(1000) == LOG[123_457:124_457]
        assert f.tell() == 124_457
        f.seek(-50, io.SEEK_END)
        assert f.read() == LOG[-50:]
    assert fs.cat_file(f"{path}/logs/app.log", start=10, end=30) == LOG[10:30]
    with fsspec.open(url, "rt") as f:
        lines = [next(f) for _ in range(3)]
    assert "".join(lines).encode() == b"".join(LOG.splitlines(keepends=True)[:3])


def test_default_codec_and_pass_through(memroot):
    mem = fsspec.filesystem("memory")
    mem.pipe_file(f"{memroot}/plain.txt", b"left alone")
    fs = fsspec.filesystem("llmz", target_protocol="memory")
    fs.pipe_file(f"{memroot}/packed.txt", b"packed " * 100)
    stored = mem.cat_file(f"{memroot}/packed.txt.llmz")
    assert llm_codecs.open_frame(stored).header.codec == llm_codecs.DEFAULT_CODEC
    assert sorted(fs.ls(memroot, detail=False)) == [f"{memroot}/packed.txt",
                                                    f"{memroot}/plain.txt"]
    assert fs.cat_file(f"{memroot}/plain.txt") == b"left alone"
    assert fs.info(f"{memroot}/plain.txt")["size"] == len(b"left alone")
    assert fs.cat_file(f"{memroot}/packed.txt") == b"packed " * 100
    # the stored frame stays reachable under its own name, raw
    assert fs.cat_file(f"{memroot}/packed.txt.llmz") == stored


def test_copy_move_remove(memroot):
    fs = fsspec.filesystem("llmz", target_protocol="memory", codec="huffman")
    fs.pipe_file(f"{memroot}/a.bin", b"abc" * 1000)
    fs.copy(f"{memroot}/a.bin", f"{memroot}/b.bin")
    fs.mv(f"{memroot}/b.bin", f"{memroot}/c.bin")
    assert fs.ls(memroot, detail=False) == [f"{memroot}/a.bin", f"{memroot}/c.bin"]
    assert fs.cat_file(f"{memroot}/c.bin") == b"abc" * 1000
    fs.rm(f"{memroot}/a.bin")
    fs.rm_file(f"{memroot}/c.bin")
    assert fs.find(memroot) == []


def test_pickled_filesystem_keeps_codec_options(memroot):
    fs = fsspec.filesystem("llmz", target_protocol="memory", codec="lz77", level=2,
                           block_size=4096)
    clone = pickle.loads(pickle.dumps(fs))
    assert (clone.codec, clone.codec_params, clone.block_size) == ("lz77", {"level": 2}, 4096)
    clone.pipe_file(f"{memroot}/p", b"x" * 10_000)
    assert fs.cat_file(f"{memroot}/p") == b"x" * 10_000


def test_bad_options_and_modes(memroot):
    with pytest.raises(llm_codecs.CodecError):
        fsspec.filesystem("llmz", target_protocol="memory", codec="nope", skip_instance_cache=True)
    with pytest.raises(llm_codecs.CodecError, match="level"):  # when made, not at first write
        fsspec.filesystem("llmz", target_protocol="memory", codec="lz77", level=99)
    good = fsspec.filesystem("llmz", target_protocol="memory")
    with pytest.raises(NotImplementedError):
        good.open(f"{memroot}/x", "ab")


def test_corrupt_stored_file(memroot):
    mem = fsspec.filesystem("memory")
    mem.pipe_file(f"{memroot}/bad.txt.llmz", b"this is not a frame, just bytes ending oddly")
    fs = fsspec.filesystem("llmz", target_protocol="memory")
    info = fs.info(f"{memroot}/bad.txt")
    assert info["size"] is None and "not an LLMZ frame" in info["llmz_error"]
    with pytest.raises(CorruptDataError):
        fs.cat_file(f"{memroot}/bad.txt")


# -- local -------------------------------------------------------------------------------------


def test_local_write_is_streamed_and_atomic(tmp_path):
    url = f"llmz::file://{tmp_path}/big.log"
    with fsspec.open(url, "wb", llmz={"codec": "huffman", "block_size": BLOCK}) as f:
        f.write(LOG[: 5 * BLOCK])
        # blocks already went to a hidden temporary sibling; the final name is not there yet
        temps = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
        assert temps and not (tmp_path / "big.log.llmz").exists()
        assert os.path.getsize(tmp_path / temps[0]) > 4 * BLOCK // 2
        f.write(LOG[5 * BLOCK :])
    assert os.listdir(tmp_path) == ["big.log.llmz"]
    assert llm_codecs.decompress((tmp_path / "big.log.llmz").read_bytes()) == LOG

    # (fsspec.open's OpenFile closes, so commits, on errors: the file object itself discards)
    fs, path = fsspec.core.url_to_fs(f"llmz::file://{tmp_path}/failed.log")
    with pytest.raises(RuntimeError), fs.open(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("writer died")
    assert os.listdir(tmp_path) == ["big.log.llmz"]


def test_local_transaction_defers_the_file(tmp_path):
    fs = fsspec.filesystem("llmz", target_protocol="file")
    with fs.transaction:
        fs.pipe_file(f"{tmp_path}/t.txt", b"in a transaction")
        assert not (tmp_path / "t.txt.llmz").exists()
    assert fs.cat_file(f"{tmp_path}/t.txt") == b"in a transaction"


def test_pandas_read_csv(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": range(500), "name": [f"row {i}" for i in range(500)],
                          "value": [i / 7 for i in range(500)]})
    with fsspec.open(f"llmz::file://{tmp_path}/table.csv", "wt") as f:
        frame.to_csv(f, index=False)
    assert os.listdir(tmp_path) == ["table.csv.llmz"]
    back = pd.read_csv(f"llmz::file://{tmp_path}/table.csv")
    pd.testing.assert_frame_equal(back, frame)


@pytest.mark.parametrize("where", ["file", "memory"])
def test_small_read_in_the_middle_decodes_at_most_two_blocks(tmp_path, memroot, where,
                                                             monkeypatch):
    base = f"{tmp_path}" if where == "file" else memroot
    url = f"llmz::{where}://{base}/multi.log"
    with fsspec.open(url, "wb", llmz={"codec": "lz77", "block_size": BLOCK}) as f:
        f.write(LOG)
    decoded = _count_decodes(monkeypatch)
    middle = len(LOG) // 2 + 7
    with fsspec.open(url, "rb") as f:
        assert len(f.reader.blocks) > 50
        f.seek(middle)
        assert f.read(100) == LOG[middle : middle + 100]
    assert 1 <= len(decoded) <= 2
    decoded.clear()
    boundary = 30 * BLOCK - 50  # straddles blocks 29 and 30
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.cat_file(path, start=boundary, end=boundary + 100) == LOG[boundary : boundary + 100]
    assert sorted(decoded) == [29, 30]


# -- S3 (moto server on loopback) --------------------------------------------------------------


def test_s3_round_trip_listing_and_range_reads(s3, monkeypatch):
    key = f"bucket/{uuid.uuid4().hex[:8]}/access.log"
    url = f"llmz::s3://{key}"
    options = {"codec": "lz77", "level": 5, "block_size": BLOCK}
    with fsspec.open(url, "wb", s3=s3, llmz=options) as f:
        f.write(LOG)
    raw = fsspec.filesystem("s3", **s3)
    parent = key.rsplit("/", 1)[0]
    assert raw.ls(parent, detail=False) == [key + ".llmz"]

    fs, _ = fsspec.core.url_to_fs(url, s3=s3)
    [entry] = fs.ls(parent)
    assert (entry["name"], entry["size"]) == (key, len(LOG))
    assert fs.glob(f"{parent}/*.log") == [key]

    decoded = _count_decodes(monkeypatch)
    middle = len(LOG) // 3
    with fsspec.open(url, "rb", s3=s3) as f:
        f.seek(middle)
        assert f.read(100) == LOG[middle : middle + 100]
    assert 1 <= len(decoded) <= 2
    with fsspec.open(url, "rb", s3=s3) as f:
        assert f.read() == LOG

    raw.pipe_file(f"{parent}/raw.txt", b"not compressed")
    assert fs.cat_file(f"{parent}/raw.txt") == b"not compressed"
    fs.rm(key)
    assert fs.ls(parent, detail=False) == [f"{parent}/raw.txt"]


def test_s3_failed_write_leaves_nothing(s3):
    key = f"bucket/{uuid.uuid4().hex[:8]}/never.log"
    fs, path = fsspec.core.url_to_fs(f"llmz::s3://{key}", s3=s3)
    with pytest.raises(RuntimeError), fs.open(path, "wb") as f:
        f.write(LOG[:1000])
        raise RuntimeError("writer died")
    assert not fsspec.filesystem("s3", **s3).exists(key + ".llmz")


# -- compression -------------------------------------------------------------------------------


def test_compression_is_registered_and_inferred(tmp_path):
    assert "llmz" in fsspec.available_compressions()
    assert fsspec.utils.infer_compression("x.txt.llmz") == "llmz"
    path = str(tmp_path / "x.txt.llmz")
    with fsspec.open(path, "wt", compression="infer") as f:
        f.write(LOG[:50_000].decode())
    frame = (tmp_path / "x.txt.llmz").read_bytes()
    assert llm_codecs.decompress(frame) == LOG[:50_000]
    with fsspec.open(path, "rb", compression="infer") as f:
        f.seek(1234)
        assert f.read(10) == LOG[1234:1244]
    with fsspec.open(path, "rt", compression="llmz") as f:
        assert f.readline().encode() == LOG.split(b"\n", 1)[0] + b"\n"
    assert llmz_fsspec.open_compressed is fsspec.compression.compr["llmz"]


def test_import_llm_codecs_alone_registers_the_compression(tmp_path):
    # A fresh process that only imports llm_codecs: fsspec's compression="infer" (by the
    # .llmz suffix) and compression="llmz" must both work, reading and writing.
    script = textwrap.dedent(f"""
        import fsspec, llm_codecs
        path = {str(tmp_path / "x.txt.llmz")!r}
        with fsspec.open(path, "wb", compression="infer", codec="lz77") as f:
            f.write(b"hello " * 100)
        assert open(path, "rb").read(4) == b"LLMZ"
        with fsspec.open(path, "rb", compression="infer") as f:
            assert f.read() == b"hello " * 100
        with fsspec.open(path, "rb", compression="llmz") as f:
            assert f.read() == b"hello " * 100
        import sys
        assert "llm_codecs.integrations.fsspec" in sys.modules  # imported when a file opened
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(llm_codecs.CodecError, match="level"), fsspec.open(
            f"llmz::file://{target}/a.txt", "wb", llmz={"codec": "lz77", "level": 99}) as f:
        f.write(b"x")
    fs = LLMZFileSystem(target_protocol="file", codec="lz77")
    with pytest.raises(RuntimeError), fs.open(f"{target}/b.txt", "wb") as f:
        f.write(b"hello")
        raise RuntimeError("the with body fails")
    # The header cannot be written (a model that cannot load, say): no temporary either.
    from llm_codecs import frame as frame_module

    def no_header(*args, **kwargs):
        raise llm_codecs.ModelMismatchError("cannot load")

    monkeypatch.setattr(frame_module.FrameHeader, "to_bytes", no_header)
    with pytest.raises(llm_codecs.ModelMismatchError):
        fs.open(f"{target}/c.txt", "wb")
    assert sorted(p.name for p in target.iterdir()) == []


def test_llmz_files_behave_like_files(memroot):
    fs = LLMZFileSystem(target_protocol="memory", codec="lz77", block_size=BLOCK)
    path = f"{memroot}/log.txt"
    with fs.open(path, "wb") as f:
        assert f.tell() == 0
        f.write(LOG[:100_000])
        assert f.tell() == 100_000  # while writing: original bytes so far
    with pytest.raises(FileExistsError):
        fs.open(path, "xb")
    with fs.open(f"{memroot}/new.txt", "xb") as f:  # exclusive creation of a new file works
        f.write(b"fresh")
    assert fs.cat_file(f"{memroot}/new.txt") == b"fresh"
    with fs.open(path, "rb") as f:
        # readline across a block boundary: the line that straddles it comes back whole.
        start, end = LOG.rfind(b"\n", 0, BLOCK) + 1, LOG.index(b"\n", BLOCK) + 1
        assert start < BLOCK < end - 1  # this line straddles the first block boundary
        f.seek(start)
        assert f.readline() == LOG[start:end]
        assert f.tell() == end
        f.seek(2 * BLOCK - 5)
        buf = bytearray(20)
        assert f.readinto(buf) == 20 and bytes(buf) == LOG[2 * BLOCK - 5 : 2 * BLOCK + 15]
        f.seek(99_990)
        assert f.readinto(buf) == 10 and bytes(buf[:10]) == LOG[99_990:100_000]
