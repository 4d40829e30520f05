"""rANS64 with one state for all lanes: a block's symbols coded in lane-interleaved order.

The design is ryg_rans ``rans64.h``: the state ``x`` lives in ``[L, L * 2**32)`` with
``L = 2**31`` (so it fits a *signed* int64), the coder moves 32-bit words, ``scale_bits <= 31``,
the encoder consumes symbols in reverse order and emits at most one word per symbol, the decoder
runs forward and reads at most one word per symbol.

The LLM codec advances many lanes in lock-step and gets one frequency table per lane per step.
All of a block's symbols go through *one* state, in the order the decoder meets them: step by
step, and within a step lane 0 first. One state per lane would let the lanes decode
independently, but the model already advances them together, and every stream pays a 5-8 byte
final state and a length: 2-3% of a 64 KiB block's payload at 64 lanes. Shared, the state is paid
once. The per-step work is one compiled loop over the lanes (:meth:`RansDecoder.decode_step`),
and the whole block is encoded in one call at the end (:func:`encode`), so the coder stays a
negligible part of the time next to the model.

Byte layout of a stream (what :func:`encode` returns and :class:`RansDecoder` reads; the same as
``tests/reference_rans.py``, the plain-Python oracle)::

    S bytes LE  final encoder state (the decoder's initial state), in [2**31, 2**63)
    u32 LE      words, in the order the decoder reads them (the reverse of the emission order)

where ``S`` is 5, 6, 7 or 8: the fewest bytes that hold the state, but at least 5. A stream is
``S + 4 * n_words`` bytes, so ``S = 5 + (len - 5) % 4`` is implied by its length, and the state
must use all ``S`` bytes (its top byte is non-zero when ``S > 5``): one encoding per state. A
stream of no symbol is the 5 bytes of ``L``. The encoder starts from ``x = L``; the decoder must
end at exactly ``L`` with every word consumed, which is how damage to the payload is detected
(:meth:`RansDecoder.check_finished`); a symbol that needs a word past the end fails at once.

Typical use, with ``cum`` the ``(lanes, V + 1)`` cumulative tables of each step::

    starts, freqs = [], []
    for t in range(T):                                  # the decoder's order
        start, freq = symbol_bounds(cum[t], symbols[t])
        starts.append(start[active[t]]); freqs.append(freq[active[t]])
    stream = encode(np.concatenate(starts), np.concatenate(freqs), scale_bits)

    dec = RansDecoder(stream)
    for t in range(T):
        symbols[t] = dec.decode_step(cum[t], active[t], scale_bits)
    dec.check_finished()
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors
from ..errors import CorruptDataError
from .scale import check_scale_bits

wide_vectors.install()  # before the kernels below compile

__all__ = [
    "RANS_L",
    "RansDecoder",
    "encode",
    "max_symbols",
    "parse_state",
    "state_bytes",
    "symbol_bounds",
]

RANS_L = 1 << 31
"""Lower bound of the normalized state interval ``[L, L * 2**32)``."""

_L = np.int64(RANS_L)
_WORD_MASK = np.int64((1 << 32) - 1)


def symbol_bounds(cum_freqs: np.ndarray, symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative start and frequency of one symbol per lane.

    Parameters
    ----------
    cum_freqs : numpy.ndarray
        int64 ``(lanes, V + 1)`` cumulative tables with a leading zero.
    symbols : numpy.ndarray
        int ``(lanes,)`` symbol indices in ``[0, V)``.

    Returns
    -------
    start, freq : numpy.ndarray
        int64 ``(lanes,)`` each.
    """
    rows = np.arange(cum_freqs.shape[0])
    start = cum_freqs[rows, symbols]
    return start, cum_freqs[rows, symbols + 1] - start


@nb.njit(cache=True, nogil=True)
def _encode_words(starts, freqs, scale_bits, words):  # pragma: no cover - compiled
    """Run the encoder backwards over the symbols; return ``(state, words emitted)``."""
    M = np.int64(1) << scale_bits
    x = _L
    n = 0
    for i in range(starts.shape[0] - 1, -1, -1):
        start = starts[i]
        freq = freqs[i]
        if freq < 1 or start < 0 or start + freq > M:
            raise ValueError("rANS: symbol interval outside the table")
        # Renormalize: x >= ((L >> sb) << 32) * freq, written as a shift so that
        # freq == 2**sb (a one-symbol table) cannot overflow the signed product.
        if (x >> (63 - scale_bits)) >= freq:
            words[n] = x & _WORD_MASK
            n += 1
            x >>= 32
        q = x // freq
        x = (q << scale_bits) + (x - q * freq) + start
    return x, n


def encode(starts: np.ndarray, freqs: np.ndarray, scale_bits: int) -> bytes:
    """Encode symbols given by their intervals, in the order the decoder will find them.

    Parameters
    ----------
    starts, freqs : numpy.ndarray
        int64 ``(n,)``: each symbol's cumulative start and frequency in a table summing to
        ``2**scale_bits``, with ``freq >= 1`` and ``start + freq <= 2**scale_bits``.
    scale_bits : int
        Table precision, 24 .. 31 (:mod:`.scale`).

    Returns
    -------
    bytes
        The stream (module docstring).

    Raises
    ------
    ValueError
        ``scale_bits`` out of range, arrays of different lengths, or an interval outside the
        table.
    """
    check_scale_bits(scale_bits)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    freqs = np.ascontiguousarray(freqs, dtype=np.int64)
    if starts.shape != freqs.shape or starts.ndim != 1:
        raise ValueError("starts and freqs must be 1-D arrays of the same length")
    words = np.empty(starts.shape[0], dtype=np.int64)
    x, n = _encode_words(starts, freqs, scale_bits, words)
    # The decoder reads the last emitted word first.
    return state_bytes(int(x)) + words[:n][::-1].astype("<u4").tobytes()


def state_bytes(x: int) -> bytes:
    """The final state ``x`` in the fewest little-endian bytes, at least 5 (module docstring)."""
    return x.to_bytes(max(5, (x.bit_length() + 7) // 8), "little")


def max_symbols(stream_length: int, scale_bits: int, rest: int) -> int | None:
    """Most symbols a valid stream of ``stream_length`` bytes can hold.

    Sound for tables in which the symbols other than the one decoded always hold at least
    ``rest`` counts together (``V - 1`` for a table of ``V`` symbols that each keep a count, as
    every table of the LLM codec does); None (no bound) when ``rest < 1``.

    Why: a symbol ``(start, f)`` decoded from a state ``x = y M + slot`` (``M =
    2**scale_bits``, ``y >= x / (2M)`` because ``x >= L >= M``) leaves ``x' = f y + slot -
    start``, so ``x - x' = y (M - f) + start >= x rest / (2M)``: every symbol takes at least
    ``c = -log2(1 - rest / (2M)) > rest / (2M ln 2)`` bits off the state, a word read adds
    fewer than 33 (``x'' < (x' + 1) 2**32 <= 2 x' 2**32``), and the state goes from below
    ``2**63`` to exactly ``L = 2**31`` over the stream's ``n`` words, so at most
    ``(32 + 33 n) / c`` symbols. The bound is weak: a symbol of probability ``1 - rest / M``
    is legitimately almost free (about 1.5 million symbols per word for a 4,096-token
    vocabulary at ``scale_bits=28``), so it only refuses streams far too short for their count;
    the decoder's refusal to read past the end is what stops a forged stream early.
    """
    if rest < 1:
        return None
    words = max(0, stream_length - 5) // 4
    # ln 2 < 0.6932: rounding up keeps the integer bound above the real one.
    return (32 + 33 * words) * 2 * (1 << scale_bits) * 6932 // (10000 * rest) + 1


def parse_state(stream: bytes) -> tuple[int | None, int]:
    """``(state, header_bytes)`` of a stream; state None when malformed (short, out of range,
    or not minimally encoded)."""
    if len(stream) < 5:
        return None, len(stream)
    head = 5 + (len(stream) - 5) % 4
    x = int.from_bytes(stream[:head], "little")
    if not RANS_L <= x < 1 << 63 or len(state_bytes(x)) != head:
        return None, head
    return x, head


@nb.njit(cache=True, nogil=True)
def _decode_step(cum, active, scale_bits, words, state, out):  # pragma: no cover - compiled
    """Decode one symbol per active lane, lane 0 first; ``state`` is ``[x, pos, bad]``."""
    x, pos, bad = state[0], state[1], state[2]
    mask = (np.int64(1) << scale_bits) - 1
    lanes, width = cum.shape
    n_words = words.shape[0]
    for lane in range(lanes):
        if not active[lane]:
            out[lane] = -1
            continue
        slot = x & mask
        # The last s with cum[s] <= slot: with cum[0] == 0 and cum[V] == 2**sb it holds slot
        # and has a non-zero frequency. A malformed table only makes a wrong (bounded) symbol.
        lo, hi = 0, width - 1
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if cum[lane, mid] <= slot:
                lo = mid
            else:
                hi = mid
        start = cum[lane, lo]
        freq = cum[lane, lo + 1] - start
        x = freq * (x >> scale_bits) + slot - start
        out[lane] = lo
        if x < _L:
            if pos == n_words or x == 0:
                # Past the stream's end (or a table without the symbol's count): no stream the
                # encoder wrote gets here, so stop now rather than decode on from nothing.
                bad = 1
                break
            x = (x << 32) | words[pos]
            pos += 1
    state[0], state[1], state[2] = x, pos, bad


class RansDecoder:
    """Decoder of one stream from :func:`encode`, a step of lanes at a time.

    A malformed stream is refused as soon as it shows: a stream shorter than 5 bytes or whose
    initial state is out of range or not minimally encoded when the decoder is made, a read past
    the stream's end at the symbol that needs it (:meth:`decode_step`), words left over or a
    final state other than ``L`` at :meth:`check_finished`. A forged stream therefore costs
    the steps it really decodes, not the ones its container declares.

    Parameters
    ----------
    stream : bytes
        The stream, as produced by :func:`encode`.

    Raises
    ------
    CorruptDataError
        The stream's initial state is malformed.
    """

    def __init__(self, stream: bytes) -> None:
        stream = bytes(stream)
        x, head = parse_state(stream)
        if x is None:
            raise CorruptDataError("rANS stream check failed: malformed initial state")
        # (len - head) is a multiple of 4
        self._words = np.frombuffer(stream, dtype="<u4", offset=head).astype(np.int64)
        self._state = np.array([x, 0, 0], dtype=np.int64)

    @property
    def words_left(self) -> int:
        """Words of the stream not read yet."""
        return int(self._words.shape[0] - self._state[1])

    @property
    def state(self) -> int:
        """The decoder's current state, in ``[L, L * 2**32)``."""
        return int(self._state[0])

    def decode_step(self, cum_freqs: np.ndarray, active: np.ndarray,
                    scale_bits: int) -> np.ndarray:
        """Decode the next symbol of every active lane.

        Parameters
        ----------
        cum_freqs : numpy.ndarray
            int64 ``(lanes, V + 1)`` cumulative tables with a leading zero, rows summing to
            ``2**scale_bits``: the ones the encoder used for this step.
        active : numpy.ndarray
            bool ``(lanes,)``: the lanes that coded a symbol at this step.
        scale_bits : int
            Table precision.

        Returns
        -------
        numpy.ndarray
            int64 ``(lanes,)``: the symbols, ``-1`` on inactive lanes.

        Raises
        ------
        CorruptDataError
            A symbol needs a word past the stream's end (no stream :func:`encode` wrote does).
        """
        check_scale_bits(scale_bits)
        cum_freqs = np.ascontiguousarray(cum_freqs, dtype=np.int64)
        active = np.ascontiguousarray(active, dtype=np.bool_)
        if cum_freqs.ndim != 2 or cum_freqs.shape[1] < 2 or active.shape != cum_freqs.shape[:1]:
            raise ValueError("cum_freqs must be (lanes, V + 1) with V >= 1 and active (lanes,)")
        out = np.empty(cum_freqs.shape[0], dtype=np.int64)
        if self._state[2]:
            raise CorruptDataError("rANS stream check failed: decoding past a failure")
        _decode_step(cum_freqs, active, scale_bits, self._words, self._state, out)
        if self._state[2]:
            raise CorruptDataError("rANS stream check failed: read past the end of the stream")
        return out

    def check_finished(self) -> None:
        """Verify that the stream was consumed exactly and returned to the initial state.

        Raises
        ------
        CorruptDataError
            If the stream was malformed, over-read, not fully consumed, or ended in a state other
            than ``L``.
        """
        x, pos, bad = (int(v) for v in self._state)
        if bad or pos != self._words.shape[0] or x != RANS_L:
            raise CorruptDataError(
                "rANS stream check failed: "
                + ("over-read" if bad else
                   f"{self._words.shape[0] - pos} word(s) left" if pos != self._words.shape[0]
                   else "wrong final state")
            )
