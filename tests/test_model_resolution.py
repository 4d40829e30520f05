"""Models are found by identity (the sha256 a frame records), not by the path someone typed.

Issue 14 section 2 and issue 16 item 2: a frame made with a local directory decodes after the
directory moves or from another working directory, given a search path or an explicit model; a
model found nowhere, or a hub id that is not cached, fails at once without the network; a frame
header never makes the decoder load another copy of a model it already has.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import llm_codecs
from llm_codecs import ModelMismatchError, cli
from llm_codecs.codecs import make_codec
from llm_codecs.frame import _FOOTER, _INDEX_ENTRY, FOOTER_SIZE, FrameHeader, FrameReader, _crc
from llm_codecs.models import loading
from llm_codecs.models.loading import DEFAULT_MODEL_DIR

from .helpers import read_head

ROOT = Path(__file__).resolve().parents[1]
DATA = read_head("canterbury/alice29.txt", 400)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test: no loaded model, its own hash memo, no search path, an empty HF cache."""
    from huggingface_hub import constants

    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setenv("LLM_CODECS_CACHE_DIR", str(tmp_path / "memo"))
    monkeypatch.delenv("LLM_CODECS_MODEL_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    loading.clear_cache()
    yield
    loading.clear_cache()


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_models):
    """A pristine copy of a tiny Llama model, and a frame made with ``model="tiny_llama"``.

    The frame was made from the model's parent directory, with the relative name; the directory
    it was made from is gone, so only copies of the pristine model can decode it (each test
    has its own memo of models used before: the session's tiny Llama is not one of them).
    """
    root = tmp_path_factory.mktemp("resolution")
    pristine = place(Path(tiny_models["llama"]), root / "pristine" / "tiny_llama")
    work = root / "work"
    shutil.copytree(pristine, work / "tiny_llama")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        frame = llm_codecs.compress(DATA, "llm", model="tiny_llama", fallback=False, lanes=2)
    finally:
        os.chdir(cwd)
        loading.clear_cache()
    shutil.rmtree(work)
    header = FrameReader(frame).header
    assert header.params["model"] == "tiny_llama"
    return pristine, frame, header.fingerprint["model"]["sha256"]


def place(pristine: Path, where: Path) -> Path:
    """A copy of the pristine model at ``where`` (a moved or renamed model directory)."""
    shutil.copytree(pristine, where)
    return where


def reheader(frame: bytes, **model) -> bytes:
    """``frame`` with its header naming another model (``name``, ``revision``, ``sha256``)."""
    reader = FrameReader(frame)
    h = reader.header
    fingerprint = {**h.fingerprint, "model": {**h.fingerprint["model"], **model}}
    params = dict(h.params)
    params.update({k: v for k, v in model.items() if k in ("revision",)})
    if "name" in model:
        params["model"] = model["name"]
    head = FrameHeader(h.codec, params, h.block_size, fingerprint).to_bytes()
    shift = len(head) - reader.blocks[0].offset
    body = frame[reader.blocks[0].offset : reader.blocks[-1].offset
                 + reader.blocks[-1].compressed_size]
    index = b"".join(_INDEX_ENTRY.pack(e.offset + shift, e.compressed_size, e.size, e.method,
                                       e.payload_crc, e.data_crc) for e in reader.blocks)
    index_offset = len(head) + len(body)
    fields = (index_offset, len(reader.blocks), reader.size, _crc(index))
    partial = _FOOTER.pack(*fields, 0, b"ZMLL")[: FOOTER_SIZE - 8]
    return head + body + index + _FOOTER.pack(*fields, _crc(partial), b"ZMLL")


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to resolve a name or open a connection is recorded and refused."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def warm_default_hash():
    """Hash the embedded model once (memoised on disk), then forget every loaded model."""
    sha = loading.load_model("default").identity["sha256"]
    loading.clear_cache()
    return sha


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------


def test_moved_model_is_found_on_the_search_path_from_another_directory(made, tmp_path):
    pristine, frame, _ = made
    place(pristine, tmp_path / "store" / "renamed-llama")
    (tmp_path / "f.llmz").write_bytes(frame)
    (tmp_path / "orig").write_bytes(DATA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = textwrap.dedent("""
        import sys, llm_codecs
        frame, orig = (open(p, "rb").read() for p in sys.argv[1:])
        assert llm_codecs.decompress(frame) == orig
        print("ok")
    """)
    # A fresh process, in a directory where "tiny_llama" means nothing, with nothing loaded.
    env = subprocess_env(LLM_CODECS_MODEL_PATH=os.pathsep.join(
        [str(tmp_path / "missing"), str(tmp_path / "store")]))
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "f.llmz"),
                             str(tmp_path / "orig")], capture_output=True, text=True,
                            cwd=elsewhere, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_model_used_before_is_found_from_another_directory(made, tmp_path, monkeypatch):
    pristine, frame, _ = made
    home = tmp_path / "project"
    place(pristine, home / "tiny_llama")
    monkeypatch.chdir(home)
    llm_codecs.compress(b"remember this model " * 20, "llm", model="tiny_llama")
    loading.clear_cache()
    monkeypatch.chdir(tmp_path)  # "tiny_llama" names nothing here
    assert llm_codecs.decompress(frame) == DATA


def test_explicit_model_decodes_a_moved_model(made, tmp_path):
    import io

    pristine, frame, _ = made
    moved = place(pristine, tmp_path / "somewhere" / "else")
    assert llm_codecs.decompress(frame, model=str(moved)) == DATA
    loading.clear_cache()
    assert llm_codecs.open_frame(frame, model=moved).read(10, 20) == DATA[10:30]
    loading.clear_cache()
    out = io.BytesIO()
    assert llm_codecs.decompress_stream(io.BytesIO(frame), out, model=str(moved)) == len(DATA)
    assert out.getvalue() == DATA
    with pytest.raises(llm_codecs.CodecError, match="model must be"):
        llm_codecs.decompress(frame, model=42)
    with pytest.raises(llm_codecs.CodecError, match="codec or a model"):
        FrameReader(frame, codec=make_codec("lz77"), model=str(moved))


def test_model_found_nowhere_fails_fast_and_names_its_hash(made, no_network):
    _, frame, sha = made
    warm_default_hash()
    start = time.perf_counter()
    with pytest.raises(ModelMismatchError) as info:
        llm_codecs.decompress(frame)
    elapsed = time.perf_counter() - start
    assert elapsed < 2, f"took {elapsed:.1f} s"
    message = str(info.value)
    assert "tiny_llama" in message and sha in message
    assert "LLM_CODECS_MODEL_PATH" in message and "model=" in message
    assert not no_network


def test_hub_model_not_cached_fails_fast_without_network(made, no_network):
    _, frame, _ = made
    sha = "ab" * 32
    forged = reheader(frame, name="someorg/some-model", revision="v1.0", sha256=sha)
    warm_default_hash()
    start = time.perf_counter()
    with pytest.raises(ModelMismatchError) as info:
        llm_codecs.decompress(forged)
    elapsed = time.perf_counter() - start
    assert elapsed < 2, f"took {elapsed:.1f} s"
    message = str(info.value)
    for part in ("someorg/some-model", "v1.0", sha, "HF_HUB_OFFLINE", "download",
                 "LLM_CODECS_MODEL_PATH"):
        assert part in message, part
    assert not no_network, no_network


def test_hub_models_are_found_in_the_local_cache_by_hash(made, tmp_path, no_network):
    from huggingface_hub import constants

    pristine, frame, _ = made
    repo = Path(constants.HF_HUB_CACHE) / "models--someorg--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    place(pristine, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    # Named by hub id (and revision), as a frame made with model="someorg/tiny" would be ...
    assert llm_codecs.decompress(reheader(frame, name="someorg/tiny", revision="main")) == DATA
    loading.clear_cache()
    # ... or by a name this machine does not know: the hash finds it in the cache.
    assert llm_codecs.decompress(reheader(frame, name="gone/elsewhere")) == DATA
    assert not no_network


def test_aliases_of_the_default_model_share_one_copy(tmp_path, monkeypatch):
    data = b"aliases of one model share one loaded copy; " * 8
    frame = llm_codecs.compress(data, "llm", fallback=False, lanes=2)
    (tmp_path / "link").symlink_to(DEFAULT_MODEL_DIR)
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    monkeypatch.chdir(DEFAULT_MODEL_DIR.parent)
    aliases = [{"revision": f"r{i}"} for i in range(10)] + [
        {"name": str(DEFAULT_MODEL_DIR)}, {"name": str(DEFAULT_MODEL_DIR) + "/"},
        {"name": "default/"}, {"name": "./default"}, {"name": str(tmp_path / "link")},
        {"name": str(copy)}, {"name": str(copy), "revision": "main"},
        {"name": "someorg/not-the-default"}, {"name": "default", "revision": "x" * 40},
        {"name": "../models/default"},
    ]
    loaded = set()
    for alias in aliases:
        reader = llm_codecs.open_frame(reheader(frame, **alias))
        assert reader.read() == data
        loaded.add(id(reader.codec.loaded.model))
    assert len(loaded) == 1
    assert len(loading._cache) == 1
    # Compressing through aliases shares it too.
    for name in (str(DEFAULT_MODEL_DIR), str(tmp_path / "link"), str(copy)):
        codec = llm_codecs.codecs.make_codec("llm", model=name)
        assert id(codec.loaded.model) in loaded
        assert codec.loaded.identity["name"] == name
    assert len(loading._cache) == 1


def test_loaded_models_are_bounded(tiny_models, monkeypatch):
    monkeypatch.setenv("LLM_CODECS_MAX_MODELS", "2")
    models = [loading.load_model(tiny_models[f]) for f in ("gpt2", "llama", "qwen2")]
    models.append(loading.load_model("default"))
    assert len(loading._cache) == 2
    # The two most recent stay, and a path alias of one of them is the same copy.
    again = loading.load_model(tiny_models["qwen2"] + "/")
    assert again.model is models[2].model


def test_models_command_lists_what_can_decode(made, tmp_path, monkeypatch, capsys):
    pristine, _, sha = made
    place(pristine, tmp_path / "store" / "my-llama")
    monkeypatch.setenv("LLM_CODECS_MODEL_PATH", str(tmp_path / "store"))
    default_sha = warm_default_hash()
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert default_sha in rows["default"] and "embedded" in rows["default"]
    assert sha in rows["my-llama"] and str(tmp_path / "store" / "my-llama") in rows["my-llama"]
    assert "LLM_CODECS_MODEL_PATH" in rows["my-llama"]


def test_cli_decompress_takes_a_model(made, tmp_path, capsysbinary):
    pristine, frame, sha = made
    moved = place(pristine, tmp_path / "moved")
    path = tmp_path / "data.txt.llmz"
    path.write_bytes(frame)
    assert cli.main(["decompress", "-q", "--model", str(moved), "-c", str(path)]) == 0
    assert capsysbinary.readouterr().out == DATA
    loading.clear_cache()
    shutil.rmtree(moved)  # else it is found again, as a model used before
    assert cli.main(["decompress", "-q", "-c", str(path)]) == 1
    assert sha in capsysbinary.readouterr().err.decode()
    # info needs no model at all.
    assert cli.main(["info", str(path)]) == 0
    assert sha in capsysbinary.readouterr().out.decode()


def test_integrations_offer_their_model_for_decoding(made, tmp_path):
    import fsspec
    import numpy as np

    from llm_codecs.integrations.numcodecs import LLM

    pristine, frame, _ = made
    moved = str(place(pristine, tmp_path / "moved"))
    assert bytes(LLM(model=moved).decode(frame)) == DATA
    loading.clear_cache()
    out = np.empty(len(DATA), dtype=np.uint8)
    assert LLM(model=moved).decode(frame, out=out).tobytes() == DATA
    loading.clear_cache()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt.llmz").write_bytes(frame)
    fs = fsspec.filesystem("llmz", target_protocol="file", model=moved,
                           skip_instance_cache=True)
    with fs.open(str(tmp_path / "d" / "f.txt"), "rb") as f:
        assert f.read() == DATA
    loading.clear_cache()
    shutil.rmtree(moved)
    with pytest.raises(ModelMismatchError):
        LLM().decode(frame)
