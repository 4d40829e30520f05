"""Archive text documents in a Zarr 3 array compressed with an llm_codecs codec.

Each document is one element of a variable-length string array; chunks of documents are
compressed with ``llm_codecs.lz77`` (or ``--codec huffman`` / ``--codec llm``). The array
reopens with plain ``zarr.open_array``: the codec is found through its entry point.

    python examples/zarr_text_archive.py [--codec lz77|huffman|llm] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import zarr

from llm_codecs.integrations.zarr3 import CODECS

#: Codec configurations; "llm" takes the model name (the model loads on first use).
CONFIGS = {
    "lz77": {"level": 9},
    "huffman": {},
    "llm": {"model": "default"},
}


def documents(n: int = 400) -> list[str]:
    words = ["zarr", "chunk", "codec", "frame", "block", "model", "token", "archive", "science",
             "data", "text", "compress", "lossless", "stream", "store", "array"]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=rng.integers(5, 80))) + "." for _ in range(n)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", choices=sorted(CONFIGS), default="lz77")
    parser.add_argument("--out", help="where to write the archive (default: a temp dir)")
    args = parser.parse_args(argv)

    out = Path(args.out or tempfile.mkdtemp()) / "docs.zarr"
    name = f"llm_codecs.{args.codec}"
    codec = CODECS[name].from_dict({"name": name, "configuration": CONFIGS[args.codec]})

    docs = documents()
    archive = zarr.create_array(str(out), shape=(len(docs),), chunks=(100,), dtype=str,
                                compressors=[codec], overwrite=True)
    archive[:] = np.array(docs, dtype=object)

    reopened = zarr.open_array(str(out), mode="r")
    assert list(reopened[:]) == docs
    raw = sum(len(d.encode()) for d in docs)
    stored = sum(p.stat().st_size for p in out.rglob("c/*") if p.is_file())
    codecs = json.loads((out / "zarr.json").read_text())["codecs"]
    print(f"codecs in zarr.json: {[c['name'] for c in codecs]}")
    print(f"{len(docs)} documents, {raw} bytes of text -> {stored} bytes of chunks "
          f"({raw / stored:.2f}x) in {out}")
    print(f"document 123: {reopened[123:124][0][:60]}...")


if __name__ == "__main__":
    main()
