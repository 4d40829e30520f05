"""Where the command line's output files go: written next to their destination under a
temporary name, moved into place only when complete, and never over anything but a regular file.

gzip's rules, plus two for crashes: a write error names the output (the disk that filled up is
the output's), and a temporary file left behind by a killed run is removed by the next run that
writes the same output, when its name proves that the run that made it is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["FileError", "atomic_output", "check_destination", "remove_stale_temporaries"]

#: Marks our temporary files, with the host and process that made them.
_TMP_TAG = "llm-codecs"
_TMP_SUFFIX = ".tmp"


class FileError(Exception):
    """An expected per-file failure whose message is already fit for the user."""


def check_destination(dest: str, force: bool) -> None:
    """Refuse to write ``dest`` if it exists, unless ``force`` and it is a regular file.

    Like gzip, ``-f`` replaces a file, never a device node, FIFO, socket, directory or symbolic
    link: replacing ``/dev/null`` or a link to elsewhere is never what was meant.

    Raises
    ------
    FileError
        ``dest`` exists and may not be replaced.
    """
    try:
        info = os.lstat(dest)
    except FileNotFoundError:
        return
    if not force:
        raise FileError(f"{dest} already exists; use -f to overwrite")
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"{dest} exists and is not a regular file; not overwritten")


def _default_mode() -> int:
    # mkstemp creates 0600 files; an output with no input file to copy from should get what
    # open() would have given it. Reading the umask means setting it, so set it straight back.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _copy_metadata(path: str, source_stat: os.stat_result | None) -> None:
    # Like gzip: the output keeps the input's permissions and modification time. Best effort:
    # failing to set them is no reason to lose a good output.
    with contextlib.suppress(OSError):
        if source_stat is None:
            os.chmod(path, _default_mode())
        else:
            os.chmod(path, stat.S_IMODE(source_stat.st_mode))
            os.utime(path, ns=(source_stat.st_atime_ns, source_stat.st_mtime_ns))


def _host() -> str:
    # Process ids mean something on one host only (the directory may be shared over NFS).
    return re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:32] or "host"


def _tmp_stem(dest: str) -> str:
    """What every temporary name of ``dest`` made on this host starts with; the maker's process
    id, a dot, ``mkstemp``'s random letters and :data:`_TMP_SUFFIX` follow."""
    return f".{os.path.basename(dest)}.{_TMP_TAG}-{_host()}-"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but is someone else's
        return False
    return False


def remove_stale_temporaries(dest: str) -> list[str]:
    """Remove the temporary files of ``dest`` that killed runs on this host left behind.

    Only files named as :func:`atomic_output` names them, for this output, this host and a
    process that no longer exists, regular and owned by this user: a live run's file, another
    program's, or one whose maker cannot be known stays. Returns the paths removed.
    """
    directory = os.path.dirname(os.path.abspath(dest))
    pattern = re.compile(re.escape(_tmp_stem(dest)) + r"(\d+)\.[a-z0-9_]+"
                         + re.escape(_TMP_SUFFIX))
    removed = []
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
                        and _process_gone(int(match.group(1)))):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


class _NamedWrites:
    """A file whose write errors name it: a full disk is the output's, not the input's."""

    def __init__(self, raw: BinaryIO, name: str):
        self._raw, self._name = raw, name

    def write(self, data) -> int:
        try:
            return self._raw.write(data)
        except OSError as exc:
            raise _named(exc, self._name) from None

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as exc:
            raise _named(exc, self._name) from None

    def __getattr__(self, attr):
        return getattr(self._raw, attr)


def _named(exc: OSError, name: str) -> OSError:
    return exc if exc.filename is not None else OSError(exc.errno, exc.strerror, name)


@contextlib.contextmanager
def atomic_output(
    dest: str, force: bool, source_stat: os.stat_result | None
) -> Iterator[BinaryIO]:
    """Yield a temporary file next to ``dest`` that replaces ``dest`` only on success.

    Anything that escapes the ``with`` body (errors, Ctrl-C) removes the temporary file, so an
    interrupted run never leaves a partial output under the real name; one killed outright
    (``kill -9``, a power cut) leaves it, and the next run writing ``dest`` removes it
    (:func:`remove_stale_temporaries`). Write errors name ``dest``. ``dest`` is checked by
    :func:`check_destination` before and again just before it is replaced.
    """
    check_destination(dest, force)
    remove_stale_temporaries(dest)
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{_tmp_stem(dest)}{os.getpid()}.", suffix=_TMP_SUFFIX,
                                   dir=directory)
    except OSError as exc:
        # The candidate temp name in the error would only confuse; name the real output.
        raise OSError(exc.errno, exc.strerror, dest) from None
    raw = os.fdopen(fd, "wb")
    try:
        out = _NamedWrites(raw, dest)
        yield out
        out.flush()
        try:
            os.fsync(raw.fileno())
            raw.close()
        except OSError as exc:
            raise _named(exc, dest) from None
        _copy_metadata(tmp, source_stat)
        # Re-check: something may have created dest while we were busy; still no clobbering.
        check_destination(dest, force)
        os.replace(tmp, dest)
    except BaseException:
        # Closing flushes what is buffered: on a full disk that fails again, and must not
        # replace the error being reported.
        with contextlib.suppress(OSError):
            raw.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
