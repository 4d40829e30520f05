"""The ``llm-codecs`` command line: gzip-like ``compress``/``decompress``, plus ``info``,
``models``, ``bench``.

Every subcommand is a thin layer over :mod:`llm_codecs.api` and :mod:`llm_codecs.frame`; what
lives here is file handling (names, atomic replacement, removal of inputs), progress display and
error reporting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from tqdm import tqdm

from . import __version__
from .api import DEFAULT_CODEC, compress, compress_stream, decompress, decompress_stream
from .baselines import FAMILIES
from .baselines import load as load_baseline
from .cli_output import FileError as _FileError
from .cli_output import atomic_output, check_destination
from .codecs import (
    METHOD_STORED,
    BlockCodec,
    codec_class,
    codec_name_for_method,
    codec_names,
    make_codec,
)
from .errors import CodecError
from .frame import FrameReader, check_block_size, frame_original_size

PROG = "llm-codecs"
SUFFIX = ".llmz"
#: Exit statuses: like gzip, 1 for a failed file, 2 for bad usage (argparse), 130 for Ctrl-C.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: stdin of ``decompress -`` stays in memory up to this size, then spills to a temporary file.
_SPOOL_MAX = 64 << 20
_COPY_CHUNK = 1 << 20
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


# --------------------------------------------------------------------------------------------
# Argument parsing


def parse_size(text: str) -> int:
    """Parse a byte count such as ``65536``, ``64K``, ``64KiB``, ``1M`` or ``1MB``.

    Parameters
    ----------
    text : str
        A non-negative integer, optionally followed by ``K``, ``M``, ``G`` or ``T`` and an
        optional ``B`` or ``iB``. Units are binary (``1K`` is 1024 bytes) whichever spelling is
        used, since block sizes are conventionally powers of two.

    Returns
    -------
    int
        The number of bytes.

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is not a size.
    """
    match = _SIZE_RE.match(text)
    if match is None or (match.group(3) and match.group(3).lower() == "ib" and not match.group(2)):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (try 65536, 64K, 1M or 1MiB)")
    return int(match.group(1)) << _SIZE_UNITS[match.group(2).lower()]


def _against_list(text: str) -> list[str]:
    names = [] if text.strip().lower() in ("", "none") else [
        n.strip().lower() for n in text.split(",") if n.strip()
    ]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown codec(s) {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
        )
    return names


def _codec_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in codec_names()]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown codec(s) {', '.join(unknown) or repr(text)}; "
            f"choose from {', '.join(codec_names())}"
        )
    return names


def _param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true, null), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="NAME",
                   help="llm codec: 'default' (embedded), a HuggingFace hub id or a local "
                        "directory")
    p.add_argument("--numerics", choices=("auto", "portable", "native"),
                   help="llm codec: 'portable' (exact integer engine: the frame decodes on any "
                        "machine), 'native' (the model's float forward: decodes only where the "
                        "float kernels are the same) or 'auto' (default: portable when the "
                        "model supports it)")
    p.add_argument("-p", "--param", type=_param, action="append", default=[],
                   metavar="KEY=VALUE",
                   help="any other codec parameter, e.g. -p lanes=32 (repeatable)")


def _codec_params(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Codec parameters from --level, --model and --param, for codec ``name``."""
    params: dict[str, Any] = dict(args.param)
    if args.level is not None and (name == args.codec or _takes_level(name)):
        params["level"] = args.level
    if args.model is not None:
        params["model"] = args.model
    if getattr(args, "numerics", None) is not None:
        params["numerics"] = args.numerics
    return params


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``llm-codecs`` with all its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``parse_args`` leaves the subcommand's function in ``args.func`` and the
        subcommand's own parser in ``args.parser``.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compress, decompress, inspect and benchmark LLMZ frames.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def file_options(p: argparse.ArgumentParser, suffix_note: str) -> None:
        p.add_argument("-o", "--output", metavar="PATH",
                       help=f"write to PATH instead of {suffix_note} (one input only)")
        p.add_argument("-c", "--stdout", action="store_true",
                       help="write to standard output and keep the inputs")
        p.add_argument("-k", "--keep", action="store_true",
                       help="keep the input files (they are removed after success by default)")
        p.add_argument("-f", "--force", action="store_true",
                       help="overwrite existing output files")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar and no warnings")

    p = sub.add_parser("compress", help="compress files to FILE.llmz",
                       description="Compress each FILE to FILE.llmz ('-' reads standard input).")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--codec", default=DEFAULT_CODEC, choices=codec_names(),
                   help=f"codec to use (default: {DEFAULT_CODEC})")
    p.add_argument("--level", type=int, metavar="N", help="codec level (codec parameter 'level')")
    _model_options(p)
    p.add_argument("--block-size", type=parse_size, metavar="SIZE",
                   help="original bytes per block, e.g. 65536, 64K, 1M (default: the codec's)")
    file_options(p, "FILE.llmz")
    p.set_defaults(func=cmd_compress, parser=p)

    p = sub.add_parser("decompress", help="decompress FILE.llmz to FILE",
                       description="Decompress each FILE.llmz to FILE ('-' reads standard input).")
    p.add_argument("files", nargs="+", metavar="FILE")
    file_options(p, "FILE without .llmz")
    p.add_argument("--offset", type=parse_size, metavar="N",
                   help="extract the original bytes from offset N on (keeps the input)")
    p.add_argument("--size", type=parse_size, metavar="N",
                   help="extract at most N original bytes (keeps the input)")
    p.add_argument("--model", metavar="PATH",
                   help="llm frames: a model to decode with (a directory, a cached hub id or "
                        "'default'), used if it has the hash the frame records; otherwise the "
                        "model is found by its hash (see 'models'). Never downloads")
    p.set_defaults(func=cmd_decompress, parser=p)

    p = sub.add_parser("info", help="describe LLMZ frames without decompressing them",
                       description="Print the header, sizes and block index summary of frames.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="also list every block")
    p.set_defaults(func=cmd_info, parser=p)

    p = sub.add_parser("models", help="list the models this machine can decode with",
                       description="List the models a frame can be decoded with here, and "
                                   "their hashes: the embedded model, the directories on "
                                   "LLM_CODECS_MODEL_PATH, the local HuggingFace cache and the "
                                   "directories models were loaded from before. A model not "
                                   "seen before is loaded once to compute its hash.")
    p.add_argument("--dtype", default="float32",
                   choices=("float32", "float64", "bfloat16", "float16"),
                   help="the dtype frames were made with (the hash depends on it; default: "
                        "float32)")
    p.set_defaults(func=cmd_models, parser=p)

    p = sub.add_parser("bench", help="compare codecs on files",
                       description="Compress each FILE in memory with our codecs and classic "
                                   "ones; print size, ratio and speed.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--codec", type=_codec_list, default=None, metavar="NAMES",
                   help=f"comma-separated codecs of ours (default: {','.join(_fast_codecs())}; "
                        "'llm' runs the model, at tens of KB/s, once per file)")
    p.add_argument("--level", type=int, metavar="N",
                   help="level for those of our codecs that take one")
    _model_options(p)
    p.add_argument("--block-size", type=parse_size, metavar="SIZE",
                   help="block size for our codecs")
    p.add_argument("--against", type=_against_list, default=list(FAMILIES),
                   metavar="NAMES",
                   help=f"classic codecs to compare with, or 'none' "
                        f"(default: {','.join(FAMILIES)})")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="time each codec N times and report the fastest (default: 3)")
    p.set_defaults(func=cmd_bench, parser=p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``llm-codecs`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    int
        The exit status: 0 on success, 1 if any file failed, 2 for a usage error (raised as
        ``SystemExit`` by argparse), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # The subcommand's own parser, so that usage errors show that subcommand's usage.
        return args.func(args.parser, args)
    except KeyboardInterrupt:
        # Temporary files are already gone (see cli_output.atomic_output); only the traceback
        # is noise.
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`llm-codecs info x | head`): stop quietly. Pointing stdout at
        # /dev/null keeps the interpreter's final flush from raising a second time.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


# --------------------------------------------------------------------------------------------
# Shared file handling


def _error(message: str, name: str | None = None) -> None:
    prefix = f"{PROG}: {name}: " if name is not None else f"{PROG}: "
    print(prefix + message, file=sys.stderr, flush=True)


def _describe(exc: BaseException, name: str) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        # Name the other path when the failure is not about the input itself.
        if exc.filename is not None and os.fsdecode(exc.filename) != name:
            return f"{os.fsdecode(exc.filename)}: {exc.strerror}"
        return exc.strerror
    return str(exc)


def _run_per_file(files: list[str], work: Callable[[str], None]) -> int:
    """Call ``work(name)`` for each file; report expected failures and go on with the next."""
    status = EXIT_OK
    for name in files:
        try:
            work(name)
        except BrokenPipeError:
            raise
        except (CodecError, OSError, _FileError) as exc:
            _error(_describe(exc, name), name)
            status = EXIT_ERROR
    return status


def _stdout_binary() -> BinaryIO:
    return getattr(sys.stdout, "buffer", sys.stdout)


def _stdin_binary() -> BinaryIO:
    return getattr(sys.stdin, "buffer", sys.stdin)


class _Progress(tqdm):
    """A bar whose ETA follows the average rate, and that says what happens before the first
    block: loading a model and, on a first run, compiling kernels take seconds to a minute,
    which a silent bar at 0% would hide."""

    def starting(self, what: str) -> None:
        if not self.disable:
            self._starting = True
            self.set_postfix_str(what)

    def update(self, n: float | None = 1) -> bool | None:
        if not getattr(self, "_starting", False):
            return super().update(n)
        self._starting = False
        self.set_postfix_str("", refresh=False)
        shown = super().update(n)
        # The start-up is not coding time: the rate (and so the ETA) counts from here on.
        self.initial, self.start_t = self.n, self._time()
        return shown


def _progress(total: int | None, name: str, quiet: bool) -> _Progress:
    # Only a person watching a terminal wants a bar; logs and pipes must not fill with it, and
    # it must never touch stdout, which may carry the data. smoothing=0: the ETA follows the
    # average rate, not the last block's (blocks arrive in bursts of several seconds).
    return _Progress(
        total=total,
        desc=name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
        smoothing=0,
        disable=quiet or not _isatty(sys.stderr),
    )


#: What the bar says until the first block is done.
_STARTING = "starting: loading the model; a first run also compiles kernels (up to a minute)"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass
class _Job:
    """Where one input goes and what happens to it afterwards."""

    name: str  # as given on the command line, for messages
    dest: str | None  # None: standard output
    remove_input: bool


def _plan(name: str, args: argparse.Namespace, default_dest: Callable[[str], str]) -> _Job:
    is_stdin = name == "-"
    if args.stdout:
        dest = None
    elif args.output is not None and args.output != "-":
        dest = args.output
    elif is_stdin or args.output == "-":
        dest = None
    else:
        dest = default_dest(name)
    if dest is not None and not is_stdin and _same_file(name, dest):
        raise _FileError(f"output {dest} is the input file")
    # Checked again just before the rename; failing here saves reading the whole input first.
    if dest is not None:
        check_destination(dest, args.force)
    remove = not args.keep and dest is not None and not is_stdin
    return _Job(name, dest, remove)


def _open_input(name: str) -> tuple[BinaryIO, os.stat_result | None, bool]:
    """Open an input; return it, its stat (None for stdin) and whether we own (close) it."""
    if name == "-":
        return _stdin_binary(), None, False
    if os.path.isdir(name):
        raise _FileError("is a directory")
    f = open(name, "rb")  # noqa: SIM115 - closed by the caller, after the output is in place
    return f, os.fstat(f.fileno()), True


def _finish(job: _Job, source_stat: os.stat_result | None) -> None:
    # Only regular files are ever removed: a FIFO or device given as input is not ours to unlink.
    if job.remove_input and source_stat is not None and stat.S_ISREG(source_stat.st_mode):
        os.unlink(job.name)


def _write(job: _Job, force: bool, source_stat: os.stat_result | None,
           body: Callable[[BinaryIO], None]) -> None:
    if job.dest is None:
        out = _stdout_binary()
        body(out)
        out.flush()
    else:
        with atomic_output(job.dest, force, source_stat) as out:
            body(out)


# --------------------------------------------------------------------------------------------
# compress


def _check_single_output(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.output is not None and args.stdout:
        parser.error("-o/--output and -c/--stdout are mutually exclusive")
    if args.output is not None and len(args.files) > 1:
        parser.error("-o/--output takes a single input file")
    if args.files.count("-") > 1:
        parser.error("standard input ('-') can only be read once")


def cmd_compress(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``llm-codecs compress``: each FILE to FILE.llmz via :func:`compress_stream`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        For usage errors (bad codec parameters are reported before any file is touched).
    args : argparse.Namespace
        The parsed options of the subcommand.

    Returns
    -------
    int
        0 when every file was compressed, 1 otherwise.
    """
    _check_single_output(parser, args)
    if args.stdout and len(args.files) > 1:
        # Unlike gzip members, concatenated LLMZ frames are not one valid frame.
        parser.error("-c/--stdout takes a single input file (frames cannot be concatenated)")
    params = _codec_params(args, args.codec)
    try:
        codec = make_codec(args.codec, **params)
        block_size = check_block_size(codec, args.block_size)
    except CodecError as exc:
        parser.error(str(exc))
    writes_stdout = args.stdout or ("-" in args.files and args.output in (None, "-"))
    if writes_stdout and not args.force and _isatty(sys.stdout):
        _error("compressed data not written to a terminal; use -f to force")
        return EXIT_ERROR

    def work(name: str) -> None:
        if name != "-" and name.endswith(SUFFIX) and not args.force:
            raise _FileError(f"already has {SUFFIX} suffix; unchanged (use -f to compress anyway)")
        job = _plan(name, args, lambda n: n + SUFFIX)
        src, source_stat, owned = _open_input(name)
        try:
            regular = source_stat is not None and stat.S_ISREG(source_stat.st_mode)
            total = source_stat.st_size if regular else None
            with _progress(total, name, args.quiet) as bar:
                if codec.models_text:
                    bar.starting(_STARTING)
                _write(job, args.force, source_stat, lambda out: compress_stream(
                    src, out, codec, block_size=block_size, progress=bar.update))
        finally:
            if owned:
                src.close()
        _finish(job, source_stat)

    return _run_per_file(args.files, work)


# --------------------------------------------------------------------------------------------
# decompress


def _original_size(f: BinaryIO) -> int | None:
    """Original size a frame records, for the progress bar's total; None if unsure.

    From the frame's head or footer alone (:func:`~llm_codecs.frame.frame_original_size`, CRC
    checked): opening the whole frame is left to the decoder, which reports any damage.
    """

    def read_at(offset: int, n: int) -> bytes:
        f.seek(offset)
        return f.read(n)

    try:
        size = frame_original_size(read_at, f.seek(0, os.SEEK_END))
        f.seek(0)
        return size
    except (OSError, ValueError):
        return None


def _spool_stdin() -> BinaryIO:
    # A frame is read from its footer backwards, so a pipe must be made seekable first.
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX)  # noqa: SIM115 - caller closes
    try:
        shutil.copyfileobj(_stdin_binary(), spool, _COPY_CHUNK)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _extract_range(src: BinaryIO, out: BinaryIO, offset: int, size: int | None, bar,
                   model: str | None = None) -> None:
    reader = FrameReader(src, model=model)
    stop = reader.size if size is None else min(reader.size, offset + size)
    bar.reset(total=max(0, stop - offset))
    bs = reader.unit_size
    position = offset
    # One block-aligned piece at a time: each block is decoded once and memory stays bounded.
    while position < stop:
        piece = reader.read(position, min(stop, (position // bs + 1) * bs) - position)
        out.write(piece)
        bar.update(len(piece))
        position += len(piece)


def cmd_decompress(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``llm-codecs decompress``: each FILE.llmz to FILE via :func:`decompress_stream`.

    With ``--offset``/``--size`` only that range of the original is extracted (through
    :meth:`FrameReader.read`, decoding only the blocks that hold it) and the input is kept.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        For usage errors.
    args : argparse.Namespace
        The parsed options of the subcommand.

    Returns
    -------
    int
        0 when every file was decompressed, 1 otherwise.
    """
    _check_single_output(parser, args)
    ranged = args.offset is not None or args.size is not None
    if ranged:
        # A part of the original never replaces the whole frame.
        args.keep = True

    def default_dest(name: str) -> str:
        if not name.endswith(SUFFIX) or name == SUFFIX or name.endswith(os.sep + SUFFIX):
            raise _FileError(f"unknown suffix, expected {SUFFIX}; use -o or -c to name the output")
        return name[: -len(SUFFIX)]

    def work(name: str) -> None:
        job = _plan(name, args, default_dest)
        if name == "-":
            src, source_stat, owned = _spool_stdin(), None, True
        else:
            src, source_stat, owned = _open_input(name)
        try:
            total = _original_size(src)
            with _progress(total, name, args.quiet) as bar:
                if ranged:
                    _write(job, args.force, source_stat,
                           lambda out: _extract_range(src, out, args.offset or 0, args.size, bar,
                                                      args.model))
                else:
                    _write(job, args.force, source_stat,
                           lambda out: decompress_stream(src, out, progress=bar.update,
                                                         model=args.model))
        finally:
            if owned:
                src.close()
        _finish(job, source_stat)

    return _run_per_file(args.files, work)


# --------------------------------------------------------------------------------------------
# info


def method_name(method: int) -> str:
    """Return the name of a per-block method byte (``stored``, ``huffman``, ``lz77``, ...).

    Parameters
    ----------
    method : int
        The method byte of a block index entry.

    Returns
    -------
    str
        The registered codec name, ``stored`` for 0, or ``method N`` when unknown.
    """
    if method == METHOD_STORED:
        return "stored"
    return codec_name_for_method(method) or f"method {method}"


def _human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            value = n / (1 << shift)
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"
    return f"{n} B"


def _ratio(original: int, compressed: int) -> tuple[str, str]:
    if original == 0 or compressed == 0:
        return "n/a", "n/a"
    return f"{original / compressed:.3f}", f"{8 * compressed / original:.3f}"


def _describe_frame(name: str, reader: FrameReader, verbose: bool) -> list[str]:
    h = reader.header
    ratio, bpb = _ratio(reader.size, reader.frame_size)
    counts = Counter(e.method for e in reader.blocks)
    per_method = ", ".join(f"{method_name(m)}: {n}" for m, n in sorted(counts.items()))
    fingerprint = json.dumps(h.fingerprint, sort_keys=True) if h.fingerprint else "none"
    lines = [
        f"{name}:",
        f"  codec:          {h.codec}",
        f"  params:         {json.dumps(h.params, sort_keys=True)}",
        f"  block size:     {h.block_size:,} bytes ({_human(h.block_size)})",
        f"  format version: {reader.version}",
        f"  fingerprint:    {fingerprint}",
        f"  original size:  {reader.size:,} bytes",
        f"  frame size:     {reader.frame_size:,} bytes",
        f"  ratio:          {ratio}",
        f"  bits per byte:  {bpb}",
        f"  blocks:         {len(reader.blocks)}" + (f" ({per_method})" if per_method else ""),
    ]
    if h.layout is not None:
        width = f", {h.layout.itemsize} bytes per item" if h.layout.itemsize else ""
        lines.insert(6, f"  strings:        {h.layout.kind}{width}, coded as "
                        f"{reader.stored_size:,} bytes of text, separator "
                        f"{h.layout.separator:#04x}")
    if verbose and reader.blocks:
        lines.append(f"  {'block':>7} {'offset':>14} {'compressed':>12} {'original':>12}  method")
        lines += [
            f"  {i:>7} {e.offset:>14} {e.compressed_size:>12} {e.size:>12}  {method_name(e.method)}"
            for i, e in enumerate(reader.blocks)
        ]
    return lines


def cmd_info(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``llm-codecs info``: describe each frame from its header, footer and block index.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        For usage errors.
    args : argparse.Namespace
        The parsed options of the subcommand.

    Returns
    -------
    int
        0 when every file is a readable frame, 1 otherwise.
    """
    if args.files.count("-") > 1:
        parser.error("standard input ('-') can only be read once")
    first = True

    def work(name: str) -> None:
        nonlocal first
        if name == "-":
            src = _spool_stdin()
        elif os.path.isdir(name):
            raise _FileError("is a directory")
        else:
            src = open(name, "rb")  # noqa: SIM115 - closed below
        with src:
            lines = _describe_frame(name, FrameReader(src), args.verbose)
        if not first:
            print()
        first = False
        print("\n".join(lines), flush=True)

    return _run_per_file(args.files, work)


# --------------------------------------------------------------------------------------------
# models


def cmd_models(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``llm-codecs models``: the models this machine can decode with, and their hashes.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        For usage errors.
    args : argparse.Namespace
        The parsed options of the subcommand.

    Returns
    -------
    int
        0; a directory that cannot be loaded is reported on standard error.
    """
    from .models.finding import available_models

    rows = [("NAME", "SHA256", "WHERE")]
    for info in available_models(dtype=args.dtype):
        if info.sha256 is None:
            _error(f"cannot be loaded: {info.error}", info.path)
            continue
        rows.append((info.name, info.sha256, f"{info.where}: {info.path}"))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, sha, where in rows:
        print(f"{name:<{widths[0]}}  {sha:<{widths[1]}}  {where}")
    sys.stdout.flush()
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# bench


def _best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _mb_per_s(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:.1f}" if seconds > 0 else "inf"


def _our_label(codec: BlockCodec) -> str:
    params = codec.params()
    label = codec.name
    if "level" in params:
        label += f"-{params['level']}"
    defaults = make_codec(codec.name).params()
    # Only what differs from the codec's defaults, and always the model: labels stay short.
    rest = {k: v for k, v in params.items()
            if k != "level" and (k == "model" or defaults.get(k) != v)}
    if rest:
        label += " " + ",".join(f"{k}={v}" for k, v in sorted(rest.items()))
    return label


def _takes_level(name: str) -> bool:
    import inspect

    try:
        return "level" in inspect.signature(codec_class(name)).parameters
    except (TypeError, ValueError):
        return False


#: Throughput the model codec's estimates assume (bytes per second, each direction): the
#: embedded model on two cores (docs/benchmarks.md).
_MODEL_BYTES_PER_SECOND = 30_000


def _fast_codecs() -> list[str]:
    """Our codecs that ``bench`` runs by default: those that need no model."""
    return [n for n in codec_names() if not codec_class(n).models_text]


def _model_seconds(files: list[str]) -> float:
    """Rough seconds for the model codec to compress and decompress ``files`` once."""
    total = 0
    for name in files:
        with contextlib.suppress(OSError):
            total += os.path.getsize(name)
    return 2 * total / _MODEL_BYTES_PER_SECOND


def cmd_bench(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run ``llm-codecs bench``: a size/ratio/speed table per file, ours against classic codecs.

    Each file is read into memory; our codecs are checked to round-trip exactly, and the
    fastest of ``--repeat`` runs is reported (after a warm-up, so JIT compilation is not timed).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        For usage errors.
    args : argparse.Namespace
        The parsed options of the subcommand.

    Returns
    -------
    int
        0 on success, 1 if a file could not be read or one of our codecs failed to round-trip.
    """
    names = args.codec or _fast_codecs()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    slow = [n for n in codec_names() if codec_class(n).models_text]
    if args.codec is None:
        print(f"note: {', '.join(slow)} not run (ask with --codec); the model would take about "
              f"{_model_seconds(args.files):.0f} s on these files", file=sys.stderr)
    elif set(slow) & set(names):
        print(f"note: {', '.join(sorted(set(slow) & set(names)))} codes tens of KB/s: about "
              f"{_model_seconds(args.files):.0f} s on these files, timed once (not --repeat)",
              file=sys.stderr)
    ours: list[tuple[BlockCodec, int | None]] = []
    try:
        for name in names:
            # An explicit --level goes to the codecs that have levels; the others run as they are.
            params = _codec_params(args, name)
            if name != "llm":
                params.pop("model", None)
                params.pop("numerics", None)
            codec = make_codec(name, **params)
            ours.append((codec, check_block_size(codec, args.block_size)))
    except CodecError as exc:
        parser.error(str(exc))
    if args.level is not None and not any(_takes_level(n) for n in names):
        parser.error(f"--level: none of {', '.join(names)} takes a level")
    status = EXIT_OK

    def work(name: str) -> None:
        nonlocal status
        with open(name, "rb") as f:
            data = f.read()
        rows: list[tuple[str, ...]] = []
        for codec, block_size in ours:
            label = _our_label(codec) + (f" bs={_human(block_size)}" if args.block_size else "")
            try:
                # Warm-up: the first call may JIT-compile, which is not what we measure.
                decompress(compress(data[:4096], codec, block_size=block_size))
                repeat = 1 if codec.models_text else args.repeat
                ct, frame = _best_time(
                    lambda c=codec, b=block_size: compress(data, c, block_size=b), repeat
                )
                dt, back = _best_time(lambda fr=frame: decompress(fr), repeat)
            except CodecError as exc:
                _error(f"{label}: {exc}", name)
                status = EXIT_ERROR
                rows.append((label, "FAILED"))
                continue
            if back != data:
                _error(f"{label}: round trip FAILED (decompressed bytes differ)", name)
                status = EXIT_ERROR
                rows.append((label, "ROUND TRIP FAILED"))
                continue
            rows.append(_row(label, len(data), len(frame), ct, dt))
        for family in args.against:
            for label in FAMILIES[family]:
                try:
                    comp, decomp = load_baseline(label)
                except ImportError:
                    rows.append((label, "not installed"))
                    continue
                ct, frame = _best_time(lambda c=comp: c(data), args.repeat)
                dt, _ = _best_time(lambda d=decomp, fr=frame: d(fr), args.repeat)
                rows.append(_row(label, len(data), len(frame), ct, dt))
        print(f"{name}: {len(data):,} bytes")
        print(_table(rows))
        print(flush=True)

    file_status = _run_per_file(args.files, work)
    return max(status, file_status)


def _row(label: str, original: int, compressed: int, ct: float, dt: float) -> tuple[str, ...]:
    ratio, bpb = _ratio(original, compressed)
    return (label, f"{compressed:,}", ratio, bpb, _mb_per_s(original, ct), _mb_per_s(original, dt))


def _table(rows: list[tuple[str, ...]]) -> str:
    header = ("codec", "compressed", "ratio", "bits/byte", "comp MB/s", "decomp MB/s")
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(r[i]) for r in [header, *full]) for i in range(len(header))]
    widths[0] = max(widths[0], *(len(r[0]) for r in rows))

    def fmt(r: tuple[str, ...]) -> str:
        if len(r) != len(header):  # a note such as "not installed" spans the numeric columns
            return f"  {r[0]:<{widths[0]}}  {r[1]}"
        cells = [f"{r[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(r[1:], widths[1:],
                                                                          strict=True)]
        return "  " + "  ".join(cells)

    return "\n".join(fmt(r) for r in [header, *rows])


__all__ = ["build_parser", "cmd_bench", "cmd_compress", "cmd_decompress", "cmd_info",
           "cmd_models", "main", "method_name", "parse_size"]
