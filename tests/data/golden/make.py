"""How the golden frames were made (once, at the commit named in README.md). Never rerun it.

It never overwrites a frame (it makes only the missing ones): a golden frame that stops
decoding is a broken promise to every archive made with that version, not a file to refresh.
"""

from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
FRAMES = {
    # name: [(codec, params), ...]
    "prose.txt": [("llm", {}), ("llm", {"block_size": 8192}), ("huffman", {}), ("lz77", {})],
    "records.json": [("llm", {}), ("huffman", {}), ("lz77", {})],
    "dpkg.log": [("llm", {}), ("huffman", {}), ("lz77", {})],
    "program.bin": [("llm", {}), ("huffman", {}), ("lz77", {})],
    "empty": [("llm", {}), ("huffman", {}), ("lz77", {})],
    # Frames of strings (format version 2), made at a later commit: see README.md.
    "strings-S72.chunk": [("llm", {"strings": "S72"})],
    "strings-U40.chunk": [("llm", {"strings": "<U40"})],
    "strings-vlen.chunk": [("llm", {})],
}


def make_string_chunks() -> None:
    """Write the originals of the frames of strings (chunks as numpy and numcodecs hold them)."""
    import numcodecs
    import numpy as np

    lines = (HERE / "prose.txt").read_bytes().splitlines()
    prose = [line for line in lines if line.strip()][:40]
    fixed = [*prose[:36], b"", b"nul\x00inside", b"not utf-8: \xff\xfe", b"x" * 72]
    unicode = [
        *(line.decode()[:40] for line in prose[:30]),
        "", "caf\u00e9 \u00fcber \u0416\u0436 \u65e5\u672c",
        "lone \ud800 surrogate",
        "two\nlines", "\U0001f600 emoji",
    ]
    records = (HERE / "records.json").read_text().splitlines()[:60]
    originals = {
        "strings-S72.chunk": np.array(fixed, dtype="S72").tobytes(),
        "strings-U40.chunk": np.array(unicode, dtype="<U40").tobytes(),
        "strings-vlen.chunk": numcodecs.VLenUTF8().encode(np.array(records, dtype=object)),
    }
    for name, data in originals.items():
        if not (HERE / name).exists():
            (HERE / name).write_bytes(bytes(data))


def main() -> None:
    make_string_chunks()
    for name, variants in FRAMES.items():
        data = (HERE / name).read_bytes()
        for codec, params in variants:
            suffix = "".join(f"-{k}" if k == "strings" else f"-{k}{v}" for k, v in params.items())
            target = HERE / f"{name}.{codec}{suffix}.llmz"
            if target.exists():
                print(target.name, "exists: kept (golden frames are never regenerated)")
                continue
            frame = llm_codecs.compress(data, codec, **params)
            assert llm_codecs.decompress(frame) == data
            target.write_bytes(frame)
            print(target.name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
