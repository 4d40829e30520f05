"""The one core ``bytes -> bytes`` API that every integration (numcodecs, Zarr, fsspec, CLI)
adapts."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO

from .codecs import BlockCodec, make_codec, plain_bounds
from .frame import FrameReader, FrameWriter, check_block_size
from .strings import strings_hint, text_view

#: Codec used when none is named: the LLM codec with the embedded default model.
DEFAULT_CODEC = "llm"
_COPY_CHUNK = 1 << 20


def _as_bytes_view(data) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"expected a bytes-like object, got {type(data).__name__}") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B")


def compress(
    data,
    codec: str | BlockCodec = DEFAULT_CODEC,
    *,
    block_size: int | None = None,
    strings: Any = "auto",
    **params,
) -> bytes:
    """Compress ``data`` into a self-describing LLMZ frame.

    Parameters
    ----------
    data : bytes-like
        Anything exposing the buffer protocol (bytes, bytearray, memoryview, numpy array).
    codec : str or BlockCodec
        A codec name (``"huffman"``, ``"lz77"``, ``"lzma"``, ``"cm"``, ``"llm"``) or a ready
        codec instance.
    block_size : int, optional
        Original bytes per independently coded block: the unit of random access and
        parallelism. The codec's default when omitted.
    strings : str, numpy dtype or None
        Whether ``data`` is a chunk of strings, for codecs that model text (``"llm"``). Such a
        chunk is coded as its items, one per line, and the frame records how to rebuild the
        chunk exactly (:mod:`llm_codecs.strings`): NUL padding, UTF-32 and length prefixes
        would otherwise hide the text from the model. ``"auto"`` (default): a numpy array of
        an ``S`` or ``U`` dtype is such a chunk, and bytes in numcodecs' variable-length
        encoding (``VLenUTF8``, ``VLenBytes``, zarr's ``vlen-utf8``) are recognised. A numpy
        dtype (``"S200"``, ``"<U50"``, ``object``) or ``"vlen"`` says what ``data`` holds;
        None codes the bytes as they are. Data that is not what the argument says is coded as
        it is.
    **params
        Codec parameters, e.g. ``level=9`` for ``"lz77"``.

    Returns
    -------
    bytes
        The frame; :func:`decompress` restores ``data`` from it exactly. When a codec with a
        fallback (``"llm"``) does not beat its fallback's plain frame, the result is that frame
        (``lz77``, ``lzma`` or ``cm``), which needs no model to decode.

    Raises
    ------
    CodecError
        Unknown codec, bad parameter or block size.
    """
    hint = strings_hint(strings, data)
    view = _as_bytes_view(data)
    out = io.BytesIO()
    coder = _resolve(codec, params)
    view_of_strings = text_view(view, hint) if coder.models_text else None
    layout, coded = (None, view) if view_of_strings is None else view_of_strings
    block_size = check_block_size(coder, block_size)
    fallbacks = coder.frame_fallbacks()
    # A model frame that is not smaller than its fallback's plain frame (the model coded no
    # block, or its header outweighs what it saved on a small input) becomes that plain frame:
    # no model fingerprint in the header, and no model needed to decode it. Where no block
    # would reach the model (random or binary data), that frame is the answer and the model
    # is not even loaded.
    def plains(needed=lambda i: True) -> list[bytes]:
        return [compress(view, alternative, block_size=block_size)
                for i, alternative in enumerate(fallbacks) if needed(i)]

    if fallbacks and not coder.would_code(coded, block_size):
        return min(plains(), key=len)
    with (plain_bounds.gathering(len(fallbacks)) as bounds,
          FrameWriter(out, coder, block_size, layout=layout,
                      original_size=None if layout is None else len(view)) as writer):
        writer.write(coded)
    frame = out.getvalue()
    # The plain frames after the model's: on a fresh install their first use compiles the
    # classic kernels (seconds), which would otherwise delay the model's first block. Only
    # those that may be smaller are made: the codec coded each block with every fallback, and a
    # plain frame is larger than those payloads (:mod:`.codecs.plain_bounds`). The bounds are
    # of the blocks of ``coded``, which are the plain frames' blocks only without a layout.
    blocks = -(-len(coded) // block_size)
    return min([frame, *plains(lambda i: layout is not None
                               or not bounds.rules_out(i, len(frame), blocks))], key=len)


def decompress(frame, offset: int = 0, size: int | None = None, *, model=None) -> bytes:
    """Restore the original bytes of an LLMZ frame, or just a range of them.

    Parameters
    ----------
    frame : bytes-like
        A frame made by :func:`compress` (or any LLMZ writer).
    offset, size : int, optional
        Return only ``size`` bytes starting at ``offset`` of the original (to its end when
        ``size`` is None), decoding only the blocks that hold them.
    model : str or path, optional
        A model to decode with: a local directory, a hub id already in the local HuggingFace
        cache, or ``"default"``. A frame names its model by hash; this one is tried first and
        used only if it has that hash. Without it the model is found by its hash among those
        on this machine (:mod:`llm_codecs.models.finding`). Decoding never uses the network.

    Raises
    ------
    CorruptDataError
        The frame is truncated, damaged or not LLMZ.
    ModelMismatchError
        No model with the hash the frame records is available (the message says how to make it
        available).
    """
    return FrameReader(_as_bytes_view(frame), model=model).read(offset, size)


def compress_stream(
    src: BinaryIO,
    dst: BinaryIO,
    codec: str | BlockCodec = DEFAULT_CODEC,
    *,
    block_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    **params,
) -> int:
    """Compress everything readable from ``src`` into a frame written to ``dst``.

    Memory stays bounded by a few blocks. ``progress(n)`` is called with each chunk's length.
    Returns the number of original bytes.
    """
    total = 0
    with FrameWriter(dst, _resolve(codec, params), block_size) as writer:
        # Read about one block at a time so that progress follows slow (model) codecs closely.
        step = min(_COPY_CHUNK, max(writer.block_size, 64 << 10))
        while chunk := src.read(step):
            writer.write(chunk)
            total += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return total


def decompress_stream(
    src: BinaryIO, dst: BinaryIO, *, progress: Callable[[int], None] | None = None, model=None
) -> int:
    """Decompress the frame in the seekable file ``src`` into ``dst``, block by block.

    ``model`` is a model to decode with, as for :func:`decompress`. Returns the number of
    original bytes written.
    """
    reader = FrameReader(src, model=model)
    for block in reader.iter_blocks():
        dst.write(block)
        if progress is not None:
            progress(len(block))
    return reader.size


def open_frame(source, *, model=None) -> FrameReader:
    """Open a frame (bytes-like or seekable binary file) for random access.

    ``model`` is a model to decode with, as for :func:`decompress`.
    """
    if not isinstance(source, bytes | bytearray | memoryview) and not hasattr(source, "seek"):
        source = _as_bytes_view(source)
    return FrameReader(source, model=model)


def _resolve(codec: str | BlockCodec, params: dict) -> BlockCodec:
    if isinstance(codec, BlockCodec):
        if params:
            raise TypeError("pass parameters to the codec instance, not to compress()")
        return codec
    return make_codec(codec, **params)


__all__ = ["DEFAULT_CODEC", "compress", "compress_stream", "decompress", "decompress_stream",
           "open_frame"]

