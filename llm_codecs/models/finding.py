"""Find the model a frame names by its hash, among the models this machine already has.

A frame records its model's identity, ``{"name", "revision", "sha256"}``. The name is only a
hint: it may be a relative path typed on another machine, a directory that has moved, or a hub
id. :func:`find_model` returns a loaded model with the frame's sha256, looking, in this order:

1. at the models the caller offers (``decompress(frame, model=...)``,
   ``llm-codecs decompress --model``, the model configured on a numcodecs, Zarr or fsspec codec);
2. at the model the frame names, if it is here: ``"default"`` (the embedded model), an existing
   directory, or a hub id in the local HuggingFace cache (at the frame's revision first);
3. at the directories this machine loaded a model with that hash from before (remembered by
   :mod:`.hashes`);
4. at the model directories on ``LLM_CODECS_MODEL_PATH`` (``os.pathsep``-separated; each entry
   is a model directory or a directory of model directories);
5. at the embedded model;
6. at every model in the local HuggingFace cache.

A candidate whose hash is already known (in memory or in the memo of :mod:`.hashes`) and differs
is skipped without loading; the others are loaded and hashed, once. Nothing here uses the
network: a frame never makes the decoder download a model. When no candidate has the hash,
:class:`~llm_codecs.ModelMismatchError` names the model, its revision and hash, what was looked
at, and how to make the model available.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CorruptDataError, ModelMismatchError
from . import hashes, loading
from .loading import DEFAULT_MODEL_DIR, LoadedModel

__all__ = ["Candidate", "ModelInfo", "available_models", "check_identity", "find_model",
           "hub_cache_dir"]

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REF = re.compile(r"[\w.\-]+(/[\w.\-]+)*")
#: Places named in an error message before "and N more".
_MAX_NOTES = 8


@dataclass(frozen=True)
class Candidate:
    """A local model directory that may be the one a frame needs."""

    path: str
    #: How to show it: ``default``, a directory's name, ``org/name@main``.
    name: str
    #: Why it is a candidate: ``given``, ``named by the frame``, ``used before``,
    #: ``LLM_CODECS_MODEL_PATH``, ``embedded``, ``HuggingFace cache``.
    where: str

    def __str__(self) -> str:
        return f"{self.name} ({self.where}: {self.path})"


@dataclass(frozen=True)
class ModelInfo:
    """A model this machine can decode with (:func:`available_models`)."""

    name: str
    where: str
    path: str
    #: None when it could not be loaded (``error`` says why).
    sha256: str | None
    error: str | None = None


def check_identity(identity: Any) -> dict[str, Any]:
    """A frame's model identity, validated: sha256 of 64 hex digits, string name and revision.

    Raises
    ------
    CorruptDataError
        The identity is not one this package writes.
    """
    if (not isinstance(identity, dict) or not isinstance(identity.get("sha256"), str)
            or not _SHA256.fullmatch(identity["sha256"])
            or not isinstance(identity.get("name"), str | None)
            or not isinstance(identity.get("revision"), str | None)):
        raise CorruptDataError("LLM frame with a malformed model fingerprint")
    return identity


def hub_cache_dir() -> Path:
    """The local HuggingFace hub cache (``HF_HUB_CACHE``, ``HF_HOME``/hub, ...)."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - a dependency of transformers
        home = os.environ.get("HF_HOME") or os.path.join("~", ".cache", "huggingface")
        return Path(os.environ.get("HF_HUB_CACHE") or os.path.join(home, "hub")).expanduser()


def _is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.fullmatch(name)) and ".." not in name


def _is_model_dir(path: str | os.PathLike) -> bool:
    return os.path.isfile(os.path.join(path, "config.json"))


def _refs(repo: Path) -> dict[str, list[str]]:
    """commit -> the refs (``main``, ``pr/1``) that point at it, in a cached hub repo."""
    found: dict[str, list[str]] = {}
    root = repo / "refs"
    for dirpath, _, files in os.walk(root):
        for file in files:
            path = Path(dirpath) / file
            try:
                commit = path.read_text().strip()
            except OSError:
                continue
            found.setdefault(commit, []).append(path.relative_to(root).as_posix())
    return found


def _hub_snapshots(repo_id: str, revision: str | None, where: str) -> list[Candidate]:
    """Cached snapshots of ``repo_id``: the one ``revision`` (``main``) names first."""
    if not _is_hub_id(repo_id):
        return []
    repo = hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    try:
        snapshots = sorted(p for p in (repo / "snapshots").iterdir() if _is_model_dir(p))
    except OSError:
        return []
    refs = _refs(repo)
    ref = revision or "main"
    wanted = ref if _COMMIT.fullmatch(ref) else next(
        (commit for commit, names in refs.items() if ref in names), None)
    snapshots.sort(key=lambda p: p.name != wanted)
    return [Candidate(str(p), f"{repo_id}@{(refs.get(p.name) or [p.name[:12]])[0]}", where)
            for p in snapshots]


def _local(spec: str, revision: str | None, where: str) -> tuple[list[Candidate], str | None]:
    """The local directories ``spec`` (a name, path or hub id) stands for, or why none."""
    if spec == "default":
        return [Candidate(str(DEFAULT_MODEL_DIR), "default", where)], None
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        if not _is_model_dir(path):
            return [], f"{spec!r} ({where}): a directory without config.json"
        return [Candidate(path, spec, where)], None
    found = _hub_snapshots(spec, revision, where)
    if found:
        return found, None
    if _is_hub_id(spec):
        return [], (f"{spec!r} ({where}): no such directory here, and not in the HuggingFace "
                    f"cache ({hub_cache_dir()})")
    return [], f"{spec!r} ({where}): no such directory here"


def search_path_models() -> list[Candidate]:
    """The model directories ``LLM_CODECS_MODEL_PATH`` names, in its order."""
    found = []
    for entry in os.environ.get("LLM_CODECS_MODEL_PATH", "").split(os.pathsep):
        entry = os.path.expanduser(entry.strip())
        if not entry:
            continue
        if _is_model_dir(entry):
            found.append(Candidate(entry, os.path.basename(entry.rstrip(os.sep)),
                                   "LLM_CODECS_MODEL_PATH"))
            continue
        try:
            subdirs = sorted(e.path for e in os.scandir(entry) if e.is_dir())
        except OSError:
            continue
        found += [Candidate(p, os.path.basename(p), "LLM_CODECS_MODEL_PATH")
                  for p in subdirs if _is_model_dir(p)]
    return found


def hub_cache_models() -> list[Candidate]:
    """Every model snapshot in the local HuggingFace cache."""
    try:
        repos = sorted(p for p in hub_cache_dir().iterdir() if p.name.startswith("models--"))
    except OSError:
        return []
    found = []
    for repo in repos:
        repo_id = repo.name[len("models--"):].replace("--", "/")
        found += _hub_snapshots(repo_id, None, "HuggingFace cache")
    return found


def _embedded() -> Candidate:
    return Candidate(str(DEFAULT_MODEL_DIR), "default", "embedded")


def _candidates(identity: dict[str, Any], dtype: str, offered: Iterable[str],
                hints: Iterable[tuple[str | None, str | None]],
                notes: list[str]) -> Iterator[Candidate]:
    """Where to look, best first (see the module docstring); lazily, since the first usually
    has the hash. Why a named model is not here goes to ``notes``."""
    for spec in offered:
        found, why = _local(spec, identity.get("revision"), "given")
        if why:
            notes.append(why)
        yield from found
    names = []
    for spec, revision in hints:
        if isinstance(spec, str) and spec and (spec, revision) not in names:
            names.append((spec, revision))
            found, why = _local(spec, revision, "named by the frame")
            if why:
                notes.append(why)
            yield from found
    for path, _ in hashes.remembered(dtype, identity["sha256"]):
        yield Candidate(path, os.path.basename(path), "used before")
    # A directory named like the frame's model first: the likely one after a move.
    basenames = {os.path.basename(os.path.normpath(spec)) for spec, _ in names}
    yield from sorted(search_path_models(), key=lambda c: c.name not in basenames)
    yield _embedded()
    hub_names = {spec for spec, _ in names}
    yield from sorted(hub_cache_models(), key=lambda c: c.name.split("@")[0] not in hub_names)


def find_model(identity: dict[str, Any], *, device: str = "cpu", dtype: str = "float32",
               offered: Iterable[str | os.PathLike] = (),
               hints: Iterable[tuple[str | None, str | None]] = ()) -> LoadedModel:
    """A loaded model whose hash is ``identity["sha256"]``, found without the network.

    Parameters
    ----------
    identity : dict
        The frame's ``{"name", "revision", "sha256"}``.
    device, dtype : str
        As the frame was made with (the hash depends on the dtype).
    offered : iterable of str or path
        Models the caller offers, tried first: paths, hub ids (cached) or ``"default"``.
    hints : iterable of (name, revision)
        Other names the frame gives its model (its codec parameters).

    Returns
    -------
    LoadedModel
        Shared with every other user of that hash in the process; its identity is the frame's.

    Raises
    ------
    ModelMismatchError
        No model with that hash is here; the message says where it looked and what to do.
    CorruptDataError
        ``identity`` is malformed.
    """
    identity = check_identity(identity)
    sha, name, revision = identity["sha256"], identity.get("name"), identity.get("revision")
    loaded = loading.cached_model(sha, device, dtype)
    if loaded is not None:
        return loaded.named(name, revision)
    offered = [os.fspath(m) for m in offered]
    # One search at a time: threads decoding chunks of one array wait for the first to find it.
    with loading._load_lock:
        loaded = loading.cached_model(sha, device, dtype)
        if loaded is not None:
            return loaded.named(name, revision)
        notes: list[str] = []
        seen: set[str] = set()
        for candidate in _candidates(identity, dtype, offered, [(name, revision), *hints],
                                     notes):
            real = os.path.realpath(candidate.path)
            if real in seen:
                continue
            seen.add(real)
            known = loading.known_hash(candidate.path, device, dtype)
            if known is not None and known != sha:
                notes.append(f"{candidate}: sha256 {known[:16]}...")
                continue
            try:
                loaded = loading.load_directory(candidate.path, device=device, dtype=dtype,
                                                want=sha)
            except Exception as exc:  # any directory may hold anything: note it, go on
                notes.append(f"{candidate}: cannot be loaded ({_first_line(exc)})")
                continue
            if loaded.identity["sha256"] == sha:
                return loaded.named(name, revision)
            notes.append(f"{candidate}: sha256 {loaded.identity['sha256'][:16]}...")
        raise ModelMismatchError(_not_found(identity, notes))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "") or type(exc).__name__


def _not_found(identity: dict[str, Any], notes: list[str]) -> str:
    name, revision, sha = identity.get("name"), identity.get("revision"), identity["sha256"]
    text = (f"frame was made with model {name!r} (revision {revision}, sha256 {sha}), and no "
            "model with that hash is available here (decoding never downloads a model)")
    if notes:
        shown = notes[:_MAX_NOTES]
        more = len(notes) - len(shown)
        text += "; looked at: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    if not os.environ.get("LLM_CODECS_MODEL_PATH"):
        text += "; LLM_CODECS_MODEL_PATH is not set"
    text += (". To decode it, make that model available: pass it (llm_codecs.decompress(frame, "
             "model=PATH), llm-codecs decompress --model PATH), or put its directory on "
             "LLM_CODECS_MODEL_PATH (directories separated by os.pathsep)")
    if isinstance(name, str) and _is_hub_id(name):
        command = f"hf download {name}" + (f" --revision {revision}" if revision else "")
        text += (f"; if {name!r} is a HuggingFace hub model, download it once where the network "
                 f"is available (`{command}`): it is then found in the local HuggingFace cache, "
                 "also with HF_HUB_OFFLINE=1")
    return text + ". `llm-codecs models` lists the models found here."


def available_models(dtype: str = "float32", device: str = "cpu") -> list[ModelInfo]:
    """Every model this machine can decode with, and its hash in ``dtype``.

    The embedded model, the directories on ``LLM_CODECS_MODEL_PATH``, the local HuggingFace
    cache and the directories models were loaded from before. A model whose hash is not yet
    remembered is loaded once to compute it (then remembered, see :mod:`.hashes`).
    """
    candidates = [_embedded(), *search_path_models(), *hub_cache_models()]
    candidates += [Candidate(path, os.path.basename(path), "used before")
                   for path, _ in hashes.remembered(dtype)]
    found, seen = [], set()
    for candidate in candidates:
        real = os.path.realpath(candidate.path)
        if real in seen:
            continue
        seen.add(real)
        sha, error = loading.known_hash(candidate.path, device, dtype), None
        if sha is None:
            try:
                sha = loading.load_directory(candidate.path, device=device, dtype=dtype,
                                             keep=False).identity["sha256"]
            except Exception as exc:  # any directory may hold anything: report it
                error = _first_line(exc)
        found.append(ModelInfo(candidate.name, candidate.where, candidate.path, sha, error))
    return found
