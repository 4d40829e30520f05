"""LSB-first bit streams in ``uint64`` words: the bit writer and reader of the Huffman and LZ77
kernels.

Bits are packed from the least significant bit of each byte up, like deflate; byte ``i`` of the
stream is byte ``i % 8`` of word ``i // 8`` in little-endian order. Both sides work on whole
64-bit words so that a compiled kernel moves up to 63 bits per step.

Writer (numba): the state is ``(acc, nacc, wi)`` - the pending bits, how many, and the index of
the next word to fill - threaded through :func:`put_bits` by the caller, which keeps it in
registers::

    acc, nacc, wi = np.uint64(0), 0, 0
    acc, nacc, wi = put_bits(words, acc, nacc, wi, value, nbits)
    ...
    nbits_total = flush_bits(words, acc, nacc, wi)
    data = words_to_bytes(words, (nbits_total + 7) // 8)

Reader (numba): :func:`peek_bits` returns the 64 bits at any bit position of the words that
:func:`bytes_to_words` made (the stream plus at least two zero words, so a peek at any position
up to 64 bits past the end stays inside the array). :func:`end_error` checks how a stream ends.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

__all__ = ["bytes_to_words", "end_error", "flush_bits", "peek_bits", "put_bits",
           "words_to_bytes"]


@nb.njit(cache=True, nogil=True, inline="always")
def put_bits(words, acc, nacc, wi, value, nbits):  # pragma: no cover - compiled
    """Append the ``nbits`` (0 .. 63) low bits of ``value`` to the writer state (acc, nacc, wi).

    ``value`` must be below ``2**nbits`` (0 when ``nbits`` is 0); ``words`` must have room for
    every word the stream fills. Returns the new state.
    """
    v = np.uint64(value)
    acc |= v << np.uint64(nacc)
    nacc += nbits
    if nacc >= 64:
        words[wi] = acc
        wi += 1
        nacc -= 64
        # The bits of value that did not fit; nbits - nacc is in 1..nbits, never 64.
        acc = v >> np.uint64(nbits - nacc) if nacc else np.uint64(0)
    return acc, nacc, wi


@nb.njit(cache=True, nogil=True, inline="always")
def flush_bits(words, acc, nacc, wi):  # pragma: no cover - compiled
    """Store the pending bits of the writer state; return the stream's length in bits."""
    if nacc:
        words[wi] = acc
    return wi * 64 + nacc


@nb.njit(cache=True, nogil=True, inline="always")
def peek_bits(words, pos):  # pragma: no cover - compiled
    """The 64 bits of the stream starting at bit ``pos`` (``words`` must extend past them)."""
    w = pos >> 6
    o = np.uint64(pos & 63)
    # (hi << 1) << (63 - o) is hi << (64 - o) without the undefined shift by 64 when o == 0.
    return (words[w] >> o) | ((words[w + 1] << np.uint64(1)) << (np.uint64(63) - o))


@nb.njit(cache=True, nogil=True, inline="always")
def end_error(words, pos, nbits):  # pragma: no cover - compiled
    """How a stream of ``nbits`` (a multiple of 8) ends when its last field ends at bit ``pos``.

    0: in the last byte, followed by zero bits only; 1: not in the last byte (bits or bytes
    left over, or read past the end); 2: followed by non-zero padding bits.
    """
    if pos > nbits or nbits - pos >= 8:
        return 1
    if pos < nbits and (peek_bits(words, pos) & np.uint64((1 << (nbits - pos)) - 1)) != 0:
        return 2
    return 0


def words_to_bytes(words: np.ndarray, nbytes: int) -> bytes:
    """The first ``nbytes`` bytes of a stream that :func:`put_bits` wrote into ``words``."""
    return words.astype("<u8", copy=False).view(np.uint8)[:nbytes].tobytes()


def bytes_to_words(buf: np.ndarray) -> np.ndarray:
    """The ``uint8`` stream ``buf`` as native ``uint64`` words followed by at least two zero
    words, for :func:`peek_bits`."""
    n = buf.shape[0]
    words = np.zeros(n // 8 + 3, dtype="<u8")
    words.view(np.uint8)[:n] = buf
    return words.astype(np.uint64, copy=False)
