"""Zarr integration: native format 3 codecs and format 2 through numcodecs."""

from __future__ import annotations

import json
import pickle

import numcodecs
import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

import llm_codecs  # noqa: E402
from llm_codecs import CodecError  # noqa: E402
from llm_codecs.integrations import zarr3  # noqa: E402
from llm_codecs.integrations.zarr3 import CM, LLM, LZ77, LZMA, Huffman  # noqa: E402

CODECS = [Huffman(), LZ77(), LZ77(level=9, block_size=4096), Huffman(block_size=1000),
          LZMA(level=6), CM()]

pytestmark = pytest.mark.filterwarnings(
    "ignore::zarr.core.dtype.common.UnstableSpecificationWarning"
)


def _store():
    return zarr.storage.MemoryStore()


@pytest.mark.parametrize("codec", CODECS, ids=repr)
@pytest.mark.parametrize(
    ("data", "chunks"),
    [
        (np.arange(20_000, dtype="<i8").reshape(100, 200), (30, 70)),
        (np.linspace(0, 1, 5000, dtype="<f4"), (1000,)),
        (np.array(["alpha", "", "gamma-delta", "é€"] * 50, dtype="<U11"), (64,)),
        (np.array([b"abc", b"", b"defgh"] * 40, dtype="S5"), (50,)),
    ],
    ids=["int64-2d", "float32", "fixed-unicode", "fixed-bytes"],
)
def test_v3_round_trip(codec, data, chunks):
    store = _store()
    z = zarr.create_array(store, shape=data.shape, chunks=chunks, dtype=data.dtype,
                          compressors=[codec])
    z[...] = data
    back = zarr.open_array(store, mode="r")
    assert back.compressors == (codec,)
    np.testing.assert_array_equal(back[...], data)


@pytest.mark.parametrize("codec", CODECS[:2], ids=repr)
def test_v3_variable_length_strings(codec):
    values = np.array(["", "a", "variable length ✓", "x" * 1000, "tail"] * 20, dtype=object)
    store = _store()
    z = zarr.create_array(store, shape=values.shape, chunks=(17,), dtype=str, compressors=[codec])
    z[:] = values
    back = zarr.open_array(store, mode="r")
    assert [c["name"] for c in back.metadata.to_dict()["codecs"]] == ["vlen-utf8",
                                                                      codec.codec_name]
    assert list(back[:]) == list(values)


def test_v3_sharding():
    data = np.arange(64 * 64, dtype="<u2").reshape(64, 64)
    store = _store()
    z = zarr.create_array(store, shape=data.shape, chunks=(8, 8), shards=(32, 32),
                          dtype=data.dtype, compressors=[LZ77(level=4)])
    z[...] = data
    back = zarr.open_array(store, mode="r")
    sharding = back.metadata.to_dict()["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    inner = [c["name"] for c in sharding["configuration"]["codecs"]]
    assert inner == ["bytes", "llm_codecs.lz77"]
    np.testing.assert_array_equal(back[...], data)
    np.testing.assert_array_equal(back[5:40, 30:33], data[5:40, 30:33])


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_same_bytes_as_numcodecs(codec):
    data = np.frombuffer(b"the same frame either way. " * 500, dtype="u1")
    store = _store()
    z = zarr.create_array(store, shape=data.shape, chunks=data.shape, dtype="u1",
                          compressors=[codec])
    z[:] = data
    stored = zarr.core.sync.sync(store.get("c/0", zarr.core.buffer.default_buffer_prototype()))
    twin = numcodecs.get_codec({"id": codec.codec_name, **codec.to_dict()["configuration"]})
    assert stored.to_bytes() == twin.encode(data)
    assert llm_codecs.decompress(stored.to_bytes()) == data.tobytes()


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_config_json_registry_and_pickle(codec):
    as_json = json.loads(json.dumps(codec.to_dict()))
    assert as_json["name"] == codec.codec_name
    assert set(as_json["configuration"]) >= {"block_size"}
    cls = zarr.registry.get_codec_class(as_json["name"])
    assert cls is type(codec)
    assert cls.from_dict(as_json) == codec
    assert hash(cls.from_dict(as_json)) == hash(codec)
    codec._inner.encode(b"warm up the cached block codec")
    state = pickle.dumps(codec)
    assert len(state) < 400
    clone = pickle.loads(state)
    assert clone == codec


def test_fields_are_typed_and_filled_with_the_codecs_defaults():
    from dataclasses import fields

    from llm_codecs.codecs.llm import LanguageModelCodec

    assert LZ77(level=3).level == 3 and LZ77().level == llm_codecs.LZ77().level == 5
    assert LZ77().block_size == 1 << 20 and Huffman().block_size == 256 << 10
    assert LZ77().params == {"level": 5}
    assert zarr3.CODECS["llm_codecs.huffman"] is Huffman
    # The llm codec's fields are exactly the block codec's parameters, with its defaults.
    import inspect

    signature = inspect.signature(LanguageModelCodec.__init__).parameters
    assert {f.name for f in fields(LLM)} == (set(signature) - {"self"}) | {"block_size"}
    made = LLM()
    for name, parameter in signature.items():
        if name != "self":
            assert getattr(made, name) == parameter.default, name
    assert LLM() == LLM(model="default", lanes=made.lanes) and hash(LLM()) == hash(made)


def test_bad_parameters_raise_codec_error():
    with pytest.raises(CodecError, match="level"):
        LZ77(level=99)
    with pytest.raises(CodecError):
        Huffman(bogus=1)
    with pytest.raises(CodecError):
        Huffman(block_size=0)


def _write_then_break(tmp_path, codec_json):
    path = tmp_path / "a.zarr"
    z = zarr.create_array(str(path), shape=(10,), dtype="i4", compressors=[LZ77()])
    z[:] = np.arange(10)
    meta = json.loads((path / "zarr.json").read_text())
    meta["codecs"][1] = codec_json
    (path / "zarr.json").write_text(json.dumps(meta))
    return str(path)


@pytest.mark.parametrize(
    "codec_json",
    [
        {"name": "llm_codecs.lz77", "configuration": {"level": 99}},
        {"name": "llm_codecs.huffman", "configuration": {"bogus": True}},
        {"name": "llm_codecs.huffman", "configuration": {"block_size": -5}},
    ],
    ids=["bad-level", "unknown-param", "bad-block-size"],
)
def test_unbuildable_codec_gives_a_clear_error(tmp_path, codec_json):
    path = _write_then_break(tmp_path, codec_json)
    with pytest.raises(CodecError, match=r"cannot build Zarr codec .*llm_codecs") as info:
        zarr.open_array(path, mode="r")
    assert codec_json["name"] in str(info.value)


def test_llm_codec_is_generic_and_lazy():
    codec = LLM(model="default", block_size=4096)
    configuration = codec.to_dict()["configuration"]
    assert configuration["model"] == "default" and configuration["block_size"] == 4096
    assert configuration["lanes"] == 96 and configuration["numerics"] == "auto"  # every field
    assert pickle.loads(pickle.dumps(codec)) == codec
    assert codec._inner._get_block_codec()._loaded is None  # no model until the first chunk


@pytest.mark.parametrize("codec", [llm_codecs.LZ77(level=3), llm_codecs.Huffman()], ids=repr)
def test_format_2_uses_numcodecs_ids(tmp_path, codec):
    data = np.arange(3000, dtype="<f8").reshape(30, 100)
    path = str(tmp_path / "v2.zarr")
    z = zarr.create_array(path, shape=data.shape, chunks=(10, 50), dtype=data.dtype,
                          zarr_format=2, compressors=codec)
    z[...] = data
    meta = json.loads((tmp_path / "v2.zarr" / ".zarray").read_text())
    assert meta["compressor"] == codec.get_config()
    back = zarr.open_array(path, mode="r")
    assert back.metadata.zarr_format == 2
    np.testing.assert_array_equal(back[...], data)


def test_format_2_strings(tmp_path):
    values = np.array(["a", "bb", "", "ccc ✓"] * 10, dtype=object)
    path = str(tmp_path / "v2s.zarr")
    z = zarr.create_array(path, shape=values.shape, chunks=(7,), dtype=str, zarr_format=2,
                          compressors=llm_codecs.LZ77())
    z[:] = values
    assert list(zarr.open_array(path, mode="r")[:]) == list(values)


def test_xarray_to_zarr(tmp_path):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset(
        {
            "temperature": (("t", "x"), np.linspace(-5, 30, 2000).reshape(40, 50)),
            "station": ("x", np.array([f"station-{i}" for i in range(50)], dtype=object)),
        },
        coords={"t": np.arange(40), "x": np.arange(50)},
    )
    encoding = {
        "temperature": {"compressors": [LZ77(level=9)], "chunks": (10, 50)},
        "station": {"compressors": [Huffman()]},
    }
    path = str(tmp_path / "ds.zarr")
    ds.to_zarr(path, encoding=encoding, zarr_format=3, consolidated=False)
    meta = json.loads((tmp_path / "ds.zarr" / "temperature" / "zarr.json").read_text())
    assert meta["codecs"][-1]["name"] == "llm_codecs.lz77"
    back = xr.open_zarr(path, consolidated=False).load()
    np.testing.assert_array_equal(back["temperature"].values, ds["temperature"].values)
    assert list(back["station"].values) == list(ds["station"].values)
