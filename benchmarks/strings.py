"""String arrays with the ``llm`` codec: stored bytes against the same text in one frame.

For log lines, prose lines and JSON records, stored each way a Zarr user would (Zarr 3 ``S``,
``U`` and variable-length ``str``; Zarr 2 ``S``, ``U`` and ``VLenUTF8``; ``xarray`` to Zarr 3),
the table gives the bytes of the array's chunks against ``compress(joined text)`` (the lines
joined with newlines, one frame), the lengths' coded size (zlib -9 of the items' 32-bit
lengths: what a reader needs besides the text to cut it into items), and for context the same
chunks with the ``llm`` codec seeing their bytes as they lie in memory (``strings=None``, as
before frames of strings) and with ``lz77`` level 9. The issue's target: stored <= 1.05 x
(joined + lengths).

Usage::

    python benchmarks/strings.py                 # 1000 items per dataset, chunks of 500
    python benchmarks/strings.py --items 400 --chunk 200
"""

from __future__ import annotations

import argparse
import json
import platform
import struct
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import numcodecs
import numpy as np
import zarr

import llm_codecs
from llm_codecs.integrations import zarr3
from llm_codecs.models.loading import cpu_facts

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "bench"


def datasets(items: int) -> dict[str, list[str]]:
    """The three kinds of text, from named bench files."""
    def lines(rel: str) -> list[str]:
        text = (BENCH / rel).read_text(encoding="utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()]

    # JSON records: the fields of Hadoop's log lines as one object per line.
    records = []
    for i, line in enumerate(lines("loghub/Hadoop_2k.log")[:items]):
        date, clock, level, source, message = (line.split(" ", 4) + [""] * 5)[:5]
        records.append(json.dumps({"id": i, "date": date, "time": clock, "level": level,
                                   "source": source.strip("[]"), "message": message}))
    return {
        "log lines (loghub/Linux_2k.log)": lines("loghub/Linux_2k.log")[:items],
        "prose lines (canterbury/alice29.txt)": lines("canterbury/alice29.txt")[:items],
        "JSON records (loghub/Hadoop_2k.log fields)": records,
    }


def stored_bytes(store) -> int:
    """Bytes of the chunks in a zarr store (metadata left out)."""
    return sum(len(v.to_bytes()) for k, v in store._store_dict.items()
               if not k.endswith(("zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata")))


def dir_chunk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()
               and not p.name.endswith(("zarr.json", ".zarray", ".zattrs", ".zgroup")))


def store_array(lines: list[str], way: str, chunk: int, compressor) -> tuple[int, bool]:
    """Store ``lines`` as a string array ``way``: its chunk bytes, and whether it reads back."""
    width = max(len(line.encode()) for line in lines)
    values = {
        "S": lambda: np.array([line.encode() for line in lines], dtype=f"S{width}"),
        "U": lambda: np.array(lines, dtype=f"<U{max(map(len, lines))}"),
        "str": lambda: np.array(lines, dtype=object),
    }[way.split()[-1]]()
    store = zarr.storage.MemoryStore()
    fmt = 3 if way.startswith("zarr 3") else 2
    kwargs: dict = {"compressors": [compressor] if fmt == 3 else compressor}
    dtype = str if values.dtype == object else values.dtype
    if fmt == 2 and values.dtype == object:
        kwargs["filters"] = [numcodecs.VLenUTF8()]
    z = zarr.create_array(store, shape=values.shape, chunks=(chunk,), dtype=dtype,
                          zarr_format=fmt, **kwargs)
    z[:] = values
    ok = list(zarr.open_array(store, mode="r")[:]) == list(values)
    return stored_bytes(store), ok


def store_xarray(lines: list[str], chunk: int, compressor) -> tuple[int, bool]:
    import xarray as xr

    ds = xr.Dataset({"line": ("n", np.array(lines, dtype=object))})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ds.zarr"
        ds.to_zarr(str(path), encoding={"line": {"compressors": [compressor], "chunks": (chunk,)}},
                   zarr_format=3, consolidated=False)
        ok = list(xr.open_zarr(str(path), consolidated=False)["line"].values) == lines
        return dir_chunk_bytes(path / "line"), ok


WAYS = ["zarr 3 S", "zarr 3 U", "zarr 3 str", "zarr 2 S", "zarr 2 U", "zarr 2 str",
        "xarray str"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=zarr.core.dtype.common.UnstableSpecificationWarning)

    llm3, lz3 = zarr3.LLM(), zarr3.LZ77(level=9)
    llm2, lz2 = llm_codecs.LLMCodec(), llm_codecs.LZ77(level=9)
    print(f"# {platform.node()}: {cpu_facts()['cpu']}, python {platform.python_version()}, "
          f"{args.items} items per dataset, chunks of {args.chunk} items", file=sys.stderr)
    rows, worst = [], 0.0
    for name, lines in datasets(args.items).items():
        joined = ("\n".join(lines) + "\n").encode()
        joined_frame = len(llm_codecs.compress(joined))
        lengths = len(zlib.compress(struct.pack(f"<{len(lines)}I",
                                                *(len(line.encode()) for line in lines)), 9))
        bound = joined_frame + lengths
        for way in WAYS:
            start = time.perf_counter()
            if way.startswith("xarray"):
                size, ok = store_xarray(lines, args.chunk, llm3)
                lz = store_xarray(lines, args.chunk, lz3)[0]
            else:
                fmt3 = way.startswith("zarr 3")
                size, ok = store_array(lines, way, args.chunk, llm3 if fmt3 else llm2)
                lz = store_array(lines, way, args.chunk, lz3 if fmt3 else lz2)[0]
            seconds = time.perf_counter() - start
            before = bytes_as_they_lie(lines, way, args.chunk)
            ratio = size / bound
            worst = max(worst, ratio)
            rows.append([name, way, f"{size:,}", f"{joined_frame:,}", f"{lengths:,}",
                         f"{ratio:.3f}", f"{before:,}", f"{lz:,}", "yes" if ok else "NO",
                         f"{seconds:.1f}"])
            print(" | ".join(rows[-1]), file=sys.stderr)
    header = ["data", "stored as", "llm array bytes", "compress(joined)", "lengths (zlib)",
              "array / (joined + lengths)", "llm, chunk bytes as they lie", "lz77 -9 array",
              "reads back", "s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nworst array / (joined + lengths): {worst:.3f} (target <= 1.05)")
    return 0 if worst <= 1.05 else 1


def bytes_as_they_lie(lines: list[str], way: str, chunk: int) -> int:
    """The chunks coded by the ``llm`` codec without a text view (how they were stored before)."""
    kind = way.split()[-1]
    total = 0
    for start in range(0, len(lines), chunk):
        part = lines[start : start + chunk]
        width = max(len(line.encode()) for line in lines)
        if kind == "S":
            data = np.array([line.encode() for line in part], dtype=f"S{width}").tobytes()
        elif kind == "U":
            data = np.array(part, dtype=f"<U{max(map(len, lines))}").tobytes()
        else:
            data = numcodecs.VLenUTF8().encode(np.array(part, dtype=object))
        total += len(llm_codecs.compress(data, strings=None))
    return total


if __name__ == "__main__":
    sys.exit(main())
