"""A plain-Python rANS64 encoder for one stream: the test oracle of
:mod:`llm_codecs.coding.rans`.

Same algorithm and byte layout as the vectorized coder (see its module docstring), written with
Python integers and no cleverness so that it is easy to check against ryg_rans ``rans64.h``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["L", "encode"]

L = 1 << 31


def encode(symbols: Sequence[tuple[int, int]], scale_bits: int) -> bytes:
    """Encode ``(start, freq)`` pairs, given in forward symbol order.

    Parameters
    ----------
    symbols : sequence of (int, int)
        Cumulative start and frequency of each symbol in a table of total ``2**scale_bits``.
    scale_bits : int
        ``1 <= scale_bits <= 31``.

    Returns
    -------
    bytes
        The final state in 5-8 LE bytes (the fewest that hold it, at least 5), then the u32 LE
        words in decoding order.
    """
    assert 1 <= scale_bits <= 31
    x = L
    words = []
    for start, freq in reversed(symbols):
        assert freq >= 1 and start >= 0 and start + freq <= 1 << scale_bits
        x_max = ((L >> scale_bits) << 32) * freq
        if x >= x_max:
            words.append(x & 0xFFFFFFFF)
            x >>= 32
        x = ((x // freq) << scale_bits) + (x % freq) + start
        assert L <= x < L << 32
    out = x.to_bytes(max(5, (x.bit_length() + 7) // 8), "little")
    for w in reversed(words):
        out += w.to_bytes(4, "little")
    return out

