"""How the golden frames with context-mixing blocks of version 3 (method 7) were made, once. Never
rerun it.

They were added with version 3 of the context-mixing codec (record, field, sparse and byte-class
contexts, checked slots, four mixers), after the frames of ``make.py``, ``make_strings.py``,
``make_compact.py``, ``make_lzma.py``, ``make_cm.py`` (version 1, method 5) and ``make_cm2.py``
(version 2, method 6), which must keep decoding; README-cm3.md says when and where. Like those it
refuses to overwrite a frame: a golden frame that stops decoding is a broken promise to every
archive made with that version.
"""

import sys
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: frame name -> (original, codec, block size)
FRAMES = {
    "dpkg.log.cm3.llmz": ("dpkg.log", "cm", None),
    "records.json.cm3-block_size2000.llmz": ("records.json", "cm", 2000),
    "program.bin.cm3.llmz": ("program.bin", "cm", None),
    "dpkg.log.llm-block_size2000-cm3.llmz": ("dpkg.log", "llm", 2000),
}


def main() -> None:
    for frame_name, (original, codec, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, block_size=block_size)
        assert llm_codecs.decompress(frame) == data
        assert 7 in {b.method for b in llm_codecs.open_frame(frame).blocks}, frame_name
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
