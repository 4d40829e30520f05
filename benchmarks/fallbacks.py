"""The classic fallbacks on validation data: LZ77, LZMA and context mixing, per 64 KiB sample.

How the ``llm`` codec's fallbacks (issue 13) were chosen and tuned, never on ``bench/``: the
first 64 KiB of every ``valid/`` file, and a set of this machine's line-structured and
multilingual files (``/var/log/dpkg.log`` from byte 100,000, ``/var/log/alternatives.log``, two
XML files of ``/usr/share``, ``twitter.json``, ``world-cities.csv`` and ``pg1342.txt`` of
``valid/`` from byte 100,000, the Russian and Japanese manual pages). Version 3 of context
mixing was decided on those and on more of this machine's files: ``/var/log/apt/term.log``,
``freedesktop.org.xml``, the man-db index (a binary database), the Korean, German and Polish
manual pages, CPython's CJK test texts, and a synthetic fax page (a 1-bit image of 1728 pixels
a row, glyphs from a random font: :func:`fax_page`). Version 4's JPEG model was checked on
this machine's JPEG files (two baseline, two progressive). Prints bits per byte of each codec
on each sample, every round trip checked, and the totals.

Usage::

    python benchmarks/fallbacks.py
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np

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


def fax_page() -> bytes:
    """64 KiB of a synthetic fax page: rows of 1728 pixels (216 bytes), lines of text whose
    glyphs come from a font of 40 random stroke shapes (so rows and glyphs repeat, as on a
    scanned page), packed 8 pixels a byte."""
    rng = np.random.default_rng(7)
    width, height = 1728, (BLOCK * 8) // 1728
    font = []
    for _ in range(40):
        glyph_width = int(rng.integers(7, 13))
        glyph = np.zeros((13, glyph_width), np.uint8)
        for _ in range(3):
            if rng.random() < 0.5:  # a vertical stroke
                c = int(rng.integers(1, glyph_width - 1))
                glyph[int(rng.integers(0, 4)):int(rng.integers(9, 13)), c:c + 2] = 1
            else:  # a horizontal one
                r = int(rng.integers(2, 11))
                glyph[r:r + 2, int(rng.integers(0, 3)):int(rng.integers(glyph_width - 3,
                                                                        glyph_width))] = 1
        font.append(glyph)
    image = np.zeros((height, width), np.uint8)
    y = 10
    while y < height - 20:
        x = 100
        while x < width - 150:
            for _ in range(int(rng.integers(2, 9))):
                glyph = font[int(rng.integers(0, 40))]
                image[y:y + 13, x:x + glyph.shape[1]] |= glyph
                x += glyph.shape[1] + 2
            x += 12
        y += 22
    image[5, 50:1650] = 1
    image[height - 5, 50:1650] = 1
    return np.packbits(image, axis=1).tobytes()[:BLOCK]


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


def more_samples() -> dict[str, bytes]:
    """The samples added for version 3 of context mixing (those missing here are skipped)."""
    out = {}
    for name, path, start in (("apt/term.log", "/var/log/apt/term.log", 50_000),
                              ("freedesktop.org.xml",
                               "/usr/share/mime/packages/freedesktop.org.xml", 500_000),
                              ("man-db index.db", "/var/cache/man/index.db", 200_000)):
        if Path(path).is_file():
            out[name] = Path(path).read_bytes()[start : start + BLOCK]
    for lang in ("ko", "de", "pl"):
        if Path(f"/usr/share/man/{lang}").is_dir():
            out[f"man pages, {lang}"] = _man(lang)[:BLOCK]
    import test.cjkencodings  # CPython's own test data, where the standard library has it

    cjk = b"".join(p.read_bytes() for p in
                   sorted(Path(test.cjkencodings.__path__[0]).glob("*-utf8.txt")))
    if cjk:
        out["CPython cjkencodings *-utf8.txt"] = cjk[:BLOCK]
    out["fax page (synthetic)"] = fax_page()
    # JPEGs of this machine (the JPEG model of version 4 was checked on them): two baseline,
    # two progressive (which it leaves alone), the first 64 KiB of each.
    for path in ("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/"
                 "embedded-book/assets/verify.jpeg",
                 "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/"
                 "embedded-book/assets/f3.jpg",
                 "/usr/lib/google-cloud-sdk/platform/gsutil/third_party/pyparsing/docs/_static/"
                 "pyparsingClassDiagram_1.5.2.jpg",
                 "/usr/lib/google-cloud-sdk/platform/gsutil/third_party/pyparsing/docs/_static/"
                 "pyparsingClassDiagram_3.0.9.jpg"):
        if Path(path).is_file():
            out[Path(path).name] = Path(path).read_bytes()[:BLOCK]
    return out


def main() -> None:
    codecs = {"lz77": [make_codec("lz77", level=9), make_codec("lz77")],
              "lzma": [make_codec("lzma")], "cm-v2": [make_codec("cm-v2")],
              "cm-v3": [make_codec("cm-v3")], "cm": [make_codec("cm")]}
    print("| sample | bytes | lz77 (best of 9, 5) | lzma | cm v2 | cm v3 | cm (v4) | cm / lzma "
          "| cm / cm v2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals = dict.fromkeys(codecs, 0)
    more = dict.fromkeys(codecs, 0)
    seconds = dict.fromkeys(codecs, 0.0)
    coded = 0
    for variants in codecs.values():  # compile the numba kernels before timing anything
        for c in variants:
            c.encode_block(b"warm up " * 100)
    for name, data in {**samples(), **more_samples()}.items():
        sizes = {}
        coded += len(data)
        for label, variants in codecs.items():
            start = time.perf_counter()
            payloads = [c.encode_block(data) for c in variants]
            seconds[label] += time.perf_counter() - start
            best = min(payloads, key=len)
            codec = variants[payloads.index(best)]
            # A payload longer than the block means "store it" (the frame would).
            assert len(best) > len(data) or codec.decode_block(best, len(data)) == data, name
            best = best[: len(data) + 1]
            sizes[label] = len(best)
            if "(set" in name or not name.startswith("valid/"):
                totals[label] += len(best)
            if not name.startswith("valid/") or "(set" not in name:
                more[label] += len(best)
        bpb = {k: f"{8 * v / len(data):.3f}" for k, v in sizes.items()}
        print(f"| {name} | {len(data):,} | {bpb['lz77']} | {bpb['lzma']} | {bpb['cm-v2']} | "
              f"{bpb['cm-v3']} | {bpb['cm']} | {sizes['cm'] / sizes['lzma']:.3f} | "
              f"{sizes['cm'] / sizes['cm-v2']:.3f} |")
    print(f"\nThe first tuning set (marked 'set' and the machine's files): cm / lzma "
          f"{totals['cm'] / totals['lzma']:.4f}, "
          f"cm v2 / lzma {totals['cm-v2'] / totals['lzma']:.4f}, "
          f"lzma / lz77 {totals['lzma'] / totals['lz77']:.4f}")
    print(f"Every sample but the duplicates marked 'set': cm / cm v2 "
          f"{more['cm'] / more['cm-v2']:.4f}, cm / lzma {more['cm'] / more['lzma']:.4f}")
    print("Encoding time per 64 KiB, one thread: " + ", ".join(
        f"{label} {1000 * t * BLOCK / coded:.0f} ms" for label, t in seconds.items()))


if __name__ == "__main__":
    main()
