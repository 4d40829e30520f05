"""How the golden frames of the portable engine ``int8-v2`` were made, once. Never rerun it.

They were added with that engine version (8-bit cached keys and values, issue 12), after the
frames of the other ``make*.py`` (README-int8-v2.md says when and where); the ``int8-v1``
frames of ``make.py`` and ``make_compact.py`` keep guarding the first version. Like those it
refuses to overwrite a frame: a golden frame that stops decoding is a broken promise to every
archive made with that version.
"""

import sys
from pathlib import Path

import llm_codecs
from llm_codecs.frame import FrameReader

HERE = Path(__file__).resolve().parent
#: frame name -> (original, block size): several model blocks, and one compact frame.
FRAMES = {
    "prose.txt.llm-int8v2-block_size8192.llmz": ("prose.txt", 8192),
    "records.json.llm-int8v2-compact.llmz": ("records.json", None),
}


def main() -> None:
    for frame_name, (original, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, "llm", block_size=block_size)
        assert FrameReader(frame).header.fingerprint["engine"] == "int8-v2"
        assert llm_codecs.decompress(frame) == data
        (HERE / frame_name).write_bytes(frame)
        methods = [b.method for b in FrameReader(frame).blocks]
        print(frame_name, len(data), "->", len(frame), "methods", methods)


if __name__ == "__main__":
    main()
