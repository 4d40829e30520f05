"""Discovery by entry points alone: each check runs in a fresh interpreter that never imports
llm_codecs itself, and asserts that it was not imported before the plugin was asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

PRELUDE = textwrap.dedent(
    """
    import sys

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] == "llm_codecs")
    """
)


def run_fresh(body: str, *args: str) -> str:
    script = PRELUDE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_numcodecs_get_codec():
    out = run_fresh(
        """
        import numcodecs
        assert not loaded()
        for cid, config in [("llm_codecs.huffman", {}), ("llm_codecs.lz77", {"level": 2}),
                            ("llm_codecs.lzma", {"level": 3}), ("llm_codecs.cm", {})]:
            codec = numcodecs.get_codec({"id": cid, **config})
            data = b"found by entry point " * 50
            assert bytes(codec.decode(codec.encode(data))) == data
        print(type(numcodecs.get_codec({"id": "llm_codecs.lz77"})).__module__)
        """
    )
    assert out.strip() == "llm_codecs.integrations.numcodecs"


def test_zarr_codec_by_name(tmp_path):
    # An array written here; the fresh interpreter only sees its zarr.json and chunks.
    from llm_codecs.integrations.zarr3 import LZ77

    data = np.arange(1000, dtype="<i2")
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=data.shape, chunks=(300,),
                          dtype=data.dtype, compressors=[LZ77(level=7)])
    z[:] = data
    meta = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    assert meta["codecs"][-1]["name"] == "llm_codecs.lz77"
    out = run_fresh(
        """
        import numpy as np, zarr
        path, new = sys.argv[1], sys.argv[2]
        assert not loaded()
        a = zarr.open_array(path, mode="r")
        assert (a[:] == np.arange(1000, dtype="<i2")).all()
        # a codec named in plain JSON, as a user would write it
        b = zarr.create_array(new, shape=(50,), dtype="u1",
                              compressors=[{"name": "llm_codecs.huffman", "configuration": {}}])
        b[:] = np.arange(50)
        assert (zarr.open_array(new, mode="r")[:] == np.arange(50)).all()
        assert "torch" not in sys.modules
        print(type(a.compressors[0]).__module__)
        """,
        str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"),
    )
    assert out.strip() == "llm_codecs.integrations.zarr3"
    meta = json.loads((tmp_path / "b.zarr" / "zarr.json").read_text())
    assert meta["codecs"][-1] == {"name": "llm_codecs.huffman",
                                  "configuration": {"block_size": 262144}}


def test_fsspec_llmz_url():
    out = run_fresh(
        """
        import fsspec
        assert not loaded()
        with fsspec.open("llmz::memory://ep/x.log", "wb", llmz={"codec": "huffman"}) as f:
            f.write(b"entry points " * 1000)
        assert fsspec.filesystem("memory").ls("/ep", detail=False) == ["/ep/x.log.llmz"]
        with fsspec.open("llmz::memory://ep/x.log", "rb") as f:
            f.seek(13 * 500)
            assert f.read(13) == b"entry points "
        # the module that registered "llmz" also registered the compression
        assert "llmz" in fsspec.available_compressions()
        print(fsspec.get_filesystem_class("llmz").__module__)
        """
    )
    assert out.strip() == "llm_codecs.integrations.fsspec"


def test_integration_modules_import_nothing_heavy():
    out = run_fresh(
        """
        import llm_codecs.integrations.zarr3, llm_codecs.integrations.fsspec
        import llm_codecs.integrations.numcodecs as nc
        nc.LLM  # defined without loading anything
        print(sorted(m for m in ("torch", "transformers", "dask", "distributed")
                     if m in sys.modules))
        """
    )
    assert out.strip() == "[]"
