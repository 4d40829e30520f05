"""The LLM codec on tiny local models: exactness, random access, other processes, wrong models,
damage. The models are random-initialised and saved with ``save_pretrained``, so they load
through the same code as a hub model; their predictions are poor, which is why most tests pass
``fallback=False`` (the model codes every block) to exercise the model path itself."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llm_codecs
from llm_codecs import CorruptDataError, ModelMismatchError, UnsupportedTokenizerError
from llm_codecs.codecs import make_codec
from llm_codecs.codecs.llm import LanguageModelCodec, lane_layout, looks_binary
from llm_codecs.frame import FrameReader

from .helpers import assert_rejects_or_exact, bench_ids, forge_payload, read_head
from .tiny_models import build_model, train_tokenizer

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def gpt2(tiny_models):
    return tiny_models["gpt2"]


def roundtrip(data: bytes, model: str, **params) -> bytes:
    params.setdefault("fallback", False)
    params.setdefault("threads", 1)
    frame = llm_codecs.compress(data, "llm", model=model, **params)
    assert llm_codecs.decompress(frame) == data
    return frame


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_each_family_round_trips_text_and_binary(tiny_models, family):
    data = read_head("canterbury/alice29.txt", 1500) + bytes(range(256)) + b"\xff\xfe\x00"
    frame = roundtrip(data, tiny_models[family], block_size=1024, lanes=4, context=32)
    methods = {b.method for b in FrameReader(frame).blocks}
    assert methods <= {0, 3}
    assert 3 in methods


@pytest.mark.parametrize("rel", bench_ids())
def test_bench_slices_round_trip(gpt2, rel):
    data = read_head(rel, 1 << 20)
    start = len(data) // 3
    roundtrip(data[start : start + 700], gpt2, lanes=2)


@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
def test_hypothesis_bytes_round_trip(gpt2, data):
    # Block by block, not through a frame: the tiny model never codes inputs this short and odd
    # in fewer bytes than they hold, so a frame would store every block and the model would
    # decode nothing.
    codec = make_codec("llm", model=gpt2, fallback=False, threads=1, lanes=3, context=16)
    if data:
        assert codec.decode_block(codec.encode_block(data), len(data)) == data
    else:
        roundtrip(data, gpt2)


def test_default_fallback_keeps_the_smaller_of_llm_and_lz77(gpt2):
    from llm_codecs.codecs import llm as llm_module

    text = read_head("canterbury/alice29.txt", 3000)
    binary = random.Random(0).randbytes(3000)
    # An untrained model without the in-block models loses to LZ77 on text (with them, it
    # can win); random bytes are detected and stored.
    frame = llm_codecs.compress(text + binary, "llm", model=gpt2, block_size=3000, threads=1,
                                cache=False)
    assert llm_codecs.decompress(frame) == text + binary
    assert looks_binary(binary) and not looks_binary(text)
    # The choice itself, on the codec that coded (compress() returns the plain LZ77 frame
    # when no block kept the model, which would hide a broken choice).
    codec = make_codec("llm", model=gpt2, threads=1, cache=False)
    llm_alone = codec.encode_block(text)
    (text_method, text_payload), (binary_method, _) = codec.encode_blocks([text, binary])
    assert {text_method, binary_method} <= llm_module._FALLBACK_METHODS
    assert len(text_payload) < len(llm_alone)
    # ... and the other way: where the fallback would be larger, the model's payload is kept.
    codec._fallback_payload = lambda block, bounds=None: (2, bytes(len(block) + 1))
    (method, payload), = codec.encode_blocks([text])
    assert method == 3 and payload == llm_alone


def test_first_fallback_runs_after_the_model_and_codes_the_same(gpt2, monkeypatch):
    from llm_codecs.codecs import llm as llm_module

    text = read_head("canterbury/alice29.txt", 3000)
    fresh = threading.Event()  # as in a new process: LZ77 has not run yet
    monkeypatch.setattr(llm_module, "_fallback_ready", fresh)
    first = llm_codecs.compress(text, "llm", model=gpt2, block_size=1000, threads=1)
    assert fresh.is_set()  # later blocks run LZ77 beside the model
    again = llm_codecs.compress(text, "llm", model=gpt2, block_size=1000, threads=1)
    assert first == again
    assert llm_codecs.decompress(first) == text


def test_range_reads_decode_only_what_they_touch(gpt2):
    data = read_head("canterbury/lcet10.txt", 1500)
    frame = roundtrip(data, gpt2, block_size=300, lanes=2, context=32)
    reader = FrameReader(frame)
    rng = random.Random(5)
    for _ in range(8):
        offset = rng.randrange(len(data))
        size = rng.randrange(1, 700)
        assert reader.read(offset, size) == data[offset : offset + size]


@pytest.mark.parametrize("family", ["gpt2", "llama"])  # transformers' forward, the lean one
def test_fresh_process_and_other_thread_count_decode_exactly(tiny_models, family, tmp_path):
    data = read_head("canterbury/asyoulik.txt", 500)
    frames = {}
    for threads in (1, 2):
        frames[threads] = roundtrip(data, tiny_models[family], threads=threads, lanes=3,
                                    context=16)
        (tmp_path / f"f{threads}.llmz").write_bytes(frames[threads])
    (tmp_path / "orig").write_bytes(data)
    # The decoding process runs torch with a thread count neither frame used.
    script = textwrap.dedent(f"""
        import pathlib, torch, llm_codecs
        torch.set_num_threads(3)
        d = pathlib.Path({str(tmp_path)!r})
        for name in ("f1.llmz", "f2.llmz"):
            assert llm_codecs.decompress((d / name).read_bytes()) == (d / "orig").read_bytes()
        assert torch.get_num_threads() == 3
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_wrong_model_is_refused_before_any_work(tiny_models, tmp_path):
    data = read_head("canterbury/alice29.txt", 800)
    frame = roundtrip(data, tiny_models["gpt2"])
    other = LanguageModelCodec(model=tiny_models["llama"], threads=1)
    with pytest.raises(ModelMismatchError, match="frame was made with model"):
        FrameReader(frame, codec=other)
    # Same path, other weights: the hash catches it (in a fresh process, without any cache,
    # nor the memo of models used before: the model this one was copied from would decode it).
    moved = tmp_path / "model"
    shutil.copytree(tiny_models["gpt2"], moved)
    frame = roundtrip(data, str(moved))
    shutil.rmtree(moved)
    build_model(moved, "gpt2", seed=1)
    (tmp_path / "frame.llmz").write_bytes(frame)
    script = textwrap.dedent(f"""
        import pathlib, llm_codecs
        try:
            llm_codecs.decompress(pathlib.Path({str(tmp_path / "frame.llmz")!r}).read_bytes())
        except llm_codecs.ModelMismatchError as exc:
            print("mismatch:", exc)
    """)
    env = {**os.environ, "LLM_CODECS_CACHE_DIR": str(tmp_path / "memo")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=env)
    assert "mismatch: frame was made with model" in result.stdout, result.stderr


def test_missing_model_names_it(gpt2, tmp_path):
    frame = roundtrip(b"hello world, hello model", gpt2)
    copy = tmp_path / "gone"
    shutil.copytree(gpt2, copy)
    frame = roundtrip(b"hello world, hello model", str(copy))
    shutil.rmtree(copy)
    script = (f"import llm_codecs; llm_codecs.decompress(open({str(tmp_path / 'f')!r}, 'rb')"
              ".read())")
    (tmp_path / "f").write_bytes(frame)
    # An empty memo of models used before: the gpt2 model it was copied from would decode it.
    env = {**os.environ, "LLM_CODECS_CACHE_DIR": str(tmp_path / "memo")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=env)
    assert "ModelMismatchError" in result.stderr and str(copy) in result.stderr
    assert FrameReader(frame).header.fingerprint["model"]["sha256"] in (
        result.stderr)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_damaged_llm_payloads_raise_corrupt_data_error(tiny_models, family):
    # Repetitive text, so that the in-block match models are active while the stream is damaged.
    data = read_head("canterbury/alice29.txt", 250) * 2
    frame = roundtrip(data, tiny_models[family], block_size=250, lanes=2, context=16)

    @settings(max_examples=24, deadline=timedelta(seconds=20), derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**32 - 1))
    def check(seed):
        assert_rejects_or_exact(forge_payload(frame, random.Random(seed)), data)

    check()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_codec_is_thread_safe(tiny_models, family):
    texts = [read_head(rel, 300) for rel in ("canterbury/alice29.txt", "canterbury/lcet10.txt",
                                             "misc/tinyshakespeare.txt", "loghub/HDFS_2k.log")]
    frames = [roundtrip(t, tiny_models[family], lanes=2) for t in texts]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            assert list(pool.map(llm_codecs.decompress, frames)) == texts


def test_pickle_carries_config_not_model(gpt2):
    codec = LanguageModelCodec(model=gpt2, threads=1)
    codec.encode_block(b"load the model")
    assert codec._loaded is not None
    clone = pickle.loads(pickle.dumps(codec))
    assert clone._loaded is None and clone.params() == codec.params()
    assert len(pickle.dumps(codec)) < 2000


def test_schedule_depends_only_on_token_count():
    assert lane_layout(0, 32) == (0, 0)
    assert lane_layout(10, 32) == (1, 10)
    used, steps = lane_layout(18_000, 32)
    assert used == 32 and (used - 1) * steps < 18_000 <= used * steps
    # A lane gets at least 192 tokens: a 64 KiB block of prose uses the default 96 lanes.
    assert lane_layout(1000, 96) == (5, 200)
    assert lane_layout(21_000, 96)[0] == 96


def test_non_byte_level_tokenizers_are_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from llm_codecs.models.tokens import ByteTokenizer

    word = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    word.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(UnsupportedTokenizerError, match="not byte-level BPE"):
        ByteTokenizer(PreTrainedTokenizerFast(tokenizer_object=word))


@pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)), b"\xed\xa0\x80 lone",
                                  "caf\u00e9 cafe\u0301 <|endoftext|> \u00e9".encode(),
                                  b"a\r\nb\rc\n", random.Random(1).randbytes(3000)])
def test_tokenizer_is_byte_exact_even_with_a_normalizer(data):
    from tokenizers import normalizers

    from llm_codecs.models.tokens import ByteTokenizer

    tok = ByteTokenizer(train_tokenizer(300, normalizer=normalizers.NFC()))
    ids = tok.encode(data)
    assert tok.decode(ids) == data


def test_numerics_change_warns_and_still_decodes(gpt2):
    data = b"numerics are recorded in the frame"
    frame = roundtrip(data, gpt2)
    reader = FrameReader(frame)
    fingerprint = dict(reader.header.fingerprint)
    fingerprint["numerics"] = {**fingerprint["numerics"], "torch": "0.0"}
    codec = LanguageModelCodec(model=gpt2, threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codec.check_fingerprint(fingerprint)
    assert any(issubclass(w.category, llm_codecs.NumericsWarning) for w in caught)
    with pytest.raises(CorruptDataError):
        codec.check_fingerprint(None)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU")
def test_cuda_round_trip_and_random_access(gpt2):
    data = read_head("canterbury/alice29.txt", 3000) + bytes(range(256))
    frame = roundtrip(data, gpt2, device="cuda", block_size=1000, lanes=4)
    reader = FrameReader(frame)
    assert reader.header.fingerprint["numerics"]["device"] == "cuda"
    assert reader.read(1500, 700) == data[1500:2200]


def test_a_frame_the_model_did_not_code_is_a_plain_classic_frame(gpt2):
    binary = random.Random(2).randbytes(2000) + b"\x00" * 3000
    frame = llm_codecs.compress(binary, "llm", model=gpt2, block_size=1000)
    header = FrameReader(frame).header
    assert header.codec in ("lz77", "lzma", "cm") and header.fingerprint is None
    assert llm_codecs.decompress(frame) == binary
    # Streams cannot know in advance: they keep the llm header, and decode the same.
    import io

    out = io.BytesIO()
    llm_codecs.compress_stream(io.BytesIO(binary), out, "llm", model=gpt2, block_size=1000)
    assert FrameReader(out.getvalue()).header.codec == "llm"
    assert llm_codecs.decompress(out.getvalue()) == binary


# -- the probe: the encoder may give up on a block LZ77 clearly wins ------------------------


def test_model_may_win_compares_the_extrapolated_rate_with_the_rival():
    from llm_codecs.codecs.llm import PROBE_GAIN, model_may_win

    # 1,000 window tokens at 2 bits each, a block of 10,000 tokens: 20,000 bits expected,
    # PROBE_GAIN of it at best.
    best_case_bytes = PROBE_GAIN * 2 * 10_000 / 8
    assert model_may_win(2000.0, 1000, 10_000, int(best_case_bytes) + 1)
    assert not model_may_win(2000.0, 1000, 10_000, int(best_case_bytes) - 1)
    assert model_may_win(0.0, 0, 10_000, 1)  # nothing measured: never give up


def _probe_codec(**params):
    codec = make_codec("llm", **{"lanes": 4, **params})
    codec._fallback_payload(b"compile or load the LZ77 kernels")
    return codec


def test_a_block_the_probe_gives_up_is_lz77_and_decodes(monkeypatch):
    import llm_codecs.codecs.llm as llm_module

    block = read_head("canterbury/alice29.txt", 3000)
    coded = _probe_codec()
    steps = lane_layout(len(coded.loaded.tokenizer.encode(block)), 4)[1]
    assert steps >= 2 * llm_module.PROBE_STEPS  # the probe applies to this block
    monkeypatch.setattr(llm_module, "PROBE_GAIN", 1e6)  # the model "cannot" win anywhere
    gave_up = _probe_codec()
    (method, payload), = gave_up.encode_blocks([block])
    assert method in llm_module._FALLBACK_METHODS
    assert gave_up.probe_counts == {"given_up": 1, "coded": 0}
    assert (method, payload) == gave_up._fallback_payload(block)
    # Without the probe the same codec codes it with the model (prose: the model wins).
    no_probe = _probe_codec(probe=False)
    assert no_probe.encode_blocks([block])[0][0] == 3
    assert no_probe.probe_counts == {"given_up": 0, "coded": 1}
    frame = llm_codecs.compress(block, gave_up, block_size=1024)
    assert llm_codecs.decompress(frame) == block
    assert "probe" not in gave_up.params()  # not recorded: the decoder never needs it


@pytest.mark.parametrize(("early_gain", "late_gain"), [(1e6, 0.0), (0.0, 1e6)],
                         ids=["early look", "late look"])
def test_each_look_of_the_probe_can_give_up_on_its_own(monkeypatch, early_gain, late_gain):
    import llm_codecs.codecs.llm as llm_module

    # A gain of 0 never gives up (the estimate is 0 bits); 1e6 always does.
    monkeypatch.setattr(llm_module, "PROBE_EARLY_GAIN", early_gain)
    monkeypatch.setattr(llm_module, "PROBE_GAIN", late_gain)
    block = read_head("canterbury/alice29.txt", 3000)
    codec = _probe_codec()
    calls = []
    from llm_codecs.codecs import llm_steps

    ideal_bits = llm_steps.EncodingSide.ideal_bits

    def spy(self, start, stop, active, scale_bits):
        calls.append((start, stop))
        return ideal_bits(self, start, stop, active, scale_bits)

    monkeypatch.setattr(llm_steps.EncodingSide, "ideal_bits", spy)
    (method, _), = codec.encode_blocks([block])
    assert method in llm_module._FALLBACK_METHODS
    assert codec.probe_counts == {"given_up": 1, "coded": 0}
    early = (llm_module.PROBE_EARLY_STEPS - llm_module.PROBE_EARLY_WINDOW,
             llm_module.PROBE_EARLY_STEPS)
    late = (llm_module.PROBE_STEPS - llm_module.PROBE_WINDOW, llm_module.PROBE_STEPS)
    # The early look gives up before the model runs the late one's steps.
    assert calls == ([early] if early_gain else [early, late])


def test_the_probe_decides_alike_in_a_fresh_process_and_a_warm_one(monkeypatch):
    # A fresh process codes the model before its first fallback (which may compile); its probe
    # must still give up where a warm process's does: frames never depend on process history.
    import llm_codecs.codecs.llm as llm_module

    block = b"An archive is worth what can read it. " * 40  # the context mixer's, not the model's
    monkeypatch.setattr(llm_module._fallback_ready, "is_set", lambda: False)
    first = make_codec("llm")
    cold = first.encode_blocks([block])
    assert first.probe_counts == {"given_up": 1, "coded": 0}
    monkeypatch.undo()
    warm = _probe_codec(lanes=96)
    assert warm.encode_blocks([block]) == cold
    assert warm.probe_counts == {"given_up": 1, "coded": 0}


def test_a_block_the_probe_keeps_is_coded_exactly_as_without_it():
    block = read_head("canterbury/alice29.txt", 3000)
    with_probe, without = _probe_codec(), _probe_codec(probe=False)
    assert with_probe.encode_blocks([block]) == without.encode_blocks([block])
    assert with_probe.probe_counts == {"given_up": 0, "coded": 1}


def test_probe_must_be_a_bool():
    with pytest.raises(llm_codecs.CodecError, match="probe"):
        make_codec("llm", probe="yes")


def test_binary_data_never_loads_the_model():
    # A fresh process: nothing loaded before. Random bytes (every block binary) go to LZ77
    # without the model being loaded, and the frame is the plain LZ77 frame it always was.
    script = textwrap.dedent("""
        import os, llm_codecs
        from llm_codecs.models import loading
        data = os.urandom(300_000)
        frame = llm_codecs.compress(data)
        plain = min(llm_codecs.compress(data, "lz77", level=level, block_size=65536)
                    for level in (9, 5))
        assert frame == plain and llm_codecs.decompress(frame) == data
        codec = llm_codecs.LLMCodec()
        assert codec.decode(codec.encode(data[:70_000])) == data[:70_000]
        assert not loading._cache, "the model was loaded"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def _with_tokenizer_of(source: str, target) -> str:
    import transformers

    transformers.AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return str(target)


def test_a_model_with_weights_missing_from_its_files_is_refused(tiny_models, tmp_path):
    import transformers

    # An encoder saved without a language-model head: loading it as a causal LM would give
    # the head random weights, different in every process.
    tok = transformers.AutoTokenizer.from_pretrained(tiny_models["llama"])
    config = transformers.BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, is_decoder=True)
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    path = _with_tokenizer_of(tiny_models["llama"], tmp_path / "bert")
    with pytest.raises(ModelMismatchError, match="not a complete causal language model"):
        llm_codecs.compress(b"some text " * 50, "llm", model=path)


def test_a_tokenizer_with_more_ids_than_the_model_predicts_is_refused(tiny_models, tmp_path):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tiny_models["llama"])
    config = transformers.AutoConfig.from_pretrained(tiny_models["llama"])
    config.vocab_size = len(tok) - 10
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "narrow")
    path = _with_tokenizer_of(tiny_models["llama"], tmp_path / "narrow")
    with pytest.raises(UnsupportedTokenizerError, match=f"{len(tok)} token ids"):
        llm_codecs.compress(b"some text " * 50, "llm", model=path)


def test_token_bytes_beyond_the_block_are_refused_before_they_are_gathered():
    tokenizer = make_codec("llm").loaded.tokenizer
    ids = tokenizer.encode(b"the quick brown fox " * 50)
    whole = tokenizer.decode(ids)
    assert tokenizer.decode(ids, limit=len(whole)) == whole
    assert tokenizer.decode(ids, limit=len(whole) - 1) is None
    # A forged stream of a million long tokens for a 10-byte block: refused from the counts.
    many = np.full(1_000_000, ids[0], dtype=np.int64)
    assert tokenizer.decode(many, limit=10) is None
