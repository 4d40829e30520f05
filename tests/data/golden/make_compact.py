"""How the golden compact frames (format version 3) were made, once. Never rerun it.

They were added with compact frames, after the frames of ``make.py`` and ``make_strings.py``
(README-compact.md says when and where). Like those it refuses to overwrite a frame: a golden
frame that stops decoding is a broken promise to every archive made with that version.
"""

import random
import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: New originals: one byte, and bytes no codec makes smaller (a stored block).
NEW_ORIGINALS = {
    "one-byte": b"L",
    "random-256.bin": random.Random(20261202).randbytes(256),
}
#: frame name -> (original, codec, ``strings`` argument of llm_codecs.compress)
FRAMES = {
    "empty.huffman-compact.llmz": ("empty", "huffman", None),
    "empty.lz77-compact.llmz": ("empty", "lz77", None),
    "one-byte.huffman-compact.llmz": ("one-byte", "huffman", None),
    "one-byte.lz77-compact.llmz": ("one-byte", "lz77", None),
    "random-256.bin.lz77-compact.llmz": ("random-256.bin", "lz77", None),
    "dpkg.log.huffman-compact.llmz": ("dpkg.log", "huffman", None),
    "dpkg.log.lz77-compact.llmz": ("dpkg.log", "lz77", None),
    "records.json.llm-compact.llmz": ("records.json", "llm", None),
    "strings-S72.chunk.llm-strings-compact.llmz": ("strings-S72.chunk", "llm", "S72"),
    "strings-vlen.chunk.llm-compact.llmz": ("strings-vlen.chunk", "llm", "auto"),
}


def main() -> None:
    for name, data in NEW_ORIGINALS.items():
        if (HERE / name).exists():
            sys.exit(f"{name} exists: golden frames are never regenerated")
        (HERE / name).write_bytes(data)
    for frame_name, (original, codec, strings) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, strings=strings)
        assert frame[4] == 3, f"{frame_name} is not a compact frame"
        assert llm_codecs.decompress(frame) == data
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
