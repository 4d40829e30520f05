"""How the golden frames with context-mixing blocks (method 5) were made, once. Never rerun it.

They were added with the context-mixing codec, after the frames of ``make.py``,
``make_strings.py``, ``make_compact.py`` and ``make_lzma.py`` (README-cm.md says when and
where). Like those it refuses to overwrite a frame: a golden frame that stops decoding is a
broken promise to every archive made with that version.
"""

import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: frame name -> (original, codec, block size)
FRAMES = {
    "dpkg.log.cm.llmz": ("dpkg.log", "cm", None),
    "records.json.cm-block_size2000.llmz": ("records.json", "cm", 2000),
    "dpkg.log.llm-block_size2000-cm.llmz": ("dpkg.log", "llm", 2000),
}


def main() -> None:
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
