"""Write the seed corpus of each fuzz target (tests/fuzz/corpus/TARGET/), from real frames.

Rerunning it rewrites the seeds it makes and keeps any other file (findings added by hand).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

import llm_codecs
from llm_codecs.codecs import make_codec
from llm_codecs.codecs.lz77 import LZ77Codec
from llm_codecs.frame import FORMAT_VERSION_COMPACT, parse_head

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "data" / "golden"


class _TextLZ77(LZ77Codec):
    models_text = True  # frames of strings (version 2) without a model


def _samples() -> list[bytes]:
    prose = (GOLDEN / "prose.txt").read_bytes()
    return [b"", b"a", prose[:300], prose[:3000], bytes(range(256)) * 4,
            (GOLDEN / "dpkg.log").read_bytes()[:2000], (GOLDEN / "program.bin").read_bytes()[:2000],
            (GOLDEN / "picture.jpg").read_bytes()[:3000], (GOLDEN / "streams.bin").read_bytes()]


def seeds() -> dict[str, list[bytes]]:
    samples = _samples()
    frames = [llm_codecs.compress(s, c, block_size=b) for s in samples
              for c in ("huffman", "lz77", "lzma", "cm") for b in (None, 700)]
    chunk = np.array([b"alpha", b"", b"gamma\x00", b"delta delta"], dtype="S12")
    frames.append(llm_codecs.compress(chunk, _TextLZ77()))
    frames.append(llm_codecs.compress(np.array(["\u00e9t\u00e9", "x"], dtype="<U4"), _TextLZ77()))
    frames = [f for f in frames if len(f) <= 4096]
    blocks = {"huffman_block": [], "lz77_block": [], "lzma_block": [], "cm_block": []}
    for s in samples[1:]:
        for name in ("huffman", "lz77", "lzma", "cm"):
            payload = make_codec(name).encode_block(s)
            blocks[f"{name}_block"].append(struct.pack("<H", len(s) - 1) + payload)
    headers = []
    for path in sorted(GOLDEN.glob("*.llmz")):
        data = path.read_bytes()
        if data[4] == FORMAT_VERSION_COMPACT:
            headers.append(data[: parse_head(lambda o, n, d=data: d[o : o + n], len(data)).end])
            continue
        (json_len,) = struct.unpack_from("<I", data, 6)
        headers.append(data[: 10 + json_len + 4])
    # Compact heads (version 3): header and block description, with and without a layout.
    for frame in frames:
        if frame[4] == FORMAT_VERSION_COMPACT:
            headers.append(frame[: parse_head(lambda o, n, f=frame: f[o : o + n], len(frame)).end])
    strings = [bytes([k, 3, 10]) + struct.pack("<I", size) + text for k, size, text in [
        (0, 32, b"ab\ncd\n"), (3, 15, b"ab\ncd\n"), (1, 32, "\u00e9\n\n".encode())]]
    return {"frame": frames, "header": headers, "strings": strings,
            "roundtrip": samples[:5], **blocks}


def main() -> None:
    for target, inputs in seeds().items():
        where = HERE / "corpus" / target
        where.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            name = "seed-" + hashlib.sha256(data).hexdigest()[:16]
            (where / name).write_bytes(data)
        print(target, len(inputs))


if __name__ == "__main__":
    main()
