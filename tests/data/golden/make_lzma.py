"""How the golden frames with LZMA blocks (method 4) were made, once. Never rerun it.

They were added with the LZMA fallback, after the frames of ``make.py``, ``make_strings.py``
and ``make_compact.py`` (README-lzma.md says when and where). Like those it refuses to overwrite
a frame: a golden frame that stops decoding is a broken promise to every archive made with that
version.
"""

import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: New original: the first 6,000 bytes of prose.txt, then program.bin.
NEW_ORIGINALS = {
    "prose-then-program.bin": (HERE / "prose.txt").read_bytes()[:6000]
    + (HERE / "program.bin").read_bytes(),
}
#: frame name -> (original, codec, block size)
FRAMES = {
    "dpkg.log.lzma.llmz": ("dpkg.log", "lzma", None),
    "program.bin.lzma-block_size1000.llmz": ("program.bin", "lzma", 1000),
    "prose-then-program.bin.llm-lzma.llmz": ("prose-then-program.bin", "llm", 6000),
}


def main() -> None:
    for name, data in NEW_ORIGINALS.items():
        if (HERE / name).exists():
            sys.exit(f"{name} exists: golden frames are never regenerated")
        (HERE / name).write_bytes(data)
    for frame_name, (original, codec, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, block_size=block_size)
        assert llm_codecs.decompress(frame) == data
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
