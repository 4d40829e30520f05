"""fsspec integration: the ``llmz`` filesystem and the ``llmz`` compression.

``LLMZFileSystem`` wraps any other filesystem through chained URLs::

    import fsspec

    with fsspec.open("llmz::s3://bucket/app.log", "wb", llmz={"codec": "lz77", "level": 9}) as f:
        f.write(data)  # stores s3://bucket/app.log.llmz, streamed, atomic
    with fsspec.open("llmz::s3://bucket/app.log", "rb") as f:
        f.seek(10_000_000)
        f.read(100)  # range-reads and decodes only the block(s) holding these bytes

In the wrapped filesystem a file ``NAME`` is stored as ``NAME.llmz`` (one LLMZ frame); ``ls``,
``info``, ``find`` and ``glob`` show it as ``NAME`` with its original size, read from the frame's
head or footer alone. Files without the suffix pass through untouched, for reading and listing.

The filesystem is registered through the ``fsspec.specs`` entry-point group, so ``llmz::`` URLs
work without importing llm_codecs. Importing this module also registers the fsspec compression
``llmz`` (inferred from the ``.llmz`` extension), e.g.
``fsspec.open("x.txt.llmz", compression="infer")``; fsspec has no entry point for compressions.
"""

from __future__ import annotations

import contextlib
import io
import operator
import struct
import threading
import uuid
from collections import OrderedDict
from typing import Any

import fsspec
from fsspec.compression import register_compression
from fsspec.implementations.chained import ChainedFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from ..api import DEFAULT_CODEC
from ..codecs import BlockCodec, LazyCodec, codec_class, make_codec
from ..errors import CorruptDataError
from ..frame import (
    FOOTER_SIZE,
    HEAD_READ_SIZE,
    FrameReader,
    FrameWriter,
    check_block_size,
    frame_original_size,
)

#: Suffix of the stored (compressed) files in the wrapped filesystem.
SUFFIX = ".llmz"
#: Storage options that configure the filesystem itself rather than the codec.
_FS_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop"}
)
#: Targets whose writes go to a temporary sibling that is then renamed into place.
_RENAME_TARGETS = (LocalFileSystem, MemoryFileSystem)


def _read_length(size) -> int:
    """``read``'s ``size`` as the built-in files take it: -1 or None for everything, any other
    negative number refused (``cat_file(start=200, end=100)`` then fails, as it does on the
    local filesystem, instead of returning the rest of the file)."""
    size = -1 if size is None else operator.index(size)
    if size < -1:
        raise ValueError("read length must be non-negative or -1")
    return size


class LLMZFile(io.BufferedIOBase):
    """Read-only, seekable file of the original bytes of an LLMZ frame.

    Reads decode only the blocks they touch, through a :class:`~llm_codecs.frame.FrameReader`
    over ``fileobj``; the last two decoded blocks are kept, so small sequential reads decode
    each block once.

    Parameters
    ----------
    fileobj : seekable binary file
        The frame. Closed with this file when ``close_fileobj`` is true.
    path : str, optional
        Name reported as :attr:`path`/``name``.
    fs : AbstractFileSystem, optional
        The filesystem this file came from.
    model : str, optional
        A model offered for decoding (used only if it has the hash the frame names).
    """

    _CACHED_BLOCKS = 2

    def __init__(self, fileobj, path: str | None = None, fs=None, close_fileobj: bool = True,
                 model: str | None = None):
        super().__init__()
        try:
            self.reader = FrameReader(fileobj, model=model)
        except BaseException:
            if close_fileobj:
                fileobj.close()
            raise
        self.fileobj = fileobj
        self.path = self.name = path
        self.fs = fs
        self.mode = "rb"
        self.size = self.reader.size
        self.loc = 0
        self._close_fileobj = close_fileobj
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._checkClosed()
        return self.loc

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        offset, whence = operator.index(offset), operator.index(whence)  # numpy ints too
        if whence == io.SEEK_SET:
            loc = offset
        elif whence == io.SEEK_CUR:
            loc = self.loc + offset
        elif whence == io.SEEK_END:
            loc = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if loc < 0:
            raise ValueError("negative seek position")
        self.loc = loc
        return loc

    def _block(self, i: int) -> bytes:
        block = self._blocks.get(i)
        if block is None:
            block = self.reader.read_unit(i)
            self._blocks[i] = block
            while len(self._blocks) > self._CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(i)
        return block

    def read(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        size = _read_length(size)
        end = self.size if size == -1 else min(self.size, self.loc + size)
        if self.loc >= end:
            return b""
        if end - self.loc > 2 * self.reader.unit_size:
            # Long reads go straight through the reader, without filling the block cache.
            data = self.reader.read(self.loc, end - self.loc)
        else:
            data = b"".join(self._pieces(self.loc, end))
        self.loc = end
        return data

    def _pieces(self, start: int, end: int):
        bs = self.reader.unit_size
        while start < end:
            i, within = divmod(start, bs)
            piece = self._block(i)[within : within + end - start]
            yield piece
            start += len(piece)

    read1 = read

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    readinto1 = readinto

    def readline(self, size: int | None = -1) -> bytes:
        self._checkClosed()
        size = -1 if size is None else operator.index(size)
        limit = self.size if size < 0 else min(self.size, self.loc + size)
        bs = self.reader.unit_size
        parts = []
        while self.loc < limit:
            i, within = divmod(self.loc, bs)
            block = self._block(i)
            stop = min(len(block), within + limit - self.loc)
            newline = block.find(b"\n", within, stop)
            if newline >= 0:
                stop = newline + 1
            parts.append(block[within:stop])
            self.loc += stop - within
            if newline >= 0:
                break
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._blocks.clear()
            if self._close_fileobj:
                self.fileobj.close()
        super().close()

    def __repr__(self) -> str:
        return f"<LLMZFile {self.path!r} size={self.size}>"


class LLMZWriteFile(io.BufferedIOBase):
    """Write-only file that streams an LLMZ frame to ``fs``'s wrapped filesystem.

    Memory stays bounded by a few blocks (the frame writer's) plus the target file's own
    buffer. The stored file appears only when complete: local and memory targets get a
    temporary sibling renamed into place, others (object stores) a file opened with
    ``autocommit=False`` and committed on close. Leaving a ``with`` block by an exception
    discards the file.
    """

    def __init__(self, fs: LLMZFileSystem, path: str, autocommit: bool = True):
        super().__init__()
        self.fs = fs
        self.path = self.name = path
        self.mode = "wb"
        self.autocommit = autocommit
        self.stored_path = path + SUFFIX
        # The codec first: a bad parameter fails before any temporary file exists.
        codec = fs._get_block_codec()
        self._committed = False
        target = fs.fs
        self._rename = isinstance(target, _RENAME_TARGETS)
        if self._rename:
            parent, _, base = self.stored_path.rpartition("/")
            temp_name = f".{base}.{uuid.uuid4().hex[:12]}.tmp"
            self._temp = f"{parent}/{temp_name}" if parent or self.stored_path[:1] == "/" else (
                temp_name
            )
            self._file = target._open(self._temp, mode="wb", autocommit=True)
            self._transactional = False
        else:
            self._temp = None
            self._file = target._open(self.stored_path, mode="wb", autocommit=False)
            self._transactional = hasattr(self._file, "commit")
            if not self._transactional:  # pragma: no cover - depends on the target
                self._file.close()
                self._file = target._open(self.stored_path, mode="wb", autocommit=True)
        self._finished = False
        try:
            # Writes the header, which may load a model (and fail to).
            self._writer = FrameWriter(self._file, codec, fs.block_size)
        except BaseException:
            self.discard()
            raise

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:
        self._checkClosed()
        return self._writer.write(data)

    def tell(self) -> int:
        return self._writer._size + len(self._writer._pending)

    def flush(self) -> None:
        """Nothing to do: blocks are written as soon as they are full."""

    def close(self) -> None:
        """Finish the frame and, unless in a transaction, make the file appear."""
        if self.closed:
            return
        try:
            self._writer.close()
            self._file.close()
            self._finished = True
            if self.autocommit:
                self.commit()
        except BaseException:
            self.discard()
            raise
        finally:
            super().close()

    def commit(self) -> None:
        """Move the finished frame into place (called by close, or by a transaction)."""
        if self._committed or not self._finished:
            return
        target = self.fs.fs
        if self._rename:
            target.mv(self._temp, self.stored_path)
        elif self._transactional:
            self._file.commit()
        self._committed = True
        self.fs._sizes.pop(self.stored_path, None)

    def discard(self) -> None:
        """Drop whatever was written; the stored file is left as it was."""
        if self._committed:
            return
        target = self.fs.fs
        try:
            if self._rename:
                if not self._file.closed:
                    self._file.close()
                if target.exists(self._temp):
                    target.rm_file(self._temp)
            elif self._transactional:
                self._file.discard()
                if not self._file.closed:
                    # Discarded mid-write: a later close() (or __del__) must not flush it.
                    with contextlib.suppress(AttributeError):
                        self._file.closed = True
        finally:
            self._committed = True  # nothing left to commit
            io.BufferedIOBase.close(self)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.discard()
        else:
            self.close()
        return False

    def __repr__(self) -> str:
        return f"<LLMZWriteFile {self.path!r}>"


class LLMZFileSystem(ChainedFileSystem):
    """A filesystem that keeps every file it writes as an LLMZ frame in another filesystem.

    Parameters
    ----------
    target_protocol : str, optional
        Protocol of the wrapped filesystem (set by chained URLs such as ``llmz::s3://...``).
    target_options : dict, optional
        Options of the wrapped filesystem.
    fs : AbstractFileSystem, optional
        A ready wrapped filesystem, instead of ``target_protocol``/``target_options``.
    codec : str, optional
        Codec used for writes (default :data:`llm_codecs.DEFAULT_CODEC`). Reads use whatever
        codec each frame names.
    block_size : int, optional
        Original bytes per frame block for writes: the unit of random access.
    **params
        Codec parameters for writes, e.g. ``level=9`` for ``lz77`` or ``model=...`` for ``llm``.
        ``model`` is also offered for reads: a frame names its model by hash, and this one
        decodes it when it has that hash.
    """

    protocol = "llmz"
    root_marker = ""
    _strip_tokenize_options = ("fo",)

    def __init__(
        self,
        target_protocol: str | None = None,
        target_options: dict | None = None,
        fs=None,
        fo: str | None = None,
        codec: str | None = None,
        block_size: int | None = None,
        **params: Any,
    ):
        fs_options = {k: params.pop(k) for k in list(params) if k in _FS_OPTIONS}
        super().__init__(**fs_options)
        if fs is None:
            fs = fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        elif target_protocol is not None:
            raise ValueError("give either fs or target_protocol, not both")
        self.fs = fs
        self.codec = DEFAULT_CODEC if codec is None else codec
        self.codec_params = params
        self.block_size = check_block_size(codec_class(self.codec), block_size)
        self._block_codec = LazyCodec(self.codec, params)
        self._block_codec.get()  # bad parameters fail here; building the codec loads no model
        # stored path -> ((size, modified), original size): saves footer reads in listings.
        self._sizes: dict[str, tuple[tuple, int]] = {}
        self._sizes_lock = threading.Lock()

    # -- helpers --------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = fsspec.utils.stringify_path(path)
        for prefix in ("llmz://", "llmz::"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
        return path

    def _target(self, path: str) -> str:
        return self.fs._strip_protocol(self._strip_protocol(path))

    def _get_block_codec(self) -> BlockCodec:
        return self._block_codec.get()

    def _decode_model(self) -> str | None:
        # The model configured for writes is offered for reads too (used if its hash matches).
        model = self.codec_params.get("model")
        return model if isinstance(model, str) and model else None

    def _stored(self, path: str) -> tuple[str, bool]:
        """Return ``(target path, compressed)`` for an existing user path."""
        target = self._target(path)
        if self.fs.isfile(target + SUFFIX):
            return target + SUFFIX, True
        return target, False

    def _original_size(self, info: dict) -> int:
        name, stored = info["name"], info.get("size")
        key = (stored, str(info.get("mtime") or info.get("LastModified") or info.get("ETag")
                           or info.get("created")))
        cached = self._sizes.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        if stored is None:
            stored = self.fs.info(name)["size"]
        size = self._recorded_size(name, stored)
        with self._sizes_lock:  # listings may run in several threads (dask, async callers)
            if len(self._sizes) > 10_000:
                self._sizes.clear()
            self._sizes[name] = (key, size)
        return size

    def _recorded_size(self, name: str, stored: int) -> int:
        """The original size the stored frame ``name`` records, from its head or footer: both
        ends are fetched in one request where the filesystem batches (``cat_ranges``)."""
        starts, ends = [0, max(0, stored - FOOTER_SIZE)], [min(stored, HEAD_READ_SIZE), stored]
        pieces = self.fs.cat_ranges([name] * 2, starts, ends, on_error="raise")
        fetched = dict(zip(zip(starts, ends, strict=True), pieces, strict=True))

        def read_at(offset: int, n: int) -> bytes:
            for (start, end), data in fetched.items():
                if start <= offset and offset + n <= end:
                    return data[offset - start : offset - start + n]
            return self.fs.cat_file(name, start=offset, end=offset + n)

        return frame_original_size(read_at, stored)

    def _entry(self, info: dict, with_size: bool = True) -> dict:
        """Translate one entry of the wrapped filesystem into this filesystem's view."""
        name = info["name"]
        if info.get("type") != "file" or not name.endswith(SUFFIX):
            return dict(info)
        out = dict(info, name=name[: -len(SUFFIX)], llmz_path=name,
                   llmz_stored_size=info.get("size"))
        if with_size:
            try:
                out["size"] = self._original_size(info)
            except (CorruptDataError, struct.error) as exc:
                out["size"] = None
                out["llmz_error"] = str(exc)
        return out

    @staticmethod
    def _merge(entries: list[dict]) -> list[dict]:
        """Drop a pass-through file hidden by a compressed file of the same name."""
        by_name: dict[str, dict] = {}
        for entry in entries:
            old = by_name.get(entry["name"])
            if old is None or ("llmz_path" in entry and "llmz_path" not in old):
                by_name[entry["name"]] = entry
        return list(by_name.values())

    # -- listing ----------------------------------------------------------------------------

    def ls(self, path, detail=True, **kwargs):
        target = self._target(path)
        try:
            listing = self.fs.ls(target, detail=True, **kwargs)
        except FileNotFoundError:
            listing = []
        if not listing or (len(listing) == 1 and listing[0]["name"] == target + SUFFIX):
            # ``path`` may name a stored file (``ls`` of a file lists the file).
            info = self.info(path)
            if info["type"] != "directory":
                return [info] if detail else [info["name"]]
        entries = self._merge([self._entry(e, with_size=detail) for e in listing])
        if detail:
            return entries
        return [e["name"] for e in entries]

    def info(self, path, **kwargs):
        target = self._target(path)
        try:
            info = self.fs.info(target + SUFFIX, **kwargs)
        except FileNotFoundError:
            info = None
        if info is not None and info.get("type") == "file":
            return self._entry(info)
        return self.fs.info(target, **kwargs)

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        target = self._target(path)
        found = self.fs.find(target, maxdepth=maxdepth, withdirs=withdirs, detail=True, **kwargs)
        entries = self._merge([self._entry(e, with_size=detail) for e in found.values()])
        if not entries and self.isfile(path):
            entries = [self.info(path)]
        entries.sort(key=lambda e: e["name"])
        if detail:
            return {e["name"]: e for e in entries}
        return [e["name"] for e in entries]

    def modified(self, path):
        return self.fs.modified(self._stored(path)[0])

    def created(self, path):
        return self.fs.created(self._stored(path)[0])

    # -- files ------------------------------------------------------------------------------

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
              **kwargs):
        target = self._target(path)
        if "+" in mode or "a" in mode:
            raise NotImplementedError("llmz files are written whole: no append or update modes")
        if "r" in mode:
            try:
                # "none": every frame read becomes one exact range request.
                stored = self.fs._open(target + SUFFIX, mode="rb", cache_type="none")
            except (FileNotFoundError, IsADirectoryError):
                return self.fs._open(target, mode=mode, block_size=block_size,
                                     autocommit=autocommit, cache_options=cache_options, **kwargs)
            return LLMZFile(stored, path=target, fs=self, model=self._decode_model())
        if "x" in mode and self.exists(path):
            raise FileExistsError(path)
        return LLMZWriteFile(self, target, autocommit=autocommit)

    def rm_file(self, path):
        self.fs.rm_file(self._stored(path)[0])

    def rm(self, path, recursive=False, maxdepth=None):
        paths = [path] if isinstance(path, str) else list(path)
        self.fs.rm([self._stored(p)[0] for p in paths], recursive=recursive, maxdepth=maxdepth)

    def cp_file(self, path1, path2, **kwargs):
        source, compressed = self._stored(path1)
        dest = self._target(path2) + (SUFFIX if compressed else "")
        self.fs.cp_file(source, dest, **kwargs)

    def mkdir(self, path, create_parents=True, **kwargs):
        return self.fs.mkdir(self._target(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path, exist_ok=False):
        return self.fs.makedirs(self._target(path), exist_ok=exist_ok)

    def rmdir(self, path):
        return self.fs.rmdir(self._target(path))

    def invalidate_cache(self, path=None):
        self._sizes.clear()
        self.fs.invalidate_cache(None if path is None else self._target(path))


# -- fsspec compression ("x.txt.llmz", compression="infer") ------------------------------------


class _CompressedWriter(io.BufferedIOBase):
    """Write side of the ``llmz`` compression: a frame streamed into ``fileobj``."""

    def __init__(self, fileobj, codec: str = DEFAULT_CODEC, block_size: int | None = None,
                 **params):
        super().__init__()
        self.fileobj = fileobj
        self._writer = FrameWriter(fileobj, make_codec(codec, **params), block_size)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._checkClosed()
        return self._writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self._writer.close()
            self.fileobj.flush()
        super().close()


def open_compressed(fileobj, mode: str = "rb", **options):
    """fsspec compression callback: the original bytes of (``'r'``) or into (``'w'``) a frame.

    The wrapped ``fileobj`` is not closed (fsspec closes it). Writes use
    ``llm_codecs.DEFAULT_CODEC`` unless ``codec=``/parameters are given; reads take ``model=``,
    a model offered for decoding (used if it has the hash the frame names).
    """
    if "r" in mode:
        return LLMZFile(fileobj, path=getattr(fileobj, "path", None), close_fileobj=False,
                        model=options.get("model"))
    if "w" in mode:
        return _CompressedWriter(fileobj, **options)
    raise ValueError(f"unsupported mode {mode!r} for llmz compression")


register_compression("llmz", open_compressed, "llmz", force=True)

__all__ = ["SUFFIX", "LLMZFile", "LLMZFileSystem", "LLMZWriteFile",
           "open_compressed"]
