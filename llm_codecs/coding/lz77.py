"""LZ77 parsing and reconstruction kernels (numba), free of any framing or entropy coding.

:func:`parse` turns a block into three token streams in the spirit of deflate (RFC 1951):

- ``litlen``: one ``uint16`` symbol per token, ``0..255`` a literal byte, ``256 + c`` a match whose
  length code is ``c`` (:data:`LEN_CODES` codes);
- ``dist``: one symbol per match (``uint16``, as ``litlen``, so one compiled Huffman encoder
  serves both streams): ``0`` repeats the most recent distance, ``1`` the one
  before it, ``2 + c`` an explicit distance with distance code ``c``;
- ``extra``: the extra bits of every match (length extra bits, then distance extra bits), packed
  LSB-first into bytes.

:func:`rebuild` reverses it and checks every field against the output produced so far, returning
an error code (numba cannot raise our exception classes) instead of reading or writing out of
bounds.

Match lengths are ``MIN_MATCH .. MAX_MATCH``; ``v = length - MIN_MATCH`` is coded as::

    v < 16                     -> code v, no extra bits
    2**k <= v < 2**(k + 1)     -> code 16 + 4 (k - 4) + (two bits of v below the top one),
                                  k - 2 extra bits (the rest of v), for k = 4 .. 15

Distances ``d >= 1``; ``u = d - 1`` is coded like deflate's distances::

    u < 4                      -> code u, no extra bits
    2**k <= u < 2**(k + 1)     -> code 2 k + (the bit of u below the top one), k - 1 extra bits,
                                  for k = 2 .. 25 (distances up to 64 MiB)

The two most recent distances are kept as ``rep0, rep1`` (both 1 at the start of a block): a
match with distance symbol 0 uses ``rep0``; symbol 1 uses ``rep1`` and swaps them; an explicit
distance ``d`` makes ``rep1 = rep0, rep0 = d``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from .. import wide_vectors
from .bits import bytes_to_words, end_error, flush_bits, peek_bits, put_bits, words_to_bytes

wide_vectors.install()  # before the kernels below compile

__all__ = [
    "DIST_ALPHABET",
    "LEN_CODES",
    "LITLEN_ALPHABET",
    "MAX_MATCH",
    "MIN_MATCH",
    "parse",
    "rebuild",
]

MIN_MATCH = 3
#: Longest match: v = length - MIN_MATCH must stay below 2**16.
MAX_MATCH = MIN_MATCH + (1 << 16) - 1
#: Number of length codes.
LEN_CODES = 64
#: 256 literals, then the length codes.
LITLEN_ALPHABET = 256 + LEN_CODES
#: Two repeat-distance symbols, then 52 distance codes.
DIST_ALPHABET = 2 + 52
#: Slack after the block in the decoder's buffer for 8-byte copies that overshoot a match.
REBUILD_PAD = 8

ERRORS = {
    1: "literal or match runs past the end of the block",
    2: "match distance reaches before the start of the block",
    3: "extra-bit stream ends early",
    4: "extra-bit stream does not end where the matches end, or has non-zero padding",
    5: "block ends before its size is reached",
    6: "more matches than distance symbols",
    7: "invalid length or distance code",
}


def _tables():
    len_base = np.zeros(LEN_CODES, dtype=np.int64)
    len_extra = np.zeros(LEN_CODES, dtype=np.int64)
    for c in range(16):
        len_base[c] = MIN_MATCH + c
    for k in range(4, 16):
        for m in range(4):
            c = 16 + 4 * (k - 4) + m
            len_base[c] = MIN_MATCH + (1 << k) + (m << (k - 2))
            len_extra[c] = k - 2
    dist_base = np.zeros(DIST_ALPHABET, dtype=np.int64)
    dist_extra = np.zeros(DIST_ALPHABET, dtype=np.int64)
    for c in range(4):
        dist_base[2 + c] = 1 + c
    for k in range(2, 26):
        for m in range(2):
            c = 2 * k + m
            dist_base[2 + c] = 1 + (1 << k) + (m << (k - 1))
            dist_extra[2 + c] = k - 1
    return len_base, len_extra, dist_base, dist_extra


LEN_BASE, LEN_EXTRA, DIST_BASE, DIST_EXTRA = _tables()


# --------------------------------------------------------------------------------------------
# Encoder


@nb.njit(cache=True, nogil=True)
def _bitlen(v):
    """Number of bits of ``v`` >= 0 (0 for 0)."""
    return 64 - np.int64(leading_zeros(np.uint64(v)))


@nb.njit(cache=True, nogil=True)
def _load64(data, i):
    """The 8 bytes at ``i`` as a little-endian integer (``data`` is padded past the block).

    Unsigned indexing lets LLVM merge the byte loads into one unaligned load.
    """
    u = np.uint64(i)
    return (np.uint64(data[u]) | (np.uint64(data[u + np.uint64(1)]) << np.uint64(8))
            | (np.uint64(data[u + np.uint64(2)]) << np.uint64(16))
            | (np.uint64(data[u + np.uint64(3)]) << np.uint64(24))
            | (np.uint64(data[u + np.uint64(4)]) << np.uint64(32))
            | (np.uint64(data[u + np.uint64(5)]) << np.uint64(40))
            | (np.uint64(data[u + np.uint64(6)]) << np.uint64(48))
            | (np.uint64(data[u + np.uint64(7)]) << np.uint64(56)))


@nb.njit(cache=True, nogil=True)
def _hash4(data, i, shift):
    v = _load64(data, i) & np.uint64(0xFFFFFFFF)
    return np.int64(((v * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)) >> np.uint64(shift))


@nb.njit(cache=True, nogil=True)
def _match_len(data, a, b, limit):
    """Length of the common prefix of data[a:] and data[b:], at most ``limit``."""
    n = 0
    while n < limit:
        x = _load64(data, a + n) ^ _load64(data, b + n)
        if x:
            n += np.int64(trailing_zeros(x)) >> 3
            return min(n, limit)
        n += 8
    return limit


@nb.njit(cache=True, nogil=True)
def _score(length, dcost):
    """Rough worth in bits of a match: 8 bits per covered byte less the distance's cost."""
    return 8 * length - dcost


@nb.njit(cache=True, nogil=True)
def _insert(data, head, prev, ins, upto, shift):
    while ins < upto:
        h = _hash4(data, ins, shift)
        prev[ins] = head[h]
        head[h] = ins
        ins += 1
    return ins


@nb.njit(cache=True, nogil=True)
def _find(data, i, n, head, prev, shift, window, chain, nice, good, rep0, rep1, min_score,
          min_len):
    """Best match at ``i``: (length, distance, dist symbol kind, score), length 0 if none.

    kind 0/1 = repeat distance rep0/rep1, 2 = explicit. Positions < i must be in the chains.
    Explicit matches no longer than ``min_len`` are not considered; the chain is cut to a
    quarter when ``min_len >= good`` (as zlib does when a lazy match is already good).
    """
    limit = min(MAX_MATCH, n - i)
    best_len = 0
    best_d = 0
    best_kind = 2
    best_score = min_score
    # Repeat distances first: they cost a couple of bits.
    if rep0 <= i:
        ln = _match_len(data, i, i - rep0, limit)
        if ln >= MIN_MATCH:
            s = _score(ln, 2)
            if s > best_score:
                best_len, best_d, best_kind, best_score = ln, rep0, 0, s
    if rep1 <= i and rep1 != rep0:
        ln = _match_len(data, i, i - rep1, limit)
        if ln >= MIN_MATCH:
            s = _score(ln, 3)
            if s > best_score:
                best_len, best_d, best_kind, best_score = ln, rep1, 1, s
    if best_len >= nice or limit < 4:
        return best_len, best_d, best_kind, best_score
    lo = i - window
    cand = head[_hash4(data, i, shift)]
    # Longest explicit match seen: only longer ones can score better.
    explicit = max(3, min(min_len, limit - 1))
    steps = chain >> 2 if min_len >= good else chain
    while cand >= 0 and cand >= lo and steps > 0:
        steps -= 1
        if data[cand + explicit] == data[i + explicit] and data[cand] == data[i]:
            ln = _match_len(data, cand, i, limit)
            if ln > explicit:
                explicit = ln
                d = i - cand
                s = _score(ln, _bitlen(d - 1) + 5)
                if s > best_score:
                    best_len, best_d, best_kind, best_score = ln, d, 2, s
                if ln >= nice or ln >= limit:
                    break
        cand = prev[cand]
    return best_len, best_d, best_kind, best_score


@nb.njit(cache=True, nogil=True)
def _parse_kernel(block, window, chain, nice, good, lazy_depth, max_lazy, lazy_margin,
                  max_insert, hash_bits, min_score):
    n = block.shape[0]
    # Zero padding lets 8-byte loads start at any position of the block.
    data = np.zeros(n + 16, dtype=np.uint8)
    for i in range(n):  # a loop: slice assignment compiles numba's shape-error formatting
        data[i] = block[i]
    litlen = np.empty(max(n, 1), dtype=np.uint16)
    dist = np.empty(n // MIN_MATCH + 1, dtype=np.uint16)
    # A match covers >= 3 bytes and carries <= 14 + 25 extra bits: < 13 bits per byte.
    words = np.zeros(n * 13 // 64 + 4, dtype=np.uint64)
    acc = np.uint64(0)
    nacc = 0
    wi = 0
    nl = 0
    nd = 0
    hb = hash_bits
    while hb > 10 and (1 << (hb - 2)) > n:
        hb -= 1
    shift = 32 - hb
    head = np.full(1 << hb, -1, dtype=np.int32)
    prev = np.empty(max(n, 1), dtype=np.int32)
    rep0 = 1
    rep1 = 1
    ins = 0
    i = 0
    last = n - 3  # positions >= last have no 4-byte hash
    while i < n:
        if i >= last:
            litlen[nl] = data[i]
            nl += 1
            i += 1
            continue
        ins = _insert(data, head, prev, ins, i, shift)
        ln, d, kind, sc = _find(data, i, n, head, prev, shift, window, chain, nice, good, rep0,
                                rep1, min_score, 0)
        if ln == 0:
            litlen[nl] = data[i]
            nl += 1
            i += 1
            continue
        # Lazy evaluation: a better match one byte later wins over this one.
        depth = 0
        while depth < lazy_depth and ln < max_lazy and i + 1 < last:
            ins = _insert(data, head, prev, ins, i + 1, shift)
            ln2, d2, kind2, sc2 = _find(data, i + 1, n, head, prev, shift, window, chain, nice,
                                        good, rep0, rep1, min_score, ln)
            if ln2 == 0 or sc2 <= sc + lazy_margin:
                break
            litlen[nl] = data[i]
            nl += 1
            i += 1
            ln, d, kind, sc = ln2, d2, kind2, sc2
            depth += 1
        # Emit the match.
        v = ln - MIN_MATCH
        if v < 16:
            litlen[nl] = 256 + v
        else:
            k = _bitlen(v) - 1
            litlen[nl] = 256 + 16 + 4 * (k - 4) + ((v >> (k - 2)) & 3)
            acc, nacc, wi = put_bits(words, acc, nacc, wi, v & ((1 << (k - 2)) - 1), k - 2)
        nl += 1
        if kind == 0:
            dist[nd] = 0
        elif kind == 1:
            dist[nd] = 1
            rep1 = rep0
            rep0 = d
        else:
            u = d - 1
            if u < 4:
                dist[nd] = 2 + u
            else:
                k = _bitlen(u) - 1
                dist[nd] = 2 + 2 * k + ((u >> (k - 1)) & 1)
                acc, nacc, wi = put_bits(words, acc, nacc, wi, u & ((1 << (k - 1)) - 1), k - 1)
            rep1 = rep0
            rep0 = d
        nd += 1
        if ln > max_insert:
            ins = max(ins, i + ln)
        i += ln
    nbits = flush_bits(words, acc, nacc, wi)
    return litlen[:nl], dist[:nd], words, (nbits + 7) // 8


def parse(data: np.ndarray, *, window: int, chain: int, nice: int, good: int, lazy_depth: int,
          max_lazy: int, lazy_margin: int, max_insert: int, hash_bits: int,
          min_score: int) -> tuple[np.ndarray, np.ndarray, bytes]:
    """Parse ``data`` (1-D ``uint8``) into ``(litlen, dist, extra bytes)`` token streams.

    Parameters
    ----------
    data : numpy.ndarray
        The block, ``uint8``.
    window : int
        Farthest distance searched in the hash chains (repeat distances may reach any byte).
    chain : int
        Hash-chain candidates examined per position.
    nice : int
        A match this long ends the search.
    good : int
        Lazy evaluation after a match this long searches a quarter of the chain.
    lazy_depth : int
        How many following positions may replace a match found (0 = greedy).
    max_lazy : int
        Matches at least this long are taken without lazy evaluation.
    lazy_margin : int
        Score a later match must beat the current one by to replace it.
    max_insert : int
        Positions inside matches longer than this are not inserted in the hash chains.
    hash_bits : int
        Log2 of the hash-head table size (reduced for small blocks).
    min_score : int
        A match must score above this (8 bits per byte less its distance cost) to be used.

    Returns
    -------
    tuple
        ``litlen`` and ``dist`` (both ``uint16``) and the extra bits as bytes.
    """
    litlen, dist, words, nbytes = _parse_kernel(data, window, chain, nice, good, lazy_depth,
                                                max_lazy, lazy_margin, max_insert, hash_bits,
                                                min_score)
    extra = words_to_bytes(words, nbytes)
    return litlen, dist, extra


# --------------------------------------------------------------------------------------------
# Decoder


@nb.njit(cache=True, nogil=True)
def _store64(out, i, v):
    """Store ``v`` little-endian at ``out[i:i + 8]`` (merged into one unaligned store)."""
    u = np.uint64(i)
    m = np.uint64(0xFF)
    out[u] = np.uint8(v & m)
    out[u + np.uint64(1)] = np.uint8((v >> np.uint64(8)) & m)
    out[u + np.uint64(2)] = np.uint8((v >> np.uint64(16)) & m)
    out[u + np.uint64(3)] = np.uint8((v >> np.uint64(24)) & m)
    out[u + np.uint64(4)] = np.uint8((v >> np.uint64(32)) & m)
    out[u + np.uint64(5)] = np.uint8((v >> np.uint64(40)) & m)
    out[u + np.uint64(6)] = np.uint8((v >> np.uint64(48)) & m)
    out[u + np.uint64(7)] = np.uint8((v >> np.uint64(56)) & m)


@nb.njit(cache=True, nogil=True)
def _rebuild_kernel(litlen, dist, words, nbits, out, len_base, len_extra, dist_base, dist_extra):
    """Write the block into ``out[:-REBUILD_PAD]``; return 0 or an error code of :data:`ERRORS`.

    ``words`` holds the extra bits with at least two zero words past ``nbits``: every read
    happens at a position <= nbits + 64 and is checked against ``nbits`` before use.
    """
    size = out.shape[0] - REBUILD_PAD
    nl = litlen.shape[0]
    nd = dist.shape[0]
    op = 0
    di = 0
    pos = 0
    rep0 = 1
    rep1 = 1
    for k in range(nl):
        s = np.int64(litlen[k])
        if s < 256:
            if op >= size:
                return 1
            out[op] = s
            op += 1
            continue
        c = s - 256
        if c >= len_base.shape[0]:
            return 7
        eb = len_extra[c]
        ln = len_base[c]
        if eb:
            ln += np.int64(peek_bits(words, pos) & np.uint64((1 << eb) - 1))
            pos += eb
        if di >= nd:
            return 6
        ds = np.int64(dist[di])
        di += 1
        if ds == 0:
            d = rep0
        elif ds == 1:
            d = rep1
            rep1 = rep0
            rep0 = d
        else:
            if ds >= dist_base.shape[0]:
                return 7
            eb = dist_extra[ds]
            d = dist_base[ds]
            if eb:
                d += np.int64(peek_bits(words, pos) & np.uint64((1 << eb) - 1))
                pos += eb
            rep1 = rep0
            rep0 = d
        if pos > nbits:
            return 3
        if ln > size - op:
            return 1
        if d > op:
            return 2
        src = op - d
        if d >= 8:
            # 8 bytes at a time; may write up to 7 bytes past the match (``out`` is padded),
            # which later tokens overwrite. Reads stay behind ``op`` because d >= 8.
            for j in range(0, ln, 8):
                _store64(out, op + j, _load64(out, src + j))
        else:
            for j in range(ln):
                out[op + j] = out[src + j]
        op += ln
    if op != size:
        return 5
    if di != nd:
        return 6
    return 4 if end_error(words, pos, nbits) else 0


def rebuild(litlen: np.ndarray, dist: np.ndarray, extra, size: int) -> tuple[np.ndarray, int]:
    """Rebuild a block of ``size`` bytes from its token streams.

    Parameters
    ----------
    litlen : numpy.ndarray
        Literal/length symbols (``uint16``, all below :data:`LITLEN_ALPHABET`).
    dist : numpy.ndarray
        Distance symbols (``uint8``, all below :data:`DIST_ALPHABET`).
    extra : bytes-like
        The extra bits, exactly as :func:`parse` returned them.
    size : int
        Length of the block.

    Returns
    -------
    tuple
        The block as a ``uint8`` array and 0, or an undefined array and a key of
        :data:`ERRORS`.
    """
    buf = np.frombuffer(extra, dtype=np.uint8)
    words = bytes_to_words(buf)
    out = np.empty(size + REBUILD_PAD, dtype=np.uint8)
    err = _rebuild_kernel(litlen, dist, words, 8 * buf.shape[0], out, LEN_BASE, LEN_EXTRA,
                          DIST_BASE, DIST_EXTRA)
    return out[:size], err
