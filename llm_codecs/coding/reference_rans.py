"""A plain-Python rANS64 for one stream: the test oracle of :mod:`.rans`.

Same algorithm and byte layout as the vectorized coder (see its module docstring), written with
Python integers and no cleverness so that it is easy to check against ryg_rans ``rans64.h``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import CorruptDataError

__all__ = ["L", "decode", "encode"]

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


def decode(data: bytes, steps: int, scale_bits: int,
           lookup: Callable[[int, int], tuple[int, int, int]]) -> list[int]:
    """Decode ``steps`` symbols.

    Parameters
    ----------
    data : bytes
        A stream from :func:`encode`.
    steps : int
        Number of symbols to decode.
    scale_bits : int
        Table precision.
    lookup : callable
        ``lookup(step, slot) -> (symbol, start, freq)`` with ``start <= slot < start + freq``.

    Returns
    -------
    list of int
        The decoded symbols.

    Raises
    ------
    CorruptDataError
        If the stream is malformed, too short, not fully consumed, or does not end in state ``L``.
    """
    if len(data) < 5:
        raise CorruptDataError("bad stream length")
    pos = 5 + (len(data) - 5) % 4
    x = int.from_bytes(data[:pos], "little")
    if not L <= x < L << 32 or max(5, (x.bit_length() + 7) // 8) != pos:
        raise CorruptDataError("bad initial state")
    out = []
    mask = (1 << scale_bits) - 1
    for t in range(steps):
        slot = x & mask
        sym, start, freq = lookup(t, slot)
        out.append(sym)
        x = freq * (x >> scale_bits) + slot - start
        if x < L:
            if pos + 4 > len(data):
                raise CorruptDataError("stream over-read")
            x = (x << 32) | int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
    if pos != len(data) or x != L:
        raise CorruptDataError("stream not consumed exactly or bad final state")
    return out
