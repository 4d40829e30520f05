"""Canonical, length-limited Huffman coding of symbol arrays, free of any framing.

:func:`encode_symbols` turns a 1-D array of symbols (``uint8`` or ``uint16``, alphabet of at most
4096 symbols) into one self-contained stream: a compact code-length table followed by the coded
bits. :func:`decode_symbols` turns such a stream back into exactly ``count`` symbols and raises
:class:`~llm_codecs.errors.CorruptDataError` on anything it could not have produced.

Stream format (bits are packed LSB-first into bytes, like deflate)::

    count == 0          -> the empty stream b"".
    byte 0 == 0x01      -> one distinct symbol: then the symbol, 1 byte (alphabet <= 256) or
                           2 bytes little-endian; zero bits per symbol.
    byte 0 == 0x02      -> Huffman; then, as one bitstream from byte 1 on:
        12 bits   nsym - 1: lengths follow for symbols 0 .. nsym - 1 (nsym <= alphabet_size)
         4 bits   ncl - 4: number of code-length-code lengths (4 .. 19)
        ncl x 3   code-length-code lengths, in the order of ``CL_ORDER``
        ...       the nsym code lengths, coded with the code-length code: CL symbols 0..15 are a
                  length, 16 = repeat the previous length 3..6 times (2 extra bits),
                  17 = 3..10 zeros (3 extra bits), 18 = 11..138 zeros (7 extra bits)
        if count >= SPLIT_MIN:  3 x B bits, the bit lengths of segments 0, 1, 2, where
                  B = bit_length(MAX_LEN * ceil(count / 4)); the symbols are split into four
                  segments of ceil(count / 4) symbols (the last one takes the rest)
        ...       the coded symbols, segment after segment (a single segment below SPLIT_MIN)
        0..7      zero bits up to the byte boundary; nothing may follow.

Both codes must be complete (Kraft sum exactly one) with at least two coded symbols, and no code is
longer than :data:`MAX_LEN` (15) bits (the encoder prefers :data:`FAST_LEN`, 12), so the decoder
needs a single lookup table of at most 2**15 entries and never meets an unassigned code. Four
independent segments let the decoder run four dependency chains at once, which is what makes
table-driven decoding fast on out-of-order CPUs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors
from ..errors import CorruptDataError
from .bits import (
    bytes_to_words,
    end_error,
    flush_bits,
    peek_bits,
    put_bits,
    words_to_bytes,
)

wide_vectors.install()  # before the kernels below compile

__all__ = [
    "CL_ORDER",
    "MAX_ALPHABET",
    "MAX_LEN",
    "SPLIT_MIN",
    "decode_symbols",
    "encode_symbols",
]

#: Longest code in bits: four codes always fit one 64-bit window, and a 4096-symbol alphabet
#: with a long tail still gets near-optimal codes.
MAX_LEN = 15
#: Longest code the encoder prefers: the decoder's table has 2**(longest code) entries, and up to
#: 12 bits (8 KiB) it stays in L1 and is cheap to build for small streams. A longer limit is used
#: only when it saves more than 1/LIMIT_GAIN of the coded bits.
FAST_LEN = 12
LIMIT_GAIN = 2048
#: Largest alphabet: the stream's symbol-count field has 12 bits.
MAX_ALPHABET = 1 << 12
#: Streams of at least this many symbols are split into four independently decodable segments.
SPLIT_MIN = 4096
#: Longest code-length-code length (3-bit fields).
CL_MAX_LEN = 7
#: Code-length-code symbols in the order their lengths are sent (deflate's): rarely used ones
#: last so that trailing zero lengths can be dropped.
CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15],
                    dtype=np.int64)

_MODE_SINGLE = 1
_MODE_HUFFMAN = 2

# Error codes returned by the decoding kernel (numba cannot raise our exception classes).
_ERRORS = {
    1: "stream ends inside the code-length table",
    2: "code-length table describes more symbols than the alphabet holds",
    3: "invalid code-length code",
    4: "code-length run overflows the table or repeats nothing",
    5: "invalid symbol code lengths (over-subscribed, incomplete or fewer than two symbols)",
    6: "invalid segment lengths",
    7: "stream ends before all symbols are decoded",
    8: "stream does not end where the coded symbols end",
    9: "non-zero padding bits",
}


# --------------------------------------------------------------------------------------------
# Code construction


@nb.njit(cache=True, nogil=True)
def _stable_order(keys):
    """Indices that sort ``keys`` ascending, equal keys in index order (bottom-up merge sort).

    The same order as ``np.argsort(keys, kind="stable")``, which numba compiles several times
    slower (seconds on a fresh install, before the first block is coded).
    """
    n = keys.shape[0]
    a = np.arange(n)
    b = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if keys[a[j]] < keys[a[i]]:
                    b[k] = a[j]
                    j += 1
                else:
                    b[k] = a[i]
                    i += 1
                k += 1
            while i < mid:
                b[k] = a[i]
                i += 1
                k += 1
            while j < hi:
                b[k] = a[j]
                j += 1
                k += 1
        a, b = b, a
        width *= 2
    return a


@nb.njit(cache=True, nogil=True)
def _package_merge(freq, max_len):
    """Optimal code lengths of at most ``max_len`` bits for ``freq`` (zeros get length 0).

    Boundary-free package-merge: O(n * max_len) time and memory, fine for n <= 4096. Needs at
    least two non-zero frequencies and at most ``2**max_len`` of them.
    """
    n_all = freq.shape[0]
    lengths = np.zeros(n_all, dtype=np.int64)
    used = np.nonzero(freq)[0]
    n = used.shape[0]
    # Stable order keeps the result a pure function of the histogram.
    order = used[_stable_order(freq[used])]
    leaves = freq[order].astype(np.int64)
    # is_pkg[level, i]: item i of the merged list at that level is a package, not a leaf.
    is_pkg = np.zeros((max_len, 2 * n), dtype=np.bool_)
    cur = np.empty(2 * n, dtype=np.int64)
    for i in range(n):  # a loop: slice assignment compiles numba's shape-error formatting
        cur[i] = leaves[i]
    cur_n = n
    merged = np.empty(2 * n, dtype=np.int64)
    for level in range(max_len - 2, -1, -1):
        npk = cur_n // 2
        i = 0
        j = 0
        k = 0
        while i < n or j < npk:
            if j >= npk or (i < n and leaves[i] <= cur[2 * j] + cur[2 * j + 1]):
                merged[k] = leaves[i]
                i += 1
            else:
                merged[k] = cur[2 * j] + cur[2 * j + 1]
                is_pkg[level, k] = True
                j += 1
            k += 1
        cur_n = k
        cur, merged = merged, cur
    # Select the 2n - 2 cheapest items at the top level; each selected leaf at each level adds
    # one bit to that leaf's code, and the packages selected at a level expand into twice as
    # many items of the level below.
    take = 2 * n - 2
    for level in range(max_len):
        leaves_taken = 0
        pkgs = 0
        for k in range(take):
            if is_pkg[level, k]:
                pkgs += 1
            else:
                leaves_taken += 1
        for i in range(leaves_taken):
            lengths[order[i]] += 1
        take = 2 * pkgs
        if take == 0:
            break
    return lengths


@nb.njit(cache=True, nogil=True, inline="always")
def _reverse(code, length):
    r = 0
    for _ in range(length):
        r = (r << 1) | (code & 1)
        code >>= 1
    return r


@nb.njit(cache=True, nogil=True)
def _canonical_codes(lengths, max_len):
    """Bit-reversed canonical codes (ready for LSB-first output) for ``lengths``."""
    n = lengths.shape[0]
    bl_count = np.zeros(max_len + 1, dtype=np.int64)
    for s in range(n):
        bl_count[lengths[s]] += 1
    bl_count[0] = 0
    next_code = np.zeros(max_len + 2, dtype=np.int64)
    code = 0
    for b in range(1, max_len + 1):
        code = (code + bl_count[b - 1]) << 1
        next_code[b] = code
    codes = np.zeros(n, dtype=np.int64)
    for s in range(n):
        ln = lengths[s]
        if ln:
            codes[s] = _reverse(next_code[ln], ln)
            next_code[ln] += 1
    return codes


# --------------------------------------------------------------------------------------------
# Encoder


@nb.njit(cache=True, nogil=True)
def _histogram(symbols, alphabet_size):
    """Symbol counts, or None if a symbol is >= alphabet_size."""
    n = symbols.shape[0]
    n4 = n - n % 4
    if symbols.itemsize == 1:
        # Four sub-histograms so that runs of one symbol do not serialise on one counter.
        h = np.zeros((4, 256), dtype=np.int64)
        for i in range(0, n4, 4):
            h[0, symbols[i]] += 1
            h[1, symbols[i + 1]] += 1
            h[2, symbols[i + 2]] += 1
            h[3, symbols[i + 3]] += 1
        for i in range(n4, n):
            h[0, symbols[i]] += 1
        total = h[0] + h[1] + h[2] + h[3]
        for s in range(alphabet_size, 256):
            if total[s]:
                return None
        return total[:alphabet_size]
    h = np.zeros((4, alphabet_size), dtype=np.int64)
    for i in range(0, n4, 4):
        s0 = symbols[i]
        s1 = symbols[i + 1]
        s2 = symbols[i + 2]
        s3 = symbols[i + 3]
        if max(max(s0, s1), max(s2, s3)) >= alphabet_size:
            return None
        h[0, s0] += 1
        h[1, s1] += 1
        h[2, s2] += 1
        h[3, s3] += 1
    for i in range(n4, n):
        if symbols[i] >= alphabet_size:
            return None
        h[0, symbols[i]] += 1
    return h[0] + h[1] + h[2] + h[3]


@nb.njit(cache=True, nogil=True)
def _lengths_rle(lengths, nsym):
    """Run-length code ``lengths[:nsym]`` into (CL symbol, extra value) pairs."""
    syms = np.empty(nsym, dtype=np.int64)
    extra = np.empty(nsym, dtype=np.int64)
    m = 0
    i = 0
    while i < nsym:
        ln = lengths[i]
        run = 1
        while i + run < nsym and lengths[i + run] == ln:
            run += 1
        if ln == 0:
            if run >= 11:
                r = min(run, 138)
                syms[m] = 18
                extra[m] = r - 11
            elif run >= 3:
                r = run
                syms[m] = 17
                extra[m] = r - 3
            else:
                r = 1
                syms[m] = 0
                extra[m] = 0
            m += 1
            i += r
        else:
            syms[m] = ln
            extra[m] = 0
            m += 1
            i += 1
            rem = run - 1
            while rem >= 3:
                r = min(rem, 6)
                syms[m] = 16
                extra[m] = r - 3
                m += 1
                i += r
                rem -= r
    return syms[:m], extra[:m]


@nb.njit(cache=True, nogil=True)
def _choose_lengths(freq, max_len, fast_len, gain):
    """Code lengths: limited to ``fast_len`` bits unless ``max_len`` saves > 1/gain of the bits."""
    best = _package_merge(freq, max_len)
    longest = 0
    bits = 0
    for s in range(freq.shape[0]):
        longest = max(longest, best[s])
        bits += freq[s] * best[s]
    if longest <= fast_len:
        return best
    used = 0
    for s in range(freq.shape[0]):
        if freq[s]:
            used += 1
    budget = bits + bits // gain
    for limit in range(fast_len, max_len):
        if used > (1 << limit):
            continue
        lengths = _package_merge(freq, limit)
        cost = 0
        for s in range(freq.shape[0]):
            cost += freq[s] * lengths[s]
        if cost <= budget:
            return lengths
    return best


@nb.njit(cache=True, nogil=True)
def _encode_kernel(symbols, alphabet_size, max_len, fast_len, gain, cl_order, split_min):
    """Whole stream for ``symbols`` (count > 0) as (uint64 words, byte length, status).

    status 0 = ok, -1 = a symbol >= alphabet_size.
    """
    count = symbols.shape[0]
    freq = _histogram(symbols, alphabet_size)
    if freq is None:
        return np.zeros(1, dtype=np.uint64), 0, -1
    nsym = 0
    distinct = 0
    last = 0
    for s in range(alphabet_size):
        if freq[s]:
            distinct += 1
            nsym = s + 1
            last = s
    if distinct == 1:
        # Zero bits per symbol: the mode byte and the symbol say it all.
        w = np.zeros(1, dtype=np.uint64)
        w[0] = np.uint64(1 | (last << 8))
        return w, 2 if alphabet_size <= 256 else 3, 0

    lengths = _choose_lengths(freq[:nsym], max_len, fast_len, gain)
    codes = _canonical_codes(lengths, max_len)

    # Code-length code.
    rle_syms, rle_extra = _lengths_rle(lengths, nsym)
    cl_freq = np.zeros(19, dtype=np.int64)
    for k in range(rle_syms.shape[0]):
        cl_freq[rle_syms[k]] += 1
    cl_used = 0
    for k in range(19):
        if cl_freq[k]:
            cl_used += 1
    if cl_used < 2:
        # A complete code needs two symbols; a phantom one costs 1 bit per CL symbol but lets
        # the decoder insist on complete codes everywhere.
        cl_freq[1 if rle_syms[0] != 1 else 2] = 1
    cl_lengths = _package_merge(cl_freq, 7)
    cl_codes = _canonical_codes(cl_lengths, 7)
    ncl = 19
    while ncl > 4 and cl_lengths[cl_order[ncl - 1]] == 0:
        ncl -= 1

    split = count >= split_min
    seg = (count + 3) // 4
    field = 0
    if split:
        v = max_len * seg
        while v:
            field += 1
            v >>= 1

    max_bits = 8 + 16 + 3 * 19 + rle_syms.shape[0] * 14 + 3 * field + max_len * count
    words = np.zeros(max_bits // 64 + 3, dtype=np.uint64)
    acc = np.uint64(0)
    nacc = 0
    wi = 0
    acc, nacc, wi = put_bits(words, acc, nacc, wi, _MODE_HUFFMAN, 8)
    acc, nacc, wi = put_bits(words, acc, nacc, wi, nsym - 1, 12)
    acc, nacc, wi = put_bits(words, acc, nacc, wi, ncl - 4, 4)
    for k in range(ncl):
        acc, nacc, wi = put_bits(words, acc, nacc, wi, cl_lengths[cl_order[k]], 3)
    for k in range(rle_syms.shape[0]):
        c = rle_syms[k]
        acc, nacc, wi = put_bits(words, acc, nacc, wi, cl_codes[c], cl_lengths[c])
        if c == 16:
            acc, nacc, wi = put_bits(words, acc, nacc, wi, rle_extra[k], 2)
        elif c == 17:
            acc, nacc, wi = put_bits(words, acc, nacc, wi, rle_extra[k], 3)
        elif c == 18:
            acc, nacc, wi = put_bits(words, acc, nacc, wi, rle_extra[k], 7)
    field_pos = wi * 64 + nacc
    if split:
        for _ in range(3):
            # Placeholder, patched once the segment lengths are known.
            acc, nacc, wi = put_bits(words, acc, nacc, wi, 0, field)

    # One entry per symbol: reversed code in the high bits, length in the low 4.
    entry = np.zeros(nsym, dtype=np.uint64)
    for s in range(nsym):
        entry[s] = np.uint64((codes[s] << 4) | lengths[s])
    nseg = 4 if split else 1
    seg_len = seg if split else count
    seg_start_bit = wi * 64 + nacc
    m4 = np.uint64(4)
    m15 = np.uint64(15)
    for g in range(nseg):
        lo = g * seg_len
        hi = min(count, lo + seg_len)
        i = lo
        # Four codes (<= 60 bits) are gathered before each flush test.
        while i + 4 <= hi:
            e0 = entry[symbols[i]]
            e1 = entry[symbols[i + 1]]
            e2 = entry[symbols[i + 2]]
            e3 = entry[symbols[i + 3]]
            n = e0 & m15
            chunk = (e0 >> m4) | ((e1 >> m4) << n)
            n += e1 & m15
            chunk |= (e2 >> m4) << n
            n += e2 & m15
            chunk |= (e3 >> m4) << n
            n += e3 & m15
            acc, nacc, wi = put_bits(words, acc, nacc, wi, chunk, np.int64(n))
            i += 4
        while i < hi:
            e = entry[symbols[i]]
            acc, nacc, wi = put_bits(words, acc, nacc, wi, e >> m4, np.int64(e & m15))
            i += 1
        end_bit = wi * 64 + nacc
        if split and g < 3:
            # Patch the placeholder field (zeros) with this segment's bit length.
            v = end_bit - seg_start_bit
            p = field_pos + g * field
            for b in range(field):
                if (v >> b) & 1:
                    q = p + b
                    words[q >> 6] |= np.uint64(1) << np.uint64(q & 63)
        seg_start_bit = end_bit
    total_bits = flush_bits(words, acc, nacc, wi)
    return words, (total_bits + 7) // 8, 0


def _as_symbols(symbols, alphabet_size: int) -> np.ndarray:
    if isinstance(alphabet_size, bool) or not isinstance(alphabet_size, int | np.integer):
        raise TypeError(f"alphabet_size must be an integer, got {alphabet_size!r}")
    if not 1 <= alphabet_size <= MAX_ALPHABET:
        raise ValueError(f"alphabet_size must be between 1 and {MAX_ALPHABET}, got {alphabet_size}")
    arr = np.asarray(symbols)
    if arr.ndim != 1 or arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"symbols must be a 1-D uint8 or uint16 array, got {arr.dtype} "
                         f"with shape {arr.shape}")
    return np.ascontiguousarray(arr)


def encode_symbols(symbols: np.ndarray, alphabet_size: int) -> bytes:
    """Huffman-code ``symbols`` into one self-contained stream.

    Parameters
    ----------
    symbols : numpy.ndarray
        1-D ``uint8`` or ``uint16`` array of values below ``alphabet_size``.
    alphabet_size : int
        Number of possible symbols, 1 to 4096. The decoder must be given the same value.

    Returns
    -------
    bytes
        The code-length table followed by the coded symbols (see the module docstring). Empty
        when ``symbols`` is empty; 2 or 3 bytes when it holds a single distinct value.

    Raises
    ------
    ValueError
        If ``symbols`` has the wrong type or shape, holds a value ``>= alphabet_size``, or
        ``alphabet_size`` is out of range.
    """
    arr = _as_symbols(symbols, alphabet_size)
    if arr.shape[0] == 0:
        return b""
    words, nbytes, status = _encode_kernel(arr, int(alphabet_size), MAX_LEN, FAST_LEN,
                                           LIMIT_GAIN, CL_ORDER, SPLIT_MIN)
    if status:
        raise ValueError(f"symbols must be below alphabet_size={alphabet_size}")
    return words_to_bytes(words, nbytes)


# --------------------------------------------------------------------------------------------
# Decoder


@nb.njit(cache=True, nogil=True)
def _build_table(lengths, max_len):
    """Lookup table indexed by the next ``table_bits`` stream bits: ``symbol << 4 | length``.

    Returns (table, table_bits), or table_bits == -1 if the code is not complete, or has fewer
    than two symbols.
    """
    n = lengths.shape[0]
    bl_count = np.zeros(max_len + 1, dtype=np.int64)
    used = 0
    table_bits = 0
    for s in range(n):
        ln = lengths[s]
        if ln:
            bl_count[ln] += 1
            used += 1
            if ln > table_bits:
                table_bits = ln
    if used < 2:
        return np.zeros(1, dtype=np.uint16), -1
    kraft = 0
    for b in range(1, max_len + 1):
        kraft += bl_count[b] << (max_len - b)
    if kraft != (1 << max_len):
        return np.zeros(1, dtype=np.uint16), -1
    codes = _canonical_codes(lengths, max_len)
    size = 1 << table_bits
    table = np.zeros(size, dtype=np.uint16)
    for s in range(n):
        ln = lengths[s]
        if ln:
            e = np.uint16((s << 4) | ln)
            for k in range(codes[s], size, 1 << ln):
                table[k] = e
    return table, table_bits


@nb.njit(cache=True, nogil=True, inline="always")
def _decode_run(words, pos, end, table, mask, out, lo, hi):
    """Decode out[lo:hi] from bit ``pos``; return the new position, or -1 past ``end``."""
    i = lo
    # One 64-bit window holds four codes of <= 15 bits; one bounds test per window.
    while i + 4 <= hi:
        win = peek_bits(words, pos)
        e0 = table[win & mask]
        win >>= np.uint64(e0 & 15)
        e1 = table[win & mask]
        win >>= np.uint64(e1 & 15)
        e2 = table[win & mask]
        win >>= np.uint64(e2 & 15)
        e3 = table[win & mask]
        out[i] = e0 >> 4
        out[i + 1] = e1 >> 4
        out[i + 2] = e2 >> 4
        out[i + 3] = e3 >> 4
        pos += np.int64((e0 & 15) + (e1 & 15) + (e2 & 15) + (e3 & 15))
        if pos > end:
            return -1
        i += 4
    while i < hi:
        e = table[peek_bits(words, pos) & mask]
        out[i] = e >> 4
        pos += np.int64(e & 15)
        if pos > end:
            return -1
        i += 1
    return pos


@nb.njit(cache=True, nogil=True)
def _read_lengths(words, pos, nbits, alphabet_size, cl_order):
    """Parse the code-length table at bit ``pos``: (lengths, new pos, error code)."""
    none = np.zeros(0, dtype=np.int64)
    if pos + 16 > nbits:
        return none, pos, 1
    win = peek_bits(words, pos)
    nsym = np.int64(win & np.uint64(4095)) + 1
    ncl = np.int64((win >> np.uint64(12)) & np.uint64(15)) + 4
    pos += 16
    if nsym > alphabet_size:
        return none, pos, 2
    cl_lengths = np.zeros(19, dtype=np.int64)
    for k in range(ncl):
        cl_lengths[cl_order[k]] = np.int64(peek_bits(words, pos) & np.uint64(7))
        pos += 3
    if pos > nbits:
        return none, pos, 1
    cl_table, cl_bits = _build_table(cl_lengths, 7)
    if cl_bits < 0:
        return none, pos, 3
    cl_mask = np.uint64((1 << cl_bits) - 1)
    lengths = np.zeros(nsym, dtype=np.int64)
    i = 0
    while i < nsym:
        win = peek_bits(words, pos)
        e = cl_table[win & cl_mask]
        c = np.int64(e >> 4)
        ln = np.int64(e & 15)
        win >>= np.uint64(ln)
        pos += ln
        if c <= 15:
            lengths[i] = c
            i += 1
        else:
            if c == 16:
                if i == 0:
                    return none, pos, 4
                r = 3 + np.int64(win & np.uint64(3))
                pos += 2
                v = lengths[i - 1]
            elif c == 17:
                r = 3 + np.int64(win & np.uint64(7))
                pos += 3
                v = 0
            else:
                r = 11 + np.int64(win & np.uint64(127))
                pos += 7
                v = 0
            if i + r > nsym:
                return none, pos, 4
            for k in range(i, i + r):
                lengths[k] = v
            i += r
        # At most 14 bits were read past the last check: the padding words cover that.
        if pos > nbits:
            return none, pos, 1
    return lengths, pos, 0


@nb.njit(cache=True, nogil=True)
def _decode_kernel(words, nbits, out, alphabet_size, max_len, cl_order, split_min):
    """Decode a Huffman-mode stream (mode byte included) into ``out``; return an error code.

    ``words`` holds the stream little-endian with at least two zero words past its end, so that
    every ``peek_bits`` at a position <= ``nbits`` + 64 stays inside the array.
    """
    count = out.shape[0]
    lengths, pos, err = _read_lengths(words, 8, nbits, alphabet_size, cl_order)
    if err:
        return err
    table, table_bits = _build_table(lengths, max_len)
    if table_bits < 0:
        return 5
    mask = np.uint64((1 << table_bits) - 1)

    if count >= split_min:
        seg = (count + 3) // 4
        field = 0
        v = max_len * seg
        while v:
            field += 1
            v >>= 1
        # Fields may be up to 30 bits: three need not fit one 64-bit window.
        fmask = np.uint64((1 << field) - 1)
        s0 = np.int64(peek_bits(words, pos) & fmask)
        s1 = np.int64(peek_bits(words, pos + field) & fmask)
        s2 = np.int64(peek_bits(words, pos + 2 * field) & fmask)
        pos += 3 * field
        # Each segment ends where the next begins; all must lie inside the stream.
        e0 = pos + s0
        e1 = e0 + s1
        e2 = e1 + s2
        if e2 > nbits:
            return 6
        p0 = pos
        p1 = e0
        p2 = e1
        p3 = e2
        e3 = nbits
        # Four segments in lock step: four independent dependency chains for the CPU.
        last = count - 3 * seg  # symbols of the shortest (last) segment
        j = 0
        while j + 4 <= last:
            w0 = peek_bits(words, p0)
            w1 = peek_bits(words, p1)
            w2 = peek_bits(words, p2)
            w3 = peek_bits(words, p3)
            a0 = table[w0 & mask]
            b0 = table[w1 & mask]
            c0 = table[w2 & mask]
            d0 = table[w3 & mask]
            w0 >>= np.uint64(a0 & 15)
            w1 >>= np.uint64(b0 & 15)
            w2 >>= np.uint64(c0 & 15)
            w3 >>= np.uint64(d0 & 15)
            a1 = table[w0 & mask]
            b1 = table[w1 & mask]
            c1 = table[w2 & mask]
            d1 = table[w3 & mask]
            w0 >>= np.uint64(a1 & 15)
            w1 >>= np.uint64(b1 & 15)
            w2 >>= np.uint64(c1 & 15)
            w3 >>= np.uint64(d1 & 15)
            a2 = table[w0 & mask]
            b2 = table[w1 & mask]
            c2 = table[w2 & mask]
            d2 = table[w3 & mask]
            w0 >>= np.uint64(a2 & 15)
            w1 >>= np.uint64(b2 & 15)
            w2 >>= np.uint64(c2 & 15)
            w3 >>= np.uint64(d2 & 15)
            a3 = table[w0 & mask]
            b3 = table[w1 & mask]
            c3 = table[w2 & mask]
            d3 = table[w3 & mask]
            o0 = j
            o1 = seg + j
            o2 = 2 * seg + j
            o3 = 3 * seg + j
            out[o0] = a0 >> 4
            out[o0 + 1] = a1 >> 4
            out[o0 + 2] = a2 >> 4
            out[o0 + 3] = a3 >> 4
            out[o1] = b0 >> 4
            out[o1 + 1] = b1 >> 4
            out[o1 + 2] = b2 >> 4
            out[o1 + 3] = b3 >> 4
            out[o2] = c0 >> 4
            out[o2 + 1] = c1 >> 4
            out[o2 + 2] = c2 >> 4
            out[o2 + 3] = c3 >> 4
            out[o3] = d0 >> 4
            out[o3 + 1] = d1 >> 4
            out[o3 + 2] = d2 >> 4
            out[o3 + 3] = d3 >> 4
            p0 += np.int64((a0 & 15) + (a1 & 15) + (a2 & 15) + (a3 & 15))
            p1 += np.int64((b0 & 15) + (b1 & 15) + (b2 & 15) + (b3 & 15))
            p2 += np.int64((c0 & 15) + (c1 & 15) + (c2 & 15) + (c3 & 15))
            p3 += np.int64((d0 & 15) + (d1 & 15) + (d2 & 15) + (d3 & 15))
            if (p0 > e0) | (p1 > e1) | (p2 > e2) | (p3 > e3):
                return 7
            j += 4
        p0 = _decode_run(words, p0, e0, table, mask, out, j, seg)
        p1 = _decode_run(words, p1, e1, table, mask, out, seg + j, 2 * seg)
        p2 = _decode_run(words, p2, e2, table, mask, out, 2 * seg + j, 3 * seg)
        p3 = _decode_run(words, p3, e3, table, mask, out, 3 * seg + j, count)
        if (p0 < 0) | (p1 < 0) | (p2 < 0) | (p3 < 0):
            return 7
        if (p0 != e0) | (p1 != e1) | (p2 != e2):
            return 8
        pos = p3
    else:
        pos = _decode_run(words, pos, nbits, table, mask, out, 0, count)
        if pos < 0:
            return 7
    # Only the zero padding of the last byte may follow the last code.
    end = end_error(words, pos, nbits)
    return 0 if end == 0 else 8 if end == 1 else 9


def _as_bytes(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1:
            raise TypeError(f"data must be bytes-like or a 1-D uint8 array, got {data.dtype}")
        return data
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def decode_symbols(data, count: int, alphabet_size: int) -> np.ndarray:
    """Decode ``count`` symbols from a stream made by :func:`encode_symbols`.

    Parameters
    ----------
    data : bytes, memoryview or numpy.ndarray
        Exactly one stream (a 1-D ``uint8`` array if an ndarray).
    count : int
        Number of symbols the stream holds; it is not stored in the stream.
    alphabet_size : int
        The alphabet size the stream was encoded with, 1 to 4096.

    Returns
    -------
    numpy.ndarray
        ``count`` symbols, ``uint8`` when ``alphabet_size <= 256``, else ``uint16``.

    Raises
    ------
    CorruptDataError
        If ``data`` is not a valid stream of ``count`` symbols: a bad code-length table, a
        stream that ends early, trailing bytes or bits, or a symbol outside the alphabet.
    ValueError
        If ``count`` or ``alphabet_size`` is out of range.
    """
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    if isinstance(alphabet_size, bool) or not isinstance(alphabet_size, int | np.integer) \
            or not 1 <= alphabet_size <= MAX_ALPHABET:
        raise ValueError(f"alphabet_size must be between 1 and {MAX_ALPHABET}, "
                         f"got {alphabet_size!r}")
    count = int(count)
    alphabet_size = int(alphabet_size)
    buf = _as_bytes(data)
    n = buf.shape[0]
    dtype = np.uint8 if alphabet_size <= 256 else np.uint16
    if count == 0:
        if n:
            raise CorruptDataError("Huffman stream of zero symbols must be empty")
        return np.zeros(0, dtype=dtype)
    if n == 0:
        raise CorruptDataError("empty Huffman stream for a non-empty block")
    mode = int(buf[0])
    if mode == _MODE_SINGLE:
        wide = alphabet_size > 256
        if n != (3 if wide else 2):
            raise CorruptDataError("single-symbol Huffman stream has the wrong length")
        sym = int(buf[1]) | (int(buf[2]) << 8 if wide else 0)
        if sym >= alphabet_size:
            raise CorruptDataError(f"symbol {sym} outside the alphabet of {alphabet_size}")
        return np.full(count, sym, dtype=dtype)
    if mode != _MODE_HUFFMAN:
        raise CorruptDataError(f"unknown Huffman stream mode {mode}")
    # Every code is at least one bit: refuse before allocating for an absurd count.
    if count > 8 * n:
        raise CorruptDataError("Huffman stream too short for the symbol count")
    words = bytes_to_words(buf)
    out = np.empty(count, dtype=dtype)
    err = _decode_kernel(words, 8 * n, out, alphabet_size, MAX_LEN, CL_ORDER, SPLIT_MIN)
    if err:
        raise CorruptDataError(f"corrupt Huffman stream: {_ERRORS.get(err, 'unknown error')}")
    return out

