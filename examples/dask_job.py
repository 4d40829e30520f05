"""A Dask job that writes and reads a Zarr array compressed with an llm_codecs codec.

Runs on a local two-process cluster by default; point it at a real scheduler with
``--scheduler tcp://host:8786`` or ``LLM_CODECS_DASK_SCHEDULER`` (workers need llm_codecs
installed and the output path reachable). The codec travels to the workers as its
configuration only; each worker builds its own.

    python examples/dask_job.py [--codec lz77|huffman|llm] [--scheduler ADDRESS] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from llm_codecs.integrations.zarr3 import CODECS

CONFIGS = {"lz77": {"level": 6}, "huffman": {}, "llm": {"model": "default"}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", choices=sorted(CONFIGS), default="lz77")
    parser.add_argument("--scheduler", default=os.environ.get("LLM_CODECS_DASK_SCHEDULER"),
                        help="scheduler address (default: start a LocalCluster)")
    parser.add_argument("--out", help="output directory (default: a temp dir)")
    args = parser.parse_args(argv)

    name = f"llm_codecs.{args.codec}"
    codec = CODECS[name].from_dict({"name": name, "configuration": CONFIGS[args.codec]})
    out = os.path.join(args.out or tempfile.mkdtemp(), "field.zarr")

    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        print(f"scheduler: {client.scheduler.address}, codec: {codec.to_dict()} "
              f"({len(pickle.dumps(codec))} bytes pickled)")
        start = time.perf_counter()
        steps = np.random.default_rng(7).integers(0, 16, size=(400, 500), dtype="u1")
        data = np.cumsum(steps, axis=1, dtype="<u4")  # a smooth-ish field, compressible
        field = da.from_array(data, chunks=(100, 125))
        da.to_zarr(field, out, compressors=[codec], zarr_format=3, overwrite=True)  # workers
        back = da.from_zarr(out)  # the graph holds the codec's configuration only
        assert (back.compute() == data).all()  # decoded on the workers
        total = int(back.sum().compute())
        raw = back.nbytes
        stored = sum(os.path.getsize(os.path.join(d, f))
                     for d, _, files in os.walk(out) for f in files if f != "zarr.json")
        print(f"{back.shape} {back.dtype} in {back.npartitions} chunks: {raw} -> {stored} bytes "
              f"({raw / stored:.2f}x), sum {total}, {time.perf_counter() - start:.1f} s")
        check = np.asarray(back[:2, :5])
        print("corner:", check.tolist())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
