"""The portable engine: exact arithmetic, one result on every machine, the codec's choice of it."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CodecError, ModelMismatchError, NumericsMismatchError
from llm_codecs.codecs.llm import _FALLBACK_METHODS, LanguageModelCodec
from llm_codecs.frame import FrameReader

from .helpers import bench_ids, read_head
from .tiny_models import random_llama_family

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from llm_codecs.portable import (  # noqa: E402
    ENGINE,
    ENGINES,
    _kernels,
    arith,
    cpu_prefill,
    integer_step,
)
from llm_codecs.portable import step as step_module  # noqa: E402
from llm_codecs.portable.cpu_prefill import CpuIntegerPrefill  # noqa: E402
from llm_codecs.portable.cpu_step import CpuIntegerStep  # noqa: E402
from llm_codecs.portable.step import IntegerLlamaStep, sigmoid_table  # noqa: E402
from llm_codecs.portable.weights import integer_model, portable_support  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()[:16]


# -- arithmetic ---------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, (1 << 62) - 1), min_size=1, max_size=20))
def test_isqrt_is_exact(values):
    got = arith.isqrt(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [math.isqrt(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, (1 << 53) - 1), min_size=1, max_size=20))
def test_bit_length_is_exact(values):
    got = arith.bit_length(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [v.bit_length() for v in values]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(1 << 40), 1 << 40), st.integers(-10, 20))
def test_shift_round_rounds_half_up(value, shift):
    expected = math.floor(value / 2**shift + 0.5) if shift >= 0 else value << -shift
    v = torch.tensor([value], dtype=torch.int64)
    assert arith.shift_round(v, shift).item() == expected
    assert arith.shift_round(v, torch.tensor([shift])).item() == expected


def test_tables_are_the_specified_ones():
    # The tables are part of engine int8-v1: frames depend on every entry. These hashes pin
    # them; a change is a new engine version (docs/format.md), never an edit of this test.
    exp2 = arith.exp2_table()
    assert exp2[0] == 1 << 15 and int(exp2[4095]) == 16387
    j = np.arange(4096)
    assert np.abs(exp2.numpy() - 2.0 ** (15 - j / 4096)).max() <= 0.5 + 1e-9
    cos, sin = arith.rope_tables(5000, 48, 10000.0)
    angles = np.arange(5000)[:, None] * (1.0 / 10000.0 ** (np.arange(0, 48, 2) / 48))
    assert np.abs(cos[:, :24].numpy() / 2**15 - np.cos(angles)).max() < 1.01 / 2**16
    assert np.abs(sin[:, 24:].numpy() / 2**15 - np.sin(angles)).max() < 1.01 / 2**16
    assert {
        "exp2": _sha(exp2), "sigmoid": _sha(sigmoid_table()), "cos": _sha(cos),
        "sin": _sha(sin), "cos64": _sha(arith.rope_tables(300, 64, 100000.0)[0]),
    } == {
        "exp2": "6281bc3412b7823c", "sigmoid": "f7d6f32793d66476", "cos": "94a155c1a35f41f4",
        "sin": "927166fb4d570037", "cos64": "99c761eed720dfd3",
    }


def test_rope_table_of_a_position_does_not_depend_on_the_table_length():
    short = arith.rope_tables(10, 32, 500000.0)[0]
    arith._cached_rope_chunk.cache_clear()
    long = arith.rope_tables(9000, 32, 500000.0)[0]
    assert torch.equal(short, long[:10])


@pytest.mark.parametrize(("m", "k", "n"), [(3, 20, 5), (96, 192, 576), (17, 2500, 24)])
def test_int8_matmul_is_exact_on_every_path(m, k, n):
    g = torch.Generator().manual_seed(k)
    x = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g)
    w = torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=g)
    x[0] = 127
    w[:, 0] = 127  # the largest sum an int8 GEMM can meet
    exact = torch.from_numpy(x.numpy().astype(np.int64) @ w.numpy().astype(np.int64))
    assert torch.equal(arith.int8_matmul(x, w).long(), exact)
    assert torch.equal(arith.float_exact_matmul(x, w).long(), exact)


# -- the forward ---------------------------------------------------------------------------------

def _run(step, ids, slots):
    return torch.stack([step.step(ids[:, t], t, slot=t % slots, filled=min(t + 1, slots))
                        for t in range(ids.shape[1])], dim=1)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("family", "kv_heads"), [("llama", 4), ("llama", 2), ("qwen2", 1),
                                                  ("qwen3", 2)])
def test_cpu_kernels_compute_the_reference_arithmetic(family, kv_heads, engine):
    model = random_llama_family(family, kv_heads)
    ids = torch.randint(0, 97, (3, 30), generator=torch.Generator().manual_seed(1))
    weights = integer_model(model)
    reference = _run(IntegerLlamaStep(weights, 3, 8, positions=30, engine=engine), ids, 8)
    fused = _run(CpuIntegerStep(weights, 3, 8, positions=30, engine=engine), ids, 8)
    assert torch.equal(reference, fused)
    # ... and that arithmetic is the model's: close to the float forward with the same window.
    # These random models' large weights make int8 rows coarse: mean errors of 3.5-5.0% with
    # int8-v1's cache, 4.0-5.4% with int8-v2's 8-bit one (a broken step is off by ~100%).
    i = torch.arange(30)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - 8)
    with torch.inference_mode():
        expected = model(ids, attention_mask=band[None, None].expand(3, 1, -1, -1)).logits
    assert float(expected.std()) > 1.0
    err = (fused - expected).abs().mean() / expected.abs().mean()
    assert err < 0.06, err


def test_engine_versions_differ_only_in_the_cache():
    # One model, one input: int8-v2's 8-bit cache moves the logits a little (3.9% of their mean
    # magnitude here, 3.4% with the default model on prose, whose bits per token it changes by
    # 0.1%), nothing more: an exponent lost or misapplied is off by far more.
    model = random_llama_family("llama", 2)
    ids = torch.randint(0, 97, (3, 30), generator=torch.Generator().manual_seed(1))
    weights = integer_model(model)
    v1, v2 = (_run(CpuIntegerStep(weights, 3, 8, positions=30, engine=e), ids, 8)
              for e in ("int8-v1", "int8-v2"))
    assert not torch.equal(v1, v2)
    assert float((v1 - v2).abs().mean() / v1.abs().mean()) < 0.08
    with pytest.raises(ValueError, match="unknown portable engine"):
        CpuIntegerStep(weights, 3, 8, engine="int8-v0")
    assert tuple(step_module.KV_MANTISSA_BITS) == ENGINES  # every version has its cache


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.integers(-(1 << 24) + 1, (1 << 24) - 1), min_size=1, max_size=64))
def test_the_int8_v2_cache_keeps_the_top_bits_of_each_vector(values):
    x = torch.tensor(values, dtype=torch.int64)
    mantissas, exponent = step_module._cache_vectors(x[None], 7)
    e = int(exponent[0])
    m = mantissas[0]
    assert int(m.abs().max()) <= 127
    # The smallest exponent that fits the vector's largest magnitude in 7 bits ...
    assert e == max(int(x.abs().max()).bit_length() - 7, 0)
    # ... and each value rounded half up to a multiple of 2**e (clamped at 127 * 2**e).
    expect = torch.div(x + (1 << e >> 1), 1 << e, rounding_mode="floor").clamp(-127, 127)
    assert torch.equal(m, expect)
    kernel = np.empty(len(values), dtype=np.int8)
    exps = np.zeros(1, dtype=np.int8)
    _kernels._cache_vector.py_func(x.numpy(), 7, 127, kernel, exps, 0)
    assert np.array_equal(kernel, m.numpy()) and int(exps[0]) == e


def test_a_lane_does_not_depend_on_the_others():
    model = random_llama_family("llama", 2)
    ids = torch.randint(0, 97, (5, 12), generator=torch.Generator().manual_seed(4))
    weights = integer_model(model)
    together = _run(CpuIntegerStep(weights, 5, 4, positions=12), ids, 4)
    alone = _run(CpuIntegerStep(weights, 1, 4, positions=12), ids[3:4], 4)
    assert torch.equal(together[3:4], alone)


def _prefill(prefill, ids, chunk):
    """Every position's logits, ``chunk`` per call, the last call padded."""
    steps = ids.shape[1]
    padded = np.pad(ids.numpy(), ((0, 0), (0, -steps % chunk)), mode="edge")
    out = [prefill.run(np.ascontiguousarray(padded[:, first : first + chunk]), first)
           for first in range(0, padded.shape[1], chunk)]
    return torch.from_numpy(np.concatenate(out)[:steps].transpose(1, 0, 2).copy())


@pytest.mark.parametrize(("family", "kv_heads", "engine"),
                         [("llama", 4, ENGINE), ("llama", 2, ENGINE), ("qwen2", 1, ENGINE),
                          ("qwen3", 2, ENGINE), ("llama", 2, "int8-v1")])
@pytest.mark.parametrize(("window", "chunk"), [(8, 16), (20, 4), (64, 16)])
def test_the_encoder_prefill_computes_the_step_by_step_values(family, kv_heads, engine, window,
                                                              chunk, monkeypatch):
    # Many positions per call (lanes in two groups, a window shorter and longer than a call,
    # the history moved along, a last call past the end): the same integers as position by
    # position, which is what makes the encoder's frames the decoder's.
    monkeypatch.setattr(cpu_prefill, "GROUP_ROWS", 8 * chunk)
    model = random_llama_family(family, kv_heads)
    ids = torch.randint(0, 97, (13, 45), generator=torch.Generator().manual_seed(2))
    weights = integer_model(model)
    stepped = _run(CpuIntegerStep(weights, 13, window, positions=45, engine=engine), ids,
                   window)
    prefill = CpuIntegerPrefill(weights, 13, window, chunk, engine)
    assert prefill.group == 8
    assert torch.equal(_prefill(prefill, ids, chunk), stepped)
    with pytest.raises(ValueError, match="expected"):  # calls come in order
        prefill.run(np.zeros((13, chunk), dtype=np.int64), 0)


def test_the_encoder_prefill_writes_the_step_by_step_payload(monkeypatch):
    # The default model, a block of real text, every step (no probe): one payload either way.
    data = (ROOT / "tests" / "data" / "golden" / "prose.txt").read_bytes()[:6000]
    codec = LanguageModelCodec()
    fast = codec.encode_block(data)
    schedule = LanguageModelCodec._schedule
    monkeypatch.setattr(LanguageModelCodec, "_schedule",
                        lambda self, loaded, lanes, steps, start_id, tokens=None:
                        schedule(self, loaded, lanes, steps, start_id))
    assert codec.encode_block(data) == fast
    assert codec.decode_block(fast, len(data)) == data


@pytest.mark.parametrize("parts", [2, 3])
def test_lanes_split_in_threads_compute_the_same_values(parts):
    # A block's lanes in parts run side by side (uneven parts, a ring of slots, the prefill's
    # history moved along): the integers of one forward over every lane.
    from llm_codecs.parts import part_bounds
    from llm_codecs.portable import integer_prefill, integer_step
    from llm_codecs.portable.lane_parts import LaneParts

    model = random_llama_family("llama", 2)
    ids = torch.randint(0, 97, (13, 30), generator=torch.Generator().manual_seed(5))
    whole = _run(integer_step(model, 13, 8, 30), ids, 8)
    held = []
    split = integer_step(model, 13, 8, 30, parts=parts, hold=lambda: _counting(held))
    assert isinstance(split, LaneParts) and split.bounds == part_bounds(13, parts)
    assert torch.equal(_run(split, ids, 8), whole)
    assert len(held) == 30 * (parts - 1)  # every part but the caller's ran in the context
    prefilled = integer_prefill(model, 13, 8, 4, parts=parts)
    assert torch.equal(_prefill(prefilled, ids, 4), whole)


@contextlib.contextmanager
def _counting(seen: list):
    seen.append(threading.current_thread().name)
    yield


def test_lane_parts_cover_every_lane_once():
    from llm_codecs.parts import part_bounds

    for lanes in (1, 2, 13, 96):
        for parts in (1, 2, 3, 7, 200):
            bounds = part_bounds(lanes, parts)
            assert bounds[0][0] == 0 and bounds[-1][1] == lanes
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [stop - first for first, stop in bounds]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
            assert len(bounds) == min(parts, lanes)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_runs_lane_parts_in_threads_of_its_own():
    # The parent's pool has threads; a forked child inherits it without them. Its work must
    # still run (it hung before the pool was forgotten at fork).
    import multiprocessing

    from llm_codecs.parts import part_bounds, run_parts

    seen = []
    run_parts(lambda first, stop: seen.append(first), part_bounds(8, 2))
    assert sorted(seen) == [0, 4]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_parts_in_child).get(timeout=60) == [0, 3, 6]


def _parts_in_child():
    from llm_codecs.parts import part_bounds, run_parts

    seen = []
    run_parts(lambda first, stop: seen.append(first), part_bounds(9, 3))
    return sorted(seen)


def test_a_block_uses_the_cpus_other_blocks_leave_it(monkeypatch):
    import llm_codecs.codecs.llm as llm_module

    monkeypatch.setattr(llm_module, "available_cpus", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    codec = LanguageModelCodec()
    assert codec.lane_parts(96) == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Dask's worker processes get
    assert codec.lane_parts(96) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert codec.lane_parts(96) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a number: ignored, as OpenMP does
    assert codec.lane_parts(96) == 4
    assert codec.lane_parts(40) == 2  # at least MIN_PART_LANES lanes a part
    with codec.side_by_side(2):
        assert codec.lane_parts(96) == 2
        with codec.side_by_side(3):
            assert codec.lane_parts(96) == 1
    assert codec.lane_parts(96) == 4


def test_frames_do_not_depend_on_how_many_threads_ran_the_lanes(monkeypatch):
    data = (ROOT / "tests" / "data" / "golden" / "prose.txt").read_bytes()[:6000]
    codec = LanguageModelCodec(lanes=24, fallback=False)
    frames = []
    for parts in (1, 3):
        monkeypatch.setattr(LanguageModelCodec, "lane_parts", lambda self, lanes, p=parts: p)
        frames.append(llm_codecs.compress(data, codec))
    assert frames[0] == frames[1]
    for parts in (2, 1):
        monkeypatch.setattr(LanguageModelCodec, "lane_parts", lambda self, lanes, p=parts: p)
        assert llm_codecs.decompress(frames[0]) == data


def test_default_model_portable_predictions_match_the_float_ones():
    from llm_codecs.models.llama_step import LlamaStep
    from llm_codecs.models.loading import load_model

    loaded = load_model("default")
    ids = loaded.tokenizer.encode(read_head("canterbury/alice29.txt", 6000))
    lanes, steps = 4, len(ids) // 4
    grid = torch.from_numpy(np.asarray(ids[: lanes * steps], dtype=np.int64)
                            .reshape(lanes, steps))
    with torch.inference_mode():
        native = _run(LlamaStep(loaded.model, lanes, 64, positions=steps), grid, 64)
        portable = _run(integer_step(loaded.model, lanes, 64, steps), grid, 64)
    targets = grid[:, 1:].reshape(-1)

    def bits(logits):
        flat = logits[:, :-1].reshape(-1, logits.shape[-1]).double()
        return float(torch.nn.functional.cross_entropy(flat, targets)) / math.log(2)

    assert bits(portable) < 1.01 * bits(native)


def test_unsupported_models_are_named():
    gpt2 = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2,
                                                                vocab_size=50))
    assert "Llama-family" in portable_support(gpt2)
    with pytest.raises(CodecError, match="Llama-family"):
        integer_model(gpt2)


# -- the codec ------------------------------------------------------------------------------------

def test_default_frames_are_portable_and_record_no_machine():
    data = read_head("canterbury/alice29.txt", 5000)
    frame = llm_codecs.compress(data)
    header = FrameReader(frame).header
    assert header.codec == "llm" and header.params["numerics"] == "auto"
    assert header.fingerprint["engine"] == ENGINE
    assert "numerics" not in header.fingerprint and "step" not in header.fingerprint
    assert llm_codecs.decompress(frame) == data


def test_numerics_choice(tiny_models):
    with pytest.raises(CodecError, match="numerics must be one of"):
        LanguageModelCodec(numerics="fast")
    gpt2 = LanguageModelCodec(model=tiny_models["gpt2"])
    assert gpt2.resolved_numerics() == "native"
    with pytest.raises(CodecError, match="not available"):
        llm_codecs.compress(b"hello world " * 50, "llm", model=tiny_models["gpt2"],
                            numerics="portable", fallback=False)
    assert LanguageModelCodec(step="transformers").resolved_numerics() == "native"
    assert LanguageModelCodec(step="lean").resolved_numerics() == "native"
    assert LanguageModelCodec(model=tiny_models["qwen2"]).resolved_numerics() == "portable"


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_hypothesis_bytes_round_trip_portably(tiny_models, data):
    # Block by block, not through a frame: the tiny model never codes inputs this short and odd
    # in fewer bytes than they hold, so a frame would store every block and the model would
    # decode nothing.
    codec = LanguageModelCodec(model=tiny_models["llama"], fallback=False, lanes=3, context=16)
    assert codec.fingerprint()["engine"] == ENGINE
    if data:
        assert codec.decode_block(codec.encode_block(data), len(data)) == data


@pytest.mark.parametrize("rel", bench_ids())
def test_bench_slices_round_trip_portably(tiny_models, rel):
    data = read_head(rel, 1 << 20)
    start = len(data) // 3
    data = data[start : start + 700]
    frame = llm_codecs.compress(data, "llm", model=tiny_models["qwen2"], fallback=False,
                                lanes=2)
    assert llm_codecs.decompress(frame) == data


def test_a_qwen3_model_codes_portably(tmp_path):
    from .tiny_models import build_model

    qwen3 = str(build_model(tmp_path / "qwen3", "qwen3"))
    data = read_head("canterbury/alice29.txt", 3000)
    frame = llm_codecs.compress(data, "llm", model=qwen3, fallback=False, lanes=4)
    assert FrameReader(frame).header.fingerprint["engine"] == ENGINE
    assert llm_codecs.decompress(frame) == data


def test_an_llm_frame_of_classic_blocks_needs_no_model(tmp_path):
    import io
    import shutil

    from .tiny_models import build_model

    model = build_model(tmp_path / "gone", "llama")
    data = bytes(range(256)) * 40  # binary: every block goes to the classic fallback
    out = io.BytesIO()
    llm_codecs.compress_stream(io.BytesIO(data), out, "llm", model=str(model), block_size=4096)
    frame = out.getvalue()
    reader = FrameReader(frame)
    methods = {b.method for b in reader.blocks}
    assert reader.header.codec == "llm" and methods <= _FALLBACK_METHODS
    assert len(reader.blocks) == 3  # classic methods only: no block needs the model
    shutil.rmtree(model)
    assert llm_codecs.decompress(frame) == data


def test_a_frame_asks_for_the_engine_that_made_it(tiny_models):
    data = b"the engine is part of the frame " * 20
    llama = tiny_models["llama"]
    native = llm_codecs.compress(data, "llm", model=llama, numerics="native", fallback=False,
                                 lanes=2)
    portable = llm_codecs.compress(data, "llm", model=llama, fallback=False, lanes=2)
    assert llm_codecs.decompress(native) == data == llm_codecs.decompress(portable)
    with pytest.raises(ModelMismatchError, match="numerics='native'"):
        FrameReader(native, codec=LanguageModelCodec(model=llama, numerics="portable"))
    with pytest.raises(ModelMismatchError, match="numerics='portable'"):
        FrameReader(portable, codec=LanguageModelCodec(model=llama, numerics="native"))


def test_an_unknown_engine_asks_for_an_upgrade():
    codec = LanguageModelCodec()
    fingerprint = {**codec.fingerprint(), "engine": "int8-v99"}
    with pytest.raises(llm_codecs.CorruptDataError, match="upgrade llm_codecs"):
        codec.bind(fingerprint)


# -- other machines: fresh processes under other kernels -----------------------------------------

#: Environments that make torch, MKL and numba run the code other machines would run. Each is
#: one machine, with every library's dispatch set as such a machine would set it: a process per
#: setting cost CI a minute and a half more, and a real machine differs in all of them at once.
OTHER_MACHINES = [
    # An AVX2 machine (no AVX-512) with one thread.
    {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OMP_NUM_THREADS": "1",
     "LLM_TEST_TORCH_THREADS": "1"},
    # No vector dispatch in torch, MKL's reproducible mode, two threads.
    {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "2",
     "LLM_TEST_TORCH_THREADS": "2"},
    # numba compiled for no particular CPU, torch's AVX-512 kernels where the CPU has them.
    {"NUMBA_CPU_NAME": "generic", "ATEN_CPU_CAPABILITY": "avx512"},
]

_DECODE = textwrap.dedent("""
    import os, sys, hashlib
    import torch
    threads = os.environ.get("LLM_TEST_TORCH_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    import llm_codecs
    for path in sys.argv[1:]:
        frame = open(path, "rb").read()
        data = llm_codecs.decompress(frame)
        print(path, hashlib.sha256(data).hexdigest())
""")

_ENCODE = textwrap.dedent("""
    import sys
    import llm_codecs
    model, source, target = sys.argv[1:]
    data = open(source, "rb").read()
    frame = llm_codecs.compress(data, "llm", model=model, lanes=4, block_size=4096)
    open(target, "wb").write(frame)
""")


def _python(code: str, args: list[str], env: dict[str, str]) -> str:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    proc = subprocess.run([sys.executable, "-c", code, *args], env=full, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def portable_frames(tmp_path_factory, tiny_models):
    """Frames of real text made here: the embedded model with the defaults (prose blocks by
    the model, the log's by the classic fallback, context mixing: numba kernels too; and one
    64 KiB block with the defaults exactly, 96 lanes), tiny
    Llama and Qwen2 with every block by the model, and the context-mixing codec alone, on the
    text and on a baseline JPEG; and a golden frame of engine ``int8-v1``."""
    root = tmp_path_factory.mktemp("portable")
    data = read_head("canterbury/alice29.txt", 7000) + read_head("loghub/HDFS_2k.log", 3000)
    frames, digests = [], {}
    for name, model, params in (("default", "default", {}),
                                ("llama", tiny_models["llama"], {"fallback": False}),
                                ("qwen2", tiny_models["qwen2"], {"fallback": False}),
                                ("cm", None, {})):
        if model is None:
            frame = llm_codecs.compress(data, "cm", block_size=4096)
        else:
            frame = llm_codecs.compress(data, "llm", model=model, lanes=4, block_size=4096,
                                        **params)
            assert FrameReader(frame).header.fingerprint["engine"] == ENGINE
        path = root / f"{name}.llmz"
        path.write_bytes(frame)
        frames.append(str(path))
        digests[str(path)] = hashlib.sha256(data).hexdigest()
    # The defaults exactly (96 lanes, a 64 KiB block): a one-block frame, which a decoder with
    # spare CPUs runs in lane parts (llm_codecs.parts).
    block = read_head("canterbury/alice29.txt", 65536)
    path = root / "defaults-block.llmz"
    path.write_bytes(llm_codecs.compress(block))
    assert len(FrameReader(path.read_bytes()).blocks) == 1
    frames.append(str(path))
    digests[str(path)] = hashlib.sha256(block).hexdigest()
    # A baseline JPEG through context mixing: its JPEG model's integers too.
    picture = (Path(__file__).parent / "data" / "golden" / "picture.jpg").read_bytes()
    path = root / "picture.llmz"
    path.write_bytes(llm_codecs.compress(picture, "cm"))
    frames.append(str(path))
    digests[str(path)] = hashlib.sha256(picture).hexdigest()
    # Deflate streams through context mixing: its deflate model's integers too.
    streams = (Path(__file__).parent / "data" / "golden" / "streams.bin").read_bytes()
    path = root / "streams.llmz"
    path.write_bytes(llm_codecs.compress(streams, "cm"))
    frames.append(str(path))
    digests[str(path)] = hashlib.sha256(streams).hexdigest()
    # A golden frame of the first engine version, int8-v1 (its 25-bit cache, int32 kernels).
    golden = Path(__file__).parent / "data" / "golden"
    frames.append(str(golden / "records.json.llm-compact.llmz"))
    assert FrameReader(Path(frames[-1]).read_bytes()).header.fingerprint["engine"] == "int8-v1"
    digests[frames[-1]] = hashlib.sha256((golden / "records.json").read_bytes()).hexdigest()
    methods = {b.method for b in FrameReader(Path(frames[0]).read_bytes()).blocks}
    assert {3, 9} <= methods, methods  # the defaults mix model and CM (version 5) blocks
    source = root / "source.bin"
    source.write_bytes(data)
    return frames, digests, source


@pytest.mark.slow
@pytest.mark.parametrize("env", OTHER_MACHINES, ids=lambda e: ",".join(f"{k}={v}"
                                                                        for k, v in e.items()))
def test_portable_frames_decode_under_other_machines_kernels(portable_frames, env):
    frames, digests, _ = portable_frames
    out = _python(_DECODE, frames, env)
    got = dict(line.split() for line in out.strip().splitlines())
    assert got == digests


@pytest.mark.slow
def test_a_frame_made_under_other_kernels_is_byte_identical(portable_frames, tmp_path):
    frames, _, source = portable_frames
    target = tmp_path / "avx2.llmz"
    _python(_ENCODE, ["default", str(source), str(target)], {"ATEN_CPU_CAPABILITY": "avx2"})
    assert target.read_bytes() == Path(frames[0]).read_bytes()


@pytest.mark.slow
def test_a_native_frame_from_another_machine_says_so(tmp_path):
    if str(torch.backends.cpu.get_cpu_capability()) == "DEFAULT":
        pytest.skip("this machine already runs the default kernels")
    data = read_head("canterbury/alice29.txt", 8000)
    path = tmp_path / "native.llmz"
    path.write_bytes(llm_codecs.compress(data, "llm", numerics="native"))
    code = textwrap.dedent("""
        import sys, llm_codecs
        try:
            llm_codecs.decompress(open(sys.argv[1], "rb").read())
            print("decoded")
        except llm_codecs.NumericsMismatchError as exc:
            print("mismatch:", exc)
    """)
    out = _python(code, [str(path)], {"ATEN_CPU_CAPABILITY": "default"})
    # The default kernels may happen to give the same bits for a block; if not, the error
    # names both machines instead of calling the data corrupt.
    if not out.startswith("decoded"):
        assert "cpu_capability='DEFAULT'" in out and "numerics='portable'" in out
    assert issubclass(NumericsMismatchError, llm_codecs.CorruptDataError)


def test_a_portable_frame_says_nothing_about_its_device(recwarn):
    # Made with device="cuda" (on the CPU where there is none: the same values), decoded here.
    data = read_head("canterbury/alice29.txt", 2500)
    frame = llm_codecs.compress(data, "llm", device="cuda", fallback=False, lanes=4)
    assert FrameReader(frame).header.params["device"] == "cuda"
    assert llm_codecs.decompress(frame) == data
    assert not [w for w in recwarn if issubclass(w.category, llm_codecs.NumericsWarning)]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_and_cpu_make_the_same_frame():
    data = read_head("canterbury/alice29.txt", 9000)
    cpu = llm_codecs.compress(data, "llm", lanes=8)
    cuda = llm_codecs.compress(data, "llm", lanes=8, device="cuda")
    # The headers differ only in the recorded device parameter; every coded block is the same.
    payloads = [[reader._read_at(b.offset, b.compressed_size) for b in reader.blocks]
                for reader in (FrameReader(cpu), FrameReader(cuda))]
    assert payloads[0] == payloads[1]
    assert llm_codecs.decompress(cuda) == data
    assert FrameReader(cuda, codec=LanguageModelCodec(lanes=8)).read() == data
    assert FrameReader(cpu, codec=LanguageModelCodec(lanes=8, device="cuda")).read() == data


def test_numerics_travels_through_numcodecs_and_zarr(tmp_path):
    import numcodecs
    import zarr

    text = read_head("canterbury/alice29.txt", 3000)
    codec = numcodecs.get_codec({"id": "llm_codecs.llm", "numerics": "native",
                                 "fallback": False, "lanes": 2})
    assert codec.get_config()["numerics"] == "native"
    frame = codec.encode(text)
    assert "engine" not in FrameReader(bytes(frame)).header.fingerprint
    assert bytes(codec.decode(frame)) == text
    z = zarr.create_array(tmp_path / "a.zarr", shape=(len(text),), chunks=(len(text),),
                          dtype="u1", compressors=[{"name": "llm_codecs.llm", "configuration":
                                                    {"numerics": "portable", "fallback": False,
                                                     "lanes": 2}}])
    z[:] = np.frombuffer(text, dtype="u1")
    stored = (tmp_path / "a.zarr" / "c" / "0").read_bytes()
    assert FrameReader(stored).header.fingerprint["engine"] == ENGINE
    assert bytes(zarr.open_array(tmp_path / "a.zarr", mode="r")[:]) == text
