"""The classic fallbacks on validation data: LZ77, LZMA and context mixing, per 64 KiB sample.

How the ``llm`` codec's fallbacks (issue 13) were chosen and tuned, never on ``bench/``: the
first 64 KiB of every ``valid/`` file, and a set of this machine's line-structured and
multilingual files (``/var/log/dpkg.log`` from byte 100,000, ``/var/log/alternatives.log``, two
XML files of ``/usr/share``, ``twitter.json``, ``world-cities.csv`` and ``pg1342.txt`` of
``valid/`` from byte 100,000, the Russian and Japanese manual pages). Prints bits per byte of
each codec on each sample, every round trip checked, and the totals.

Usage::

    python benchmarks/fallbacks.py
"""

from __future__ import annotations

import gzip
from pathlib import Path

from llm_codecs.codecs import make_codec

VALID = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "valid"
BLOCK = 64 << 10


def _man(lang: str) -> bytes:
    data = b""
    for path in sorted(Path(f"/usr/share/man/{lang}").glob("man*/*")):
        data += gzip.decompress(path.read_bytes())
        if len(data) >= BLOCK:
            break
    return data


def samples() -> dict[str, bytes]:
    """Sample name -> its bytes (at most 64 KiB); files missing on this machine are skipped."""
    out = {f"valid/{p.relative_to(VALID)}": p.read_bytes()[:BLOCK]
           for p in sorted(VALID.rglob("*")) if p.is_file()}
    local = {
        "/var/log/dpkg.log": (Path("/var/log/dpkg.log"), 100_000),
        "/var/log/alternatives.log": (Path("/var/log/alternatives.log"), 0),
        "xkb/rules/base.xml": (Path("/usr/share/X11/xkb/rules/base.xml"), 0),
        "iso-codes/iso_639-3.xml": (Path("/usr/share/xml/iso-codes/iso_639-3.xml"), 0),
        "valid/json/twitter.json (set)": (VALID / "json" / "twitter.json", 0),
        "valid/csv/world-cities.csv (set)": (VALID / "csv" / "world-cities.csv", 0),
        "valid/gutenberg/pg1342.txt (set, from 100,000)": (VALID / "gutenberg" / "pg1342.txt",
                                                          100_000),
    }
    for name, (path, start) in local.items():
        if path.is_file():
            out[name] = path.read_bytes()[start : start + BLOCK]
    for lang in ("ru", "ja"):
        if Path(f"/usr/share/man/{lang}").is_dir():
            out[f"man pages, {lang}"] = _man(lang)[:BLOCK]
    return out


def main() -> None:
    codecs = {"lz77": [make_codec("lz77", level=9), make_codec("lz77")],
              "lzma": [make_codec("lzma")], "cm": [make_codec("cm")]}
    print("| sample | bytes | lz77 (best of 9, 5) | lzma | cm | cm / lzma |")
    print("|---|---|---|---|---|---|")
    totals = dict.fromkeys(codecs, 0)
    for name, data in samples().items():
        sizes = {}
        for label, variants in codecs.items():
            payloads = [c.encode_block(data) for c in variants]
            best = min(payloads, key=len)
            codec = variants[payloads.index(best)]
            assert codec.decode_block(best, len(data)) == data, (name, label)
            sizes[label] = len(best)
            if "(set" in name or not name.startswith("valid/"):
                totals[label] += len(best)
        bpb = {k: f"{8 * v / len(data):.3f}" for k, v in sizes.items()}
        print(f"| {name} | {len(data):,} | {bpb['lz77']} | {bpb['lzma']} | {bpb['cm']} | "
              f"{sizes['cm'] / sizes['lzma']:.3f} |")
    print(f"\nThe tuning set (marked 'set' and the machine's files): cm / lzma "
          f"{totals['cm'] / totals['lzma']:.4f}, lzma / lz77 {totals['lzma'] / totals['lz77']:.4f}")


if __name__ == "__main__":
    main()
