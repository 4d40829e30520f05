"""numcodecs integration: the codec contract, config, pickling, and discovery by entry point."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numcodecs
import numpy as np
import pytest
from numcodecs.compat import ensure_bytes

import llm_codecs
from llm_codecs import CodecError, CorruptDataError

from .helpers import read_head

CODECS = [llm_codecs.Huffman(), llm_codecs.LZ77(), llm_codecs.LZ77(level=9, block_size=4096),
          llm_codecs.Huffman(block_size=1000), llm_codecs.LZMA(level=6), llm_codecs.CM()]


@pytest.mark.parametrize("codec", CODECS, ids=repr)
@pytest.mark.parametrize(
    "array",
    [
        np.arange(10_000, dtype="<i8"),
        np.linspace(0, 1, 5000, dtype="<f4").reshape(50, 100),
        np.frombuffer(read_head("canterbury/alice29.txt", 20_000), dtype="u1"),
        np.array([b"abc", b"def", b""] * 100, dtype="S5"),
        np.zeros(0, dtype="u1"),
        np.arange(10_000, dtype="<u2")[::3],  # non-contiguous input
    ],
    ids=["int64", "float32-2d", "text", "fixed-strings", "empty", "strided"],
)
def test_encode_decode(codec, array):
    contiguous = np.ascontiguousarray(array)
    encoded = codec.encode(contiguous)
    decoded = codec.decode(encoded)
    assert ensure_bytes(decoded) == contiguous.tobytes()
    out = np.empty_like(contiguous)
    result = codec.decode(encoded, out=out)
    assert np.array_equal(out, contiguous)
    # An empty array shares no memory with anything; otherwise the result must be ``out``.
    assert result is out or out.size == 0 or np.shares_memory(result, out)


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_config_round_trips_through_json_and_registry(codec):
    config = json.loads(json.dumps(codec.get_config()))
    assert config["id"] == codec.codec_id
    clone = numcodecs.get_codec(config)
    assert type(clone) is type(codec) and clone == codec
    data = b"abc" * 1000
    assert clone.encode(data) == codec.encode(data)


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_pickle_carries_only_the_config(codec):
    codec.encode(b"warm the private state up")
    state = pickle.dumps(codec)
    assert len(state) < 300
    clone = pickle.loads(state)
    assert clone == codec
    assert clone.decode(codec.encode(b"hello" * 99)) == b"hello" * 99


def test_bad_config_is_a_codec_error():
    with pytest.raises(CodecError):
        llm_codecs.LZ77(level=99)
    with pytest.raises(CodecError):
        llm_codecs.Huffman(block_size=0)
    with pytest.raises(CorruptDataError):
        llm_codecs.Huffman().decode(b"not a frame at all, sorry")


def test_out_of_wrong_size_is_rejected():
    codec = llm_codecs.LZ77()
    encoded = codec.encode(b"x" * 100)
    # Refused before decoding (numpy's own copy into a wrong-size buffer raises ValueError too).
    with pytest.raises(CorruptDataError, match="holds 100 bytes but the output buffer has 50"):
        codec.decode(encoded, out=np.empty(50, dtype="u1"))


def test_entry_points_in_a_fresh_interpreter():
    script = textwrap.dedent(
        """
        import sys, numcodecs
        for cid in ("llm_codecs.huffman", "llm_codecs.lz77"):
            codec = numcodecs.get_codec({"id": cid})
            data = b"entry points work " * 100
            assert bytes(codec.decode(codec.encode(data))) == data, cid
        assert numcodecs.get_codec({"id": "llm_codecs.lz77", "level": 1}).level == 1
        print("ok", sorted(m for m in sys.modules if m.startswith("llm_codecs"))[:1])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_fresh_interpreter_does_not_import_package_until_asked():
    script = "import sys, numcodecs; print(any(m.startswith('llm_codecs') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("config", [
    {"id": "llm_codecs.lz77", "foo": 1},
    {"id": "llm_codecs.huffman", "level": 5},
])
def test_unknown_parameters_are_codec_errors(config):
    with pytest.raises(CodecError, match=config["id"]):
        numcodecs.get_codec(config)
