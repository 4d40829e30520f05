"""How the golden frames were made (once, at the commit named in README.md). Never rerun it.

It refuses to overwrite a frame: a golden frame that stops decoding is a broken promise to
every archive made with that version, not a file to refresh.
"""

import sys
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
}


def main() -> None:
    for name, variants in FRAMES.items():
        data = (HERE / name).read_bytes()
        for codec, params in variants:
            suffix = "".join(f"-{k}{v}" for k, v in params.items())
            target = HERE / f"{name}.{codec}{suffix}.llmz"
            if target.exists():
                sys.exit(f"{target.name} exists: golden frames are never regenerated")
            frame = llm_codecs.compress(data, codec, **params)
            assert llm_codecs.decompress(frame) == data
            target.write_bytes(frame)
            print(target.name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
