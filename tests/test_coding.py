"""The entropy-coding layer on its own: quantized tables and the lane-interleaved rANS coder,
checked against the plain-Python reference coder."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_codecs import CorruptDataError
from llm_codecs.coding.bits import (
    bytes_to_words,
    end_error,
    flush_bits,
    peek_bits,
    put_bits,
    words_to_bytes,
)
from llm_codecs.coding.cache_mix import TokenCacheMixer
from llm_codecs.coding.quantize import cumulative, quantize
from llm_codecs.coding.rans import (
    RansDecoder,
    encode,
    max_symbols,
    parse_state,
    state_bytes,
    symbol_bounds,
)

from . import reference_rans

torch = pytest.importorskip("torch")


def random_logits(rows: int, vocab: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * 4


@pytest.mark.parametrize("scale_bits", [24, 28, 31])
def test_tables_sum_exactly_and_keep_every_symbol(scale_bits):
    logits = random_logits(16, 5000, 0)
    logits[0, :] = -math.inf
    logits[1, 7] = math.inf
    logits[2, 3] = math.nan
    freqs = quantize(logits, scale_bits)
    assert (freqs >= 1).all()
    assert (freqs.sum(dim=1) == 1 << scale_bits).all()


def test_a_row_quantizes_the_same_alone_in_a_batch_and_at_any_thread_count():
    logits = random_logits(64, 30_000, 1)
    batch = quantize(logits)
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for i in (0, 17, 63):
                assert torch.equal(quantize(logits[i : i + 1])[0], batch[i])
            assert torch.equal(quantize(logits), batch)
    finally:
        torch.set_num_threads(previous)


@given(seed=st.integers(0, 2**31), rows=st.integers(1, 5), vocab=st.integers(1, 3000),
       scale_bits=st.integers(24, 31), spread=st.sampled_from([0.01, 1.0, 8.0, 1e4]),
       dtype=st.sampled_from(["float32", "float16", "float64"]))
@settings(max_examples=60, deadline=None, derandomize=True)
def test_the_compiled_tables_are_the_torch_pipeline_bit_for_bit(seed, rows, vocab, scale_bits,
                                                                 spread, dtype):
    logits = (random_logits(rows, vocab, seed) * spread).to(getattr(torch, dtype))
    g = np.random.default_rng(seed)
    for value in (math.inf, -math.inf, math.nan, 3.0e38, -3.0e38):
        if g.random() < 0.3:
            logits[g.integers(rows), g.integers(vocab)] = value
    if g.random() < 0.2:
        logits[0] = -math.inf
    expected = cumulative(quantize(logits, scale_bits))
    # Without the cache, and with it before any token is counted, the tables are quantize()'s.
    for cache in (False, True):
        assert np.array_equal(TokenCacheMixer(rows, vocab, scale_bits, cache).tables(logits),
                              expected.numpy())


def test_the_compiled_tables_find_the_peak_the_torch_pipeline_finds():
    # The compiled tables take each row's maximum on the floats' bit patterns: rows whose peak
    # is a signed zero, an infinity, the largest float, or that hold NaN before their peak.
    vocab = 40
    rows = torch.full((8, vocab), -3.0)
    rows[0, 5], rows[0, 9] = -0.0, 0.0
    rows[1, 5], rows[1, 9] = 0.0, -0.0
    rows[2, :] = -0.0
    rows[3, 2], rows[3, 30] = math.nan, -0.0
    rows[4, 7], rows[4, 8] = math.inf, 3.4028234e38
    rows[5, :] = math.nan
    rows[6, 0], rows[6, 1] = -math.inf, -1e-45  # the smallest subnormal below zero is the peak
    rows[7, :] = -math.inf
    rows[7, 3] = math.nan
    expected = cumulative(quantize(rows, 28)).numpy()
    assert np.array_equal(TokenCacheMixer(8, vocab, 28, True).tables(rows), expected)


def test_the_token_cache_helps_repetitive_text_and_stays_out_of_the_way_otherwise():
    vocab, lanes, steps = 300, 4, 400
    g = torch.Generator().manual_seed(7)
    # Text the "model" predicts badly: tokens from a small set the logits do not favour.
    favourite = torch.randn(vocab, generator=g) * 3
    symbols = (torch.randint(0, 10, (steps, lanes), generator=g) * 7).numpy()
    good = torch.multinomial(torch.softmax(favourite, 0), steps * lanes, replacement=True,
                             generator=g).reshape(steps, lanes).numpy()
    active = np.ones(lanes, dtype=bool)
    for data, cache_wins in ((symbols, True), (good, False)):
        bits = {}
        for cache in (False, True):
            mixer = TokenCacheMixer(lanes, vocab, 28, cache, steps)
            total = 0.0
            for t in range(steps):
                cum = mixer.tables(favourite.expand(lanes, -1))
                assert (cum[:, -1] == 1 << 28).all() and (np.diff(cum, axis=1) >= 1).all()
                _, freq = symbol_bounds(cum, data[t])
                total += float((28 - np.log2(freq.astype(np.float64))).sum())
                mixer.observe(data[t], active)
            bits[cache] = total
        if cache_wins:
            assert bits[True] < 0.5 * bits[False]
        else:
            # Tokens drawn from the model's own distribution: nothing to learn, little to lose
            # (the match models' hit rates start at the model's probability).
            assert bits[True] < 1.02 * bits[False]


def test_tables_do_not_depend_on_how_many_threads_computed_their_rows():
    # A Markov-ish token stream (match and successor models both fire), lanes in 1, 2 and 3
    # parts (uneven): the same tables at every step, and the same state after.
    vocab, lanes, steps = 120, 7, 60
    rng = np.random.default_rng(11)
    data = rng.integers(0, 12, (steps, lanes)) * 9
    data[1::2] = data[::2][: data[1::2].shape[0]]  # repeats the match models predict
    logits = torch.randn(lanes, vocab, generator=torch.Generator().manual_seed(2)) * 2
    active = np.ones(lanes, dtype=bool)
    active[5] = False
    runs = []
    for parts in (1, 2, 3):
        mixer = TokenCacheMixer(lanes, vocab, 28, True, steps, parts)
        tables = []
        for t in range(steps):
            tables.append(mixer.tables(logits).copy())
            mixer.observe(data[t], active)
        runs.append((np.stack(tables), mixer.costs.copy(), mixer._succ.costs.copy()))
    for tables, costs, succ_costs in runs[1:]:
        assert np.array_equal(tables, runs[0][0])
        assert np.array_equal(costs, runs[0][1]) and np.array_equal(succ_costs, runs[0][2])
    assert (np.diff(runs[0][0], axis=2) > 1).any()  # not all flat: the models did something


def _mixer_bits(data: np.ndarray, logits: torch.Tensor, vocab: int) -> float:
    steps, lanes = data.shape
    mixer = TokenCacheMixer(lanes, vocab, 28, True, steps)
    active = np.ones(lanes, dtype=bool)
    total = 0.0
    for t in range(steps):
        cum = mixer.tables(logits)
        assert (cum[:, -1] == 1 << 28).all() and (np.diff(cum, axis=1) >= 1).all()
        _, freq = symbol_bounds(cum, data[t])
        total += float((28 - np.log2(freq.astype(np.float64))).sum())
        mixer.observe(data[t], active)
    return total


def test_successor_counts_learn_what_follows_a_context(monkeypatch):
    from llm_codecs.coding import cache_mix

    # A Markov chain in which every token has three equally likely successors: the match
    # models, which predict one token, catch a third of it; the successor counts all of it.
    vocab, lanes, steps = 200, 4, 500
    rng = np.random.default_rng(3)
    successors = rng.integers(0, 20, (vocab, 3))  # 20 states, each seen ~100 times
    data = np.empty((steps, lanes), dtype=np.int64)
    data[0] = rng.integers(0, vocab, lanes)
    for t in range(1, steps):
        data[t] = successors[data[t - 1], rng.integers(0, 3, lanes)]
    logits = torch.zeros(lanes, vocab)
    with_successors = _mixer_bits(data, logits, vocab)
    monkeypatch.setattr(cache_mix, "SUCCESSOR_ORDERS", ())
    without = _mixer_bits(data, logits, vocab)
    assert with_successors < 0.7 * without
    # log2(3) bits per token is the chain's entropy (a flat model alone pays log2(200)): the
    # counts get within 30% of it (about 1.9 bits per token; without them, about 3.1).
    assert with_successors < 1.3 * np.log2(3) * steps * lanes


def test_the_mixer_refuses_an_observe_without_tables():
    mixer = TokenCacheMixer(2, 50, 28, True, 4)
    with pytest.raises(ValueError, match="tables"):
        mixer.observe(np.zeros(2, dtype=np.int64), np.ones(2, dtype=bool))


def test_quantization_costs_little_over_the_model_cross_entropy():
    logits = random_logits(8, 50_000, 2)
    p = torch.softmax(logits.double(), dim=1)
    freqs = quantize(logits, 28).double() / (1 << 28)
    excess = (p * (torch.log2(p) - torch.log2(freqs))).sum(dim=1)
    assert float(excess.max()) < 0.01  # bits per token


@given(seed=st.integers(0, 2**31), lanes=st.integers(1, 6), steps=st.integers(0, 60),
       scale_bits=st.integers(24, 31))
@settings(max_examples=40, deadline=None)
def test_the_coder_matches_the_reference_and_round_trips(seed, lanes, steps, scale_bits):
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(2, 300))
    logits = torch.from_numpy(rng.normal(0, 3, (steps, lanes, vocab)).astype(np.float32))
    symbols = rng.integers(0, vocab, (steps, lanes))
    lengths = rng.integers(0, steps + 1, lanes)
    active = np.arange(steps)[:, None] < lengths[None, :]
    cums = [cumulative(quantize(logits[t], scale_bits)).numpy() for t in range(steps)]
    bounds = [symbol_bounds(cums[t], symbols[t]) for t in range(steps)]
    # The decoder's order: step by step, lane 0 first, active lanes only.
    pairs = [(int(bounds[t][0][lane]), int(bounds[t][1][lane]))
             for t in range(steps) for lane in range(lanes) if active[t, lane]]
    stream = encode(np.array([p[0] for p in pairs], dtype=np.int64),
                    np.array([p[1] for p in pairs], dtype=np.int64), scale_bits)
    assert stream == reference_rans.encode(pairs, scale_bits)

    dec = RansDecoder(stream)
    for t in range(steps):
        found = dec.decode_step(cums[t], active[t], scale_bits)
        assert np.array_equal(found[active[t]], symbols[t][active[t]])
        assert (found[~active[t]] == -1).all()
    dec.check_finished()


def test_damaged_streams_are_reported_not_decoded():
    cum = cumulative(quantize(random_logits(1, 50, 3), 24)).numpy()
    symbols = np.array([5, 7, 11, 13] * 40)
    starts, freqs = symbol_bounds(np.repeat(cum, len(symbols), axis=0), symbols)
    stream = encode(starts, freqs, 24)
    one = np.ones(1, dtype=bool)
    for bad in (stream[:-4], stream + b"\0\0\0\0", stream[:5], b"\xff" * 8 + stream[8:],
                stream[:4], b""):
        with pytest.raises(CorruptDataError):  # when made, at a step or at the end
            dec = RansDecoder(bad)
            for _ in range(len(symbols)):
                dec.decode_step(cum, one, 24)
            dec.check_finished()


def test_a_read_past_the_end_fails_at_the_symbol_that_needs_it():
    # A stream cut short must not decode on to the end of its block: the forged-count
    # defence of the llm codec (its decoder then costs only the steps the stream holds).
    cum = cumulative(quantize(random_logits(1, 50, 3), 24)).numpy()
    symbols = np.array([5, 7, 11, 13] * 400)
    starts, freqs = symbol_bounds(np.repeat(cum, len(symbols), axis=0), symbols)
    stream = encode(starts, freqs, 24)
    one = np.ones(1, dtype=bool)
    whole = RansDecoder(stream)
    last_read = None
    for i in range(len(symbols)):
        whole.decode_step(cum, one, 24)
        if last_read is None and whole.words_left == 0:
            last_read = i
    whole.check_finished()
    assert last_read is not None and last_read < len(symbols) - 1
    cut = RansDecoder(stream[:-4])
    for i in range(last_read):
        assert cut.decode_step(cum, one, 24)[0] == symbols[i]
    with pytest.raises(CorruptDataError, match="past the end"):
        cut.decode_step(cum, one, 24)
    with pytest.raises(CorruptDataError):  # and it stays failed
        cut.decode_step(cum, one, 24)


@pytest.mark.parametrize("scale_bits", [24, 28, 31])
@pytest.mark.parametrize("rest", [1, 255, 4095])
def test_the_symbol_bound_holds_for_the_cheapest_symbols(scale_bits, rest):
    # The most probable symbol a table can hold (the others `rest` counts together) is the
    # cheapest to code: runs of it are the most symbols a stream of a given length holds.
    M = 1 << scale_bits
    for count in (1, 1000, 200_000, 3_000_000):
        stream = encode(np.full(count, rest, dtype=np.int64),
                        np.full(count, M - rest, dtype=np.int64), scale_bits)
        assert count <= max_symbols(len(stream), scale_bits, rest)
    assert max_symbols(100, scale_bits, 0) is None


def test_the_symbol_bound_is_what_the_format_allows():
    # Not slack: once the stream has words, the cheapest symbols come within a factor of 3.
    M, rest, count = 1 << 24, 4095, 3_000_000
    stream = encode(np.full(count, rest, dtype=np.int64), np.full(count, M - rest, dtype=np.int64),
                    24)
    assert len(stream) > 100
    assert max_symbols(len(stream), 24, rest) < 3 * count


def test_intervals_outside_the_table_are_refused():
    with pytest.raises(ValueError):
        encode(np.array([0]), np.array([0]), 24)
    with pytest.raises(ValueError):
        encode(np.array([(1 << 24) - 1]), np.array([2]), 24)
    with pytest.raises(ValueError):
        encode(np.array([0, 1]), np.array([1]), 24)


@given(x=st.integers(1 << 31, (1 << 63) - 1), words=st.integers(0, 3))
def test_final_states_take_the_fewest_bytes_and_exactly_one_encoding(x, words):
    head = state_bytes(x)
    assert 5 <= len(head) <= 8 and (len(head) == 5 or head[-1] != 0)
    stream = head + b"\x01\x02\x03\x04" * words
    assert parse_state(stream) == (x, len(head))
    assert reference_rans.encode([], 24) == state_bytes(1 << 31)
    # The same state padded with a zero byte, or cut short, is refused.
    if len(head) < 8:
        assert parse_state(head + b"\x00" + b"\x01\x02\x03\x04" * words)[0] is None
    assert parse_state(head[:4])[0] is None


@settings(deadline=None)  # the first example compiles the kernel
@given(st.lists(st.integers(0, 5), max_size=300))
def test_stable_order_matches_numpy_stable_argsort(keys):
    from llm_codecs.coding.huffman import _stable_order

    arr = np.asarray(keys, dtype=np.int64)
    expected = np.argsort(arr, kind="stable")
    assert np.array_equal(_stable_order(arr), expected)



@nb.njit
def _write_bits(ns, vs, words):
    acc, nacc, wi = np.uint64(0), 0, 0
    for k in range(ns.shape[0]):
        acc, nacc, wi = put_bits(words, acc, nacc, wi, vs[k], ns[k])
    return flush_bits(words, acc, nacc, wi)


@settings(deadline=None)  # the first example compiles the kernels
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, (1 << 63) - 1)), max_size=60))
def test_the_bit_writer_packs_lsb_first_and_the_reader_reads_any_position(fields):
    fields = [(n, v & ((1 << n) - 1)) for n, v in fields]
    total = sum(n for n, _ in fields)
    words = np.zeros(total // 64 + 2, dtype=np.uint64)
    ns = np.array([n for n, _ in fields], dtype=np.int64)
    vs = np.array([v for _, v in fields], dtype=np.uint64)
    assert _write_bits(ns, vs, words) == total
    expected = 0
    pos = 0
    for n, v in fields:
        expected |= v << pos
        pos += n
    data = words_to_bytes(words, (total + 7) // 8)
    assert data == expected.to_bytes((total + 7) // 8, "little")
    read = bytes_to_words(np.frombuffer(data, dtype=np.uint8))
    pos = 0
    for n, v in fields:
        window = int(peek_bits(read, pos))
        assert window == (expected >> pos) & ((1 << 64) - 1)
        assert window & ((1 << n) - 1) == v
        pos += n
    nbits = 8 * len(data)
    assert end_error(read, pos, nbits) == 0  # the writer pads with zero bits
    if nbits:
        assert end_error(read, nbits - 8, nbits) == 1  # a whole byte left over
    assert end_error(read, nbits + 1, nbits) == 1  # read past the end
    if pos < nbits:
        flipped = bytearray(data)
        flipped[-1] |= 0x80
        assert end_error(bytes_to_words(np.frombuffer(bytes(flipped), dtype=np.uint8)), pos,
                         nbits) == 2


@pytest.mark.parametrize(("value", "encoded"), [
    (0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    ((1 << 28) - 1, b"\xff\xff\xff\x7f"), ((1 << 35) - 1, b"\xff\xff\xff\xff\x7f"),
])
def test_varints_are_canonical_leb128_of_at_most_five_bytes(value, encoded):
    from llm_codecs.coding.varint import get_varint, put_varint

    out = bytearray(b"!")
    put_varint(out, value)
    assert bytes(out) == b"!" + encoded
    assert get_varint(bytes(out) + b"tail", 1, "test") == (value, 1 + len(encoded))


def test_varints_outside_the_format_are_refused():
    from llm_codecs.coding.varint import MAX_VALUE, get_varint, put_varint

    for bad, why in [(b"", "truncated"), (b"\x80", "truncated"), (b"\xff\xff", "truncated"),
                     (b"\x80\x00", "non-canonical"), (b"\x81\x80\x00", "non-canonical"),
                     (b"\xff\xff\xff\xff\x80\x00", "longer than 5 bytes"),
                     (b"\x80\x80\x80\x80\x80\x01", "longer than 5 bytes")]:
        with pytest.raises(CorruptDataError, match=f"^test: .*{why}"):
            get_varint(bad, 0, "test")
    for value in (-1, MAX_VALUE + 1):
        with pytest.raises(ValueError, match="outside"):
            put_varint(bytearray(), value)


@pytest.mark.parametrize("bad", [23, 32, True, 28.0])
def test_every_user_of_the_tables_accepts_the_same_scale_bits(bad):
    from llm_codecs import CodecError
    from llm_codecs.codecs.llm import LanguageModelCodec
    from llm_codecs.coding.scale import MAX_SCALE_BITS, MIN_SCALE_BITS

    def decode(s):
        bits = s if s in (MIN_SCALE_BITS, MAX_SCALE_BITS) else 24  # a stream made right
        stream = encode(np.array([0]), np.array([1 << (bits - 1)]), bits)
        cum = np.array([[0, 1 << (bits - 1), 1 << bits]], dtype=np.int64)
        RansDecoder(stream).decode_step(cum, np.ones(1, dtype=bool), s)

    uses = [lambda s: quantize(torch.zeros(1, 4), s), lambda s: TokenCacheMixer(1, 4, s),
            lambda s: encode(np.array([0]), np.array([1]), s), decode,
            lambda s: LanguageModelCodec(scale_bits=s)]
    for use in uses:
        with pytest.raises(CodecError, match="scale_bits must be an integer between 24 and 31"):
            use(bad)
        for good in (MIN_SCALE_BITS, MAX_SCALE_BITS):
            use(good)
