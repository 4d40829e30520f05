"""Dask: ``to_zarr``/``from_zarr`` with llm_codecs codecs on a multi-process LocalCluster.

Runs in CI (marked ``slow``): one two-worker cluster serves every codec, the LLM codec with a
tiny local model (``fallback=False`` so the model really codes every chunk).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from llm_codecs.integrations.zarr3 import CODECS as ZARR_CODECS  # noqa: E402

pytestmark = pytest.mark.slow

#: (zarr codec name, configuration): every codec the Dask round trip runs with.
CODECS = [
    ("llm_codecs.lz77", {"level": 5, "block_size": 8192}),
    ("llm_codecs.huffman", {}),
]


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                 dashboard_address=None, worker_dashboard_address=None) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _data(shape=(240, 320)) -> np.ndarray:
    rng = np.random.default_rng(42)
    walk = np.cumsum(rng.integers(-3, 4, size=shape), axis=1)  # compressible, not trivial
    return walk.astype("<i4")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(params=[*CODECS, ("llm_codecs.llm", None)], ids=lambda c: c[0])
def codec_config(request, tiny_models):
    name, config = request.param
    if config is None:
        config = {"model": tiny_models["gpt2"], "fallback": False, "block_size": 4096}
    return name, config


def test_to_zarr_from_zarr_on_a_cluster(client, tmp_path, codec_config):
    name, config = codec_config
    codec = ZARR_CODECS[name].from_dict({"name": name, "configuration": config})
    # The model codes a few hundred bytes per second per token here: keep its chunks small.
    small = name == "llm_codecs.llm"
    data = _data((24, 32) if small else (240, 320))
    darr = da.from_array(data, chunks=(6, 8) if small else (60, 80))

    distributed_path, single_path = tmp_path / "cluster.zarr", tmp_path / "single.zarr"
    da.to_zarr(darr, str(distributed_path), compressors=[codec], zarr_format=3)
    with dask.config.set(scheduler="sync"):
        da.to_zarr(darr, str(single_path), compressors=[codec], zarr_format=3)

    written = _files(distributed_path)
    assert len(written) == 1 + 4 * 4  # zarr.json and 16 chunks
    assert written == _files(single_path)  # byte-identical to a single-process run

    back = da.from_zarr(str(distributed_path))
    assert back.chunks == darr.chunks
    assert back.compute().tobytes() == data.tobytes()  # decoded by the workers
    loaded = client.run(lambda: __import__("sys").modules.get("llm_codecs.integrations.zarr3")
                        is not None)
    assert all(loaded.values())

    # The graph carries the codec's configuration only, never a built codec or model.
    codec._inner.encode(b"warm the cached state")
    assert len(pickle.dumps(codec)) < 400
    graph = back.__dask_graph__()
    assert len(pickle.dumps(dict(graph))) < 20_000
    assert len(pickle.dumps(zarr.open_array(str(distributed_path), mode="r"))) < 5_000
    if name == "llm_codecs.llm":
        # Every worker loaded the model exactly once, however many chunks it coded.
        counts = client.run(lambda: len(__import__("llm_codecs.models.loading",
                                                   fromlist=["_cache"])._cache))
        assert set(counts.values()) == {1}
