"""Write a log through the ``llmz::`` filesystem, list it, and read its tail by range.

Any fsspec URL works as the target (``file://``, ``memory://``, ``s3://bucket/...``): the file
is stored as ``NAME.llmz``, listed as ``NAME`` with its original size, and a read near the end
decodes only the blocks it touches.

    python examples/fsspec_log.py [--codec lz77|huffman|llm] [--target URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import fsspec

#: Storage options per codec ("llm" takes the model name).
OPTIONS = {
    "lz77": {"codec": "lz77", "level": 9},
    "huffman": {"codec": "huffman"},
    "llm": {"codec": "llm", "model": "default"},
}


def log_lines(n: int):
    for i in range(n):
        yield (f"2026-11-{1 + i // 20000:02d}T{i % 24:02d}:{i % 60:02d}:00Z INFO "
               f"request id={i:07d} path=/api/items/{i * 7 % 997} status=200 ms={i % 89}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", choices=sorted(OPTIONS), default="lz77")
    parser.add_argument("--target", help="directory URL to write into (default: a temp dir)")
    parser.add_argument("--lines", type=int, default=50_000)
    args = parser.parse_args(argv)

    target = args.target or f"file://{tempfile.mkdtemp()}"
    url = f"llmz::{target.rstrip('/')}/app.log"
    options = {**OPTIONS[args.codec], "block_size": 64 << 10}

    with fsspec.open(url, "wt", llmz=options) as f:  # streamed: a few blocks in memory at most
        for line in log_lines(args.lines):
            f.write(line)

    fs, path = fsspec.core.url_to_fs(url)
    info = fs.info(path)
    print(f"{path}: {info['size']} bytes, stored as {info['llmz_path']} "
          f"({info['llmz_stored_size']} bytes, {info['size'] / info['llmz_stored_size']:.1f}x)")
    print("listing:", fs.ls(fs._parent(path), detail=False))

    start = time.perf_counter()
    with fs.open(path, "rb") as f:
        f.seek(-200, 2)
        tail = f.read().decode()
        decoded = len(f._blocks)
    print(f"last line (read in {1000 * (time.perf_counter() - start):.1f} ms, "
          f"{decoded} of {len(f.reader.blocks)} blocks decoded): {tail.splitlines()[-1]}")


if __name__ == "__main__":
    main()
