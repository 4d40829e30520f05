"""How the golden frames with context-mixing blocks of version 4 (method 8) were made, once. Never
rerun it.

They were added with version 4 of the context-mixing codec (version 3 plus a model of baseline JPEG
scans), after the frames of ``make.py``, ``make_strings.py``, ``make_compact.py``, ``make_lzma.py``
and ``make_cm.py`` .. ``make_cm3.py`` (versions 1 to 3, methods 5 to 7), which must keep decoding;
README-cm4.md says when and where. ``picture.jpg`` is a baseline JPEG made by
``tests/jpeg_maker.py`` (``encode(picture(128, 192, 1))``) and ``log-then-picture.bin`` the first
4,000 bytes of ``dpkg.log`` then ``picture.jpg`` (a text frame of the ``llm`` codec whose second
block is the JPEG's start), both committed with them. Like the other recipes it refuses to
overwrite a frame: a golden frame that stops decoding is a broken promise to every archive made
with that version.
"""

import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: frame name -> (original, codec, block size)
FRAMES = {
    "picture.jpg.cm4.llmz": ("picture.jpg", "cm", None),
    "dpkg.log.cm4.llmz": ("dpkg.log", "cm", None),
    "log-then-picture.bin.llm-block_size4000-cm4.llmz": ("log-then-picture.bin", "llm", 4000),
}


def main() -> None:
    for frame_name, (original, codec, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, block_size=block_size)
        assert llm_codecs.decompress(frame) == data
        assert 8 in {b.method for b in llm_codecs.open_frame(frame).blocks}, frame_name
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
