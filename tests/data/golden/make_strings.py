"""How the golden frames of strings (format version 2) were made, once. Never rerun it.

They were added with the frames of strings, after the frames of ``make.py`` (README-strings.md
says when and where). Like ``make.py`` it refuses to overwrite a frame: a golden frame that
stops decoding is a broken promise to every archive made with that version.
"""

import sys
from pathlib import Path

import numcodecs
import numpy as np

import llm_codecs

HERE = Path(__file__).resolve().parent
#: original -> (frame name, the ``strings`` argument of llm_codecs.compress)
FRAMES = {
    "strings-S72.chunk": ("strings-S72.chunk.llm-strings.llmz", "S72"),
    "strings-U40.chunk": ("strings-U40.chunk.llm-strings.llmz", "<U40"),
    "strings-vlen.chunk": ("strings-vlen.chunk.llm.llmz", "auto"),
}


def originals() -> dict[str, bytes]:
    """The chunks, as numpy and numcodecs hold them, from the originals of ``make.py``."""
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
    return {
        "strings-S72.chunk": np.array(fixed, dtype="S72").tobytes(),
        "strings-U40.chunk": np.array(unicode, dtype="<U40").tobytes(),
        "strings-vlen.chunk": bytes(numcodecs.VLenUTF8().encode(np.array(records, dtype=object))),
    }


def main() -> None:
    for name, data in originals().items():
        frame_name, strings = FRAMES[name]
        if (HERE / name).exists() or (HERE / frame_name).exists():
            sys.exit(f"{name} exists: golden frames are never regenerated")
        frame = llm_codecs.compress(data, strings=strings)
        assert llm_codecs.decompress(frame) == data
        (HERE / name).write_bytes(data)
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
