"""How the golden frames with context-mixing blocks of version 2 (method 6) were made, once.
Never rerun it.

They were added with version 2 of the context-mixing codec (the column context), after the
frames of ``make.py``, ``make_strings.py``, ``make_compact.py``, ``make_lzma.py`` and
``make_cm.py`` (whose frames are version 1, method 5, and must keep decoding); README-cm2.md
says when and where. Like those it refuses to overwrite a frame: a golden frame that stops
decoding is a broken promise to every archive made with that version.
"""

import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: frame name -> (original, codec, block size)
FRAMES = {
    "dpkg.log.cm2.llmz": ("dpkg.log", "cm", None),
    "records.json.cm2-block_size2000.llmz": ("records.json", "cm", 2000),
    "dpkg.log.llm-block_size2000-cm2.llmz": ("dpkg.log", "llm", 2000),
}


def main() -> None:
    for frame_name, (original, codec, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, block_size=block_size)
        assert llm_codecs.decompress(frame) == data
        assert 6 in {b.method for b in llm_codecs.open_frame(frame).blocks}, frame_name
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
