"""Dask: ``to_zarr``/``from_zarr`` with llm_codecs codecs on a multi-process LocalCluster.

Runs in CI (marked ``slow``, about 15 s): one two-worker cluster serves every codec. Add
``("llm_codecs.llm", {"model": "default"})`` to ``CODECS`` once the LLM codec ships.
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


def _data() -> np.ndarray:
    rng = np.random.default_rng(42)
    walk = np.cumsum(rng.integers(-3, 4, size=(240, 320)), axis=1)  # compressible, not trivial
    return walk.astype("<i4")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize(("name", "config"), CODECS, ids=[c[0] for c in CODECS])
def test_to_zarr_from_zarr_on_a_cluster(client, tmp_path, name, config):
    codec = ZARR_CODECS[name].from_dict({"name": name, "configuration": config})
    data = _data()
    darr = da.from_array(data, chunks=(60, 80))

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
