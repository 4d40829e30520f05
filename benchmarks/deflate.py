"""Context mixing version 5 (the deflate model) against version 4, on this machine's own files.

How version 5's deflate model (issue 13, `snappy/paper-100k.pdf`'s row) was checked, never on
``bench/``: files of this machine that hold deflate streams (two PDFs, a gzip-compressed JSON file,
a PNG, a jar and a wheel, the first 256 KiB of each, in 64 KiB blocks as the ``llm`` codec codes
them), and text and binaries without streams (its cost where the model stays silent). Prints bytes
of each version and of the best of xz -9e and brotli -11 on the same blocks, every round trip
checked, and each version's encoding time. Files that are missing are skipped.

Usage::

    python benchmarks/deflate.py
"""

from __future__ import annotations

import time
from pathlib import Path

from llm_codecs.baselines import available
from llm_codecs.codecs import make_codec

BLOCK = 64 << 10
VALID = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "valid"
FILES = {
    "libtasn1.pdf": "/usr/share/doc/libtasn1-doc/libtasn1.pdf",
    "shared-mime-info-spec.pdf": "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf",
    "ap-south-1.json.gz (gzip)": "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/"
                                 "moto/ssm/resources/ecs/optimized_amis/ap-south-1.json.gz",
    "image1.png": "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/"
                  "rustc/images/image1.png",
    "jopt-simple-5.0.4.jar (zip)": "/root/.m2/repository/net/sf/jopt-simple/jopt-simple/5.0.4/"
                                   "jopt-simple-5.0.4.jar",
    "wheel-0.40.0-py3-none-any.whl (zip)": "/root/.pyenv/versions/3.12.1/lib/python3.12/test/"
                                           "wheel-0.40.0-py3-none-any.whl",
    "valid/gutenberg/pg2814.txt (no stream)": str(VALID / "gutenberg" / "pg2814.txt"),
    "libc.so.6 (no stream)": "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "gdb (no stream)": "/usr/bin/gdb",
    "man-db index.db (no stream)": "/var/cache/man/index.db",
}


def main() -> None:
    v4, v5 = make_codec("cm-v4"), make_codec("cm")
    classic = {name: pair[0] for name, pair in available(["xz-9e", "brotli-11"]).items()}
    for codec in (v4, v5):  # compile before timing
        codec.encode_block(b"warm up " * 100)
    print("| file | bytes | cm v4 | cm v5 | v5 / v4 | best of xz -9e, brotli -11 | v5 / best |"
          " v4 s | v5 s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path in FILES.items():
        if not Path(path).is_file():
            continue
        data = Path(path).read_bytes()[: 4 * BLOCK]
        sizes = {"v4": 0, "v5": 0, "classic": 0}
        seconds = {"v4": 0.0, "v5": 0.0}
        for at in range(0, len(data), BLOCK):
            block = data[at : at + BLOCK]
            for label, codec in (("v4", v4), ("v5", v5)):
                start = time.perf_counter()
                payload = codec.encode_block(block)
                seconds[label] += time.perf_counter() - start
                if len(payload) <= len(block):
                    assert codec.decode_block(payload, len(block)) == block, name
                    assert v5.decode_method(codec.method_id, payload, len(block)) == block
                sizes[label] += min(len(payload), len(block))
            sizes["classic"] += min(min(len(fn(block)) for fn in classic.values()), len(block))
        print(f"| {name} | {len(data):,} | {sizes['v4']:,} | {sizes['v5']:,} | "
              f"{sizes['v5'] / sizes['v4']:.4f} | {sizes['classic']:,} | "
              f"{sizes['v5'] / sizes['classic']:.4f} | {seconds['v4']:.2f} | "
              f"{seconds['v5']:.2f} |")


if __name__ == "__main__":
    main()
