"""Remember which model directory has which hash, so that finding a model by hash is cheap.

A frame names its model by the sha256 of its weights and tokenizer (:mod:`.loading`), which is
known only after loading the model. This module keeps, in one small JSON file, the hash each
directory loaded as, keyed by everything the hash could depend on: the directory's real path,
the name, size and modification time of each of its files, the dtype, and the torch and
transformers versions. A lookup then needs only a few ``stat`` calls, no torch.

The memo is a hint, never a proof: a model found through it is loaded and hashed again before
it decodes anything, so a stale or tampered memo can cost a wasted load or a missed model, never
wrong bytes. Writes are atomic (a temporary file renamed into place); a write lost to a race
with another process costs one more hash later. It lives in ``$LLM_CODECS_CACHE_DIR`` (an empty
value disables it), else ``$XDG_CACHE_HOME/llm_codecs``, else ``~/.cache/llm_codecs``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from functools import cache
from pathlib import Path

__all__ = ["directory_signature", "lookup", "memo_path", "remember", "remembered"]

#: Bump when the model hash (:func:`.loading._hash_model`) changes meaning.
HASH_SCHEME = 1
#: Most entries kept; the least recently used go first.
MAX_ENTRIES = 512
_FILE = "model-hashes.json"
_lock = threading.Lock()


def memo_path() -> Path | None:
    """The memo file, or None when ``LLM_CODECS_CACHE_DIR`` is set empty (no memo)."""
    configured = os.environ.get("LLM_CODECS_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() / _FILE if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "llm_codecs" / _FILE


@cache
def _software() -> tuple[str, ...]:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("torch", "transformers"):
        try:
            found.append(f"{name}={version(name)}")
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            found.append(f"{name}=?")
    return (f"scheme={HASH_SCHEME}", *found)


def directory_signature(path: str | os.PathLike) -> str | None:
    """A digest of what a model directory's hash depends on, or None if it is not one.

    Covers the real path, each top-level file's name, size and modification time (symbolic
    links followed, as in the HuggingFace cache), and the torch and transformers versions.
    """
    real = os.path.realpath(path)
    entries = []
    try:
        with os.scandir(real) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    if entry.is_file():
                        st = entry.stat()
                        entries.append((entry.name, st.st_size, st.st_mtime_ns))
    except OSError:
        return None
    if not any(name == "config.json" for name, _, _ in entries):
        return None
    text = json.dumps([real, sorted(entries), _software()])
    return hashlib.sha256(text.encode()).hexdigest()


def _read(path: Path) -> dict[str, dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items()
            if isinstance(v, dict) and isinstance(v.get("sha256"), str)
            and isinstance(v.get("path"), str) and isinstance(v.get("dtype"), str)}


def lookup(path: str | os.PathLike, dtype: str) -> str | None:
    """The remembered hash of the model in ``path`` loaded as ``dtype``, if still valid."""
    memo = memo_path()
    signature = directory_signature(path)
    if memo is None or signature is None:
        return None
    entry = _read(memo).get(f"{signature}:{dtype}")
    return entry["sha256"] if entry else None


def remembered(dtype: str, sha256: str | None = None) -> list[tuple[str, str]]:
    """``(directory, hash)`` of the models loaded before in ``dtype`` (with ``sha256`` only,
    when given) whose directories are unchanged since, most recently used first."""
    memo = memo_path()
    if memo is None:
        return []
    found: list[tuple[str, str]] = []
    entries = sorted(_read(memo).items(), key=lambda kv: -float(kv[1].get("used", 0)))
    for key, entry in entries:
        if (entry["dtype"] != dtype or (sha256 is not None and entry["sha256"] != sha256)
                or any(path == entry["path"] for path, _ in found)):
            continue
        if key == f"{directory_signature(entry['path'])}:{dtype}":
            found.append((entry["path"], entry["sha256"]))
    return found


def remember(path: str | os.PathLike, dtype: str, sha256: str) -> None:
    """Record that ``path`` loads as ``sha256`` in ``dtype`` (best effort, never raises)."""
    memo = memo_path()
    signature = directory_signature(path)
    if memo is None or signature is None:
        return
    key = f"{signature}:{dtype}"
    with _lock:
        entries = _read(memo)
        old = entries.get(key)
        if old and old["sha256"] == sha256 and time.time() - float(old.get("used", 0)) < 3600:
            return  # nothing new worth a write
        entries[key] = {"path": os.path.realpath(path), "dtype": dtype, "sha256": sha256,
                        "used": time.time()}
        if len(entries) > MAX_ENTRIES:
            keep = sorted(entries.items(), key=lambda kv: -float(kv[1].get("used", 0)))
            entries = dict(keep[:MAX_ENTRIES])
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".model-hashes.", suffix=".tmp", dir=memo.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"version": 1, "entries": entries}, f, indent=0, sort_keys=True)
                os.replace(tmp, memo)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError:
            pass
