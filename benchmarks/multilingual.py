"""Text in other scripts: a validation set built from this machine's files, and its table.

The embedded model has seen little text outside English, code, JSON and CSV; issue 13 asks that
text in other scripts still code at least as small as the best classic codec. The set is built
from files every machine of this kind has (never from ``bench/``): Debian's translated manual
pages (``/usr/share/man/LANG``, roff source, decompressed, in name order) for Russian,
Japanese, Korean, German, French, Polish and Turkish, and CPython's UTF-8 test texts of Chinese,
Japanese and Korean encodings (``Lib/test/cjkencodings/*-utf8.txt``). Each sample is the first
``--bytes`` bytes of its files joined.

Usage::

    python benchmarks/multilingual.py                  # build the set, then benchmarks/llm.py
    python benchmarks/multilingual.py --out DIR --only-build

The table is ``benchmarks/llm.py``'s, on the first block of each sample.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sysconfig
import tempfile
from pathlib import Path

import llm

MAN = Path("/usr/share/man")
LANGUAGES = ["ru", "ja", "ko", "de", "fr", "pl", "tr"]


def sources() -> dict[str, list[Path]]:
    """Sample name -> the files it is made of, in a fixed order."""
    out = {f"man-{lang}": sorted((MAN / lang).glob("man*/*")) for lang in LANGUAGES}
    cjk = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    out["cjkencodings-utf8"] = sorted(cjk.glob("*-utf8.txt"))
    return {name: files for name, files in out.items() if files}


def build(where: Path, limit: int) -> list[Path]:
    """Write each sample (at most ``limit`` bytes) under ``where``; return their paths."""
    where.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, files in sources().items():
        data = bytearray()
        for path in files:
            raw = path.read_bytes()
            data += gzip.decompress(raw) if path.suffix == ".gz" else raw
            if len(data) >= limit:
                break
        sample = where / f"{name}.txt"
        sample.write_bytes(bytes(data[:limit]))
        paths.append(sample)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where to write the samples")
    parser.add_argument("--bytes", type=int, default=64 << 10)
    parser.add_argument("--only-build", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(args.out or Path(tmp), args.bytes)
        for path in paths:
            print(f"{path.name}: {path.stat().st_size:,} bytes")
        if not args.only_build:
            print()
            os.chdir(paths[0].parent)  # the table names the samples, not a temporary path
            llm.main([*(p.name for p in paths), "--max-blocks", "1"])


if __name__ == "__main__":
    main()
