"""How the golden frames with context-mixing blocks of version 5 (method 9) were made, once. Never
rerun it.

They were added with version 5 of the context-mixing codec (version 4 plus a model of deflate
streams), after the frames of ``make.py``, ``make_strings.py``, ``make_compact.py``,
``make_lzma.py`` and ``make_cm.py`` .. ``make_cm4.py`` (versions 1 to 4, methods 5 to 8), which
must keep decoding; README-cm5.md says when and where. ``streams.bin`` holds deflate streams of the
three kinds the model follows (a zlib stream in a PDF-like object, a gzip member, a zip entry),
made from ``dpkg.log`` by this script's ``streams()`` with this machine's zlib, and ``log-then-
streams.bin`` the first 4,000 bytes of ``dpkg.log`` then ``streams.bin`` (a text frame of the
``llm`` codec whose second block holds the zlib stream's start); both are committed with the
frames, so no later zlib is needed to read them. Like the other recipes it refuses to overwrite a
frame: a golden frame that stops decoding is a broken promise to every archive made with that
version.
"""

import gzip
import io
import sys
import zipfile
import zlib
from pathlib import Path

import llm_codecs

HERE = Path(__file__).resolve().parent
#: frame name -> (original, codec, block size)
FRAMES = {
    "streams.bin.cm5.llmz": ("streams.bin", "cm", None),
    "dpkg.log.cm5.llmz": ("dpkg.log", "cm", None),
    "log-then-streams.bin.llm-block_size4000-cm5.llmz": ("log-then-streams.bin", "llm", 4000),
}


def streams() -> bytes:
    """A zlib stream (16 KiB window, level 9) in a PDF-like object, a gzip member, a zip."""
    log = (HERE / "dpkg.log").read_bytes()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 14)
    pdf = (b"4 0 obj\n<< /Length 0 /Filter /FlateDecode >>\nstream\r\n"
           + compressor.compress(log) + compressor.flush() + b"\nendstream\nendobj\n")
    member = io.BytesIO()
    with gzip.GzipFile(filename="dpkg.log", mode="wb", fileobj=member, mtime=0) as out:
        out.write(log[:3000])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr(zipfile.ZipInfo("logs/dpkg.log", (2026, 12, 2, 0, 0, 0)), log[3000:],
                     zipfile.ZIP_DEFLATED)
    return pdf + member.getvalue() + archive.getvalue()


def main() -> None:
    for original in ("streams.bin", "log-then-streams.bin"):
        if (HERE / original).exists():
            sys.exit(f"{original} exists: golden originals are never regenerated")
    data = streams()
    (HERE / "streams.bin").write_bytes(data)
    (HERE / "log-then-streams.bin").write_bytes((HERE / "dpkg.log").read_bytes()[:4000] + data)
    for frame_name, (original, codec, block_size) in FRAMES.items():
        if (HERE / frame_name).exists():
            sys.exit(f"{frame_name} exists: golden frames are never regenerated")
        data = (HERE / original).read_bytes()
        frame = llm_codecs.compress(data, codec, block_size=block_size)
        assert llm_codecs.decompress(frame) == data
        assert 9 in {b.method for b in llm_codecs.open_frame(frame).blocks}, frame_name
        (HERE / frame_name).write_bytes(frame)
        print(frame_name, len(data), "->", len(frame))


if __name__ == "__main__":
    main()
