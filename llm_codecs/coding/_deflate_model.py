"""A deflate model for context mixing (version 5): where each bit of a zlib stream falls.

Deflate streams (inside PDFs, zlib containers) look random to byte contexts: they are Huffman
codes and raw extra bits, packed from each byte's least significant bit up. This model follows
a zlib stream as its bytes are coded, on both sides alike. The context mixer codes a byte the
model is in with its bits in stream order (least significant first, see ``byte_start``), and
the model tracks, bit by bit, the block header, the code-length code and the code lengths of a
dynamic block, then which Huffman code (literal/length or distance) is being read and how far
into it, or which extra bits; it keeps the last 32 KiB of the data the stream decodes to. The
mixer gets three contexts from that state (for a literal/length code: the node of its tree
with the last decoded byte, with the last two, and with the previous symbol; for a distance
code: the node with the length, with the previous distance's code, with both; for extra bits:
the code they follow, how many were read and their value so far, with the previous length or
distance) and picks one mixer's weights by the kind of bit.

The model starts after a zlib header (CMF of a 4-32 KiB window, a valid check, no preset
dictionary), a gzip member's header or a zip entry's local header, and speaks once what follows has
proven to be a stream (:func:`byte_start`): two bytes that only look like a zlib header (binary
data holds one every few KiB) then cost nothing. It stops at the final block's end, at a stored
block, or at anything that does not parse (a table that does not build, a code past 15 bits, a
distance before the start): every index is checked, so a hostile stream costs nothing but a worse
prediction. Blocks are coded independently, so only a block that holds a stream's header gets the
model. """

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

#: The last bytes of decoded data the model keeps (deflate's largest distance).
WINDOW = 1 << 15
#: Symbols a block of fixed codes must decode to before the model speaks (any bits decode as
#: fixed codes for a while; a dynamic block's tables are proof enough).
FIXED_PROOF = 32
#: The state's slots.
(_ACTIVE, _PREV_BYTE, _MODE, _KIND, _NEED, _GOT, _VALUE, _TABLE, _CODE, _FIRST, _INDEX,
 _CLEN, _FINAL, _HLIT, _HDIST, _HCLEN, _NLENS, _CLI, _REPSYM, _LASTSYM, _LENSYM, _LENGTH,
 _DSYM, _PREV_DSYM, _PREV_DIST, _PREV_LENGTH, _OUT, _LASTLEN,
 _HKIND, _HPOS, _HFLAGS, _HSKIP, _HPHASE, _LAST4, _LIVE, _SYMBOLS) = range(36)
STATE_SIZE = 40
#: Field kinds (``_MODE`` 0): a block header, the counts of a dynamic header, one code-length
#: code's length, a repeat's extra bits, a length's extra bits, a distance's extra bits.
_BHEAD, _COUNTS, _CLL, _REP, _LEXTRA, _DEXTRA = range(6)
#: Huffman tables (``_MODE`` 1): the code-length code, literal/length, distance.
_CL, _LITLEN, _DIST = range(3)
#: Containers whose header is being read (``_HKIND``), and the parts of a header (``_HPHASE``).
_NONE, _GZIP, _ZIP = range(3)
_FIXED, _XLEN, _SKIP, _ZSTRING = range(4)

_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15],
                  dtype=np.int64)
_LEN_BASE = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                      67, 83, 99, 115, 131, 163, 195, 227, 258], dtype=np.int64)
_LEN_EXTRA = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4,
                       5, 5, 5, 5, 0], dtype=np.int64)
_DIST_BASE = np.array([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
                       513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
                       24577], dtype=np.int64)
_DIST_EXTRA = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10,
                        10, 11, 11, 12, 12, 13, 13], dtype=np.int64)


@nb.njit(cache=True, nogil=True)
def new_state():  # pragma: no cover - compiled
    """The model's arrays: state, code lengths, each table's counts per length and symbols
    in canonical order, and the window of decoded data."""
    state = np.zeros(STATE_SIZE, dtype=np.int64)
    lens = np.zeros(320, dtype=np.int64)
    counts = np.zeros((3, 16), dtype=np.int64)
    symbols = np.zeros((3, 320), dtype=np.int64)
    window = np.zeros(WINDOW, dtype=np.uint8)
    return state, lens, counts, symbols, window


@nb.njit(cache=True, nogil=True)
def _build(counts, symbols, t, lens, first, n):  # pragma: no cover - compiled
    """Canonical code ``t`` from ``lens[first:first + n]``. Returns the unused code space in
    units of ``2**-15`` (0: a complete code), or -1 if the lengths over-subscribe it."""
    for length in range(16):
        counts[t, length] = 0
    for s in range(n):
        counts[t, lens[first + s]] += 1
    left = 1
    for length in range(1, 16):
        left = 2 * left - counts[t, length]
        if left < 0:
            return -1
    offsets = np.zeros(16, dtype=np.int64)
    for length in range(1, 15):
        offsets[length + 1] = offsets[length] + counts[t, length]
    for s in range(n):
        length = lens[first + s]
        if length != 0:
            symbols[t, offsets[length]] = s
            offsets[length] += 1
    return left


@nb.njit(cache=True, nogil=True)
def _field(state, kind, need):  # pragma: no cover - compiled
    state[_MODE] = 0
    state[_KIND] = kind
    state[_NEED] = need
    state[_GOT] = 0
    state[_VALUE] = 0


@nb.njit(cache=True, nogil=True)
def _code(state, t):  # pragma: no cover - compiled
    state[_MODE] = 1
    state[_TABLE] = t
    state[_CODE] = 0
    state[_FIRST] = 0
    state[_INDEX] = 0
    state[_CLEN] = 1


@nb.njit(cache=True, nogil=True)
def stop(state):  # pragma: no cover - compiled
    """Turn the model off until the next zlib header."""
    state[_ACTIVE] = 0


@nb.njit(cache=True, nogil=True)
def _emit(state, window, byte):  # pragma: no cover - compiled
    window[state[_OUT] & (WINDOW - 1)] = byte
    state[_OUT] += 1


@nb.njit(cache=True, nogil=True)
def _copy(state, window):  # pragma: no cover - compiled
    """The match of ``_LENGTH`` bytes at ``_PREV_DIST`` back, or stop if it reaches before the
    stream's start."""
    dist = state[_PREV_DIST]
    if dist > state[_OUT]:
        stop(state)
        return
    for _ in range(state[_LENGTH]):
        _emit(state, window, window[(state[_OUT] - dist) & (WINDOW - 1)])
    _code(state, _LITLEN)


@nb.njit(cache=True, nogil=True)
def _lengths_done(state, lens, counts, symbols):  # pragma: no cover - compiled
    hlit = state[_HLIT]
    if lens[256] == 0:
        stop(state)
        return
    if _build(counts, symbols, _LITLEN, lens, 0, hlit) < 0:
        stop(state)
        return
    if _build(counts, symbols, _DIST, lens, hlit, state[_HDIST]) < 0:
        stop(state)
        return
    state[_LIVE] = 1  # tables that build: a stream, not bytes that looked like its header
    _code(state, _LITLEN)


@nb.njit(cache=True, nogil=True)
def _add_lengths(state, lens, counts, symbols, value, repeat):  # pragma: no cover - compiled
    total = state[_HLIT] + state[_HDIST]
    if state[_NLENS] + repeat > total:
        stop(state)
        return
    for _ in range(repeat):
        lens[state[_NLENS]] = value
        state[_NLENS] += 1
    state[_LASTLEN] = value
    if state[_NLENS] == total:
        _lengths_done(state, lens, counts, symbols)
    else:
        _code(state, _CL)


@nb.njit(cache=True, nogil=True)
def _field_done(state, lens, counts, symbols, window):  # pragma: no cover - compiled
    kind = state[_KIND]
    v = state[_VALUE]
    if kind == _BHEAD:
        state[_FINAL] = v & 1
        btype = v >> 1
        if btype == 1:  # fixed codes
            for s in range(288):
                lens[s] = 8 if s < 144 else (9 if s < 256 else (7 if s < 280 else 8))
            for s in range(30):
                lens[288 + s] = 5
            _build(counts, symbols, _LITLEN, lens, 0, 288)
            _build(counts, symbols, _DIST, lens, 288, 30)
            _code(state, _LITLEN)
        elif btype == 2:
            _field(state, _COUNTS, 14)
        else:  # stored (its bytes are coded as bytes) or invalid
            stop(state)
    elif kind == _COUNTS:
        state[_HLIT] = (v & 31) + 257
        state[_HDIST] = ((v >> 5) & 31) + 1
        state[_HCLEN] = (v >> 10) + 4
        if state[_HLIT] > 286 or state[_HDIST] > 30:
            stop(state)
            return
        state[_CLI] = 0
        for s in range(19):
            lens[s] = 0
        _field(state, _CLL, 3)
    elif kind == _CLL:
        lens[_ORDER[state[_CLI]]] = v
        state[_CLI] += 1
        if state[_CLI] < state[_HCLEN]:
            _field(state, _CLL, 3)
            return
        left = _build(counts, symbols, _CL, lens, 0, 19)
        if left < 0:
            stop(state)
            return
        if left == 0 and state[_HCLEN] >= 10:
            # A complete code of at least 10 lengths, as encoders write: a stream (random
            # bytes rarely are; fewer lengths, and the block's tables must build first).
            state[_LIVE] = 1
        state[_NLENS] = 0
        _code(state, _CL)
    elif kind == _REP:
        sym = state[_REPSYM]
        if sym == 16:
            _add_lengths(state, lens, counts, symbols, lens[state[_NLENS] - 1], 3 + v)
        elif sym == 17:
            _add_lengths(state, lens, counts, symbols, 0, 3 + v)
        else:
            _add_lengths(state, lens, counts, symbols, 0, 11 + v)
    elif kind == _LEXTRA:
        state[_LENGTH] += v
        _code(state, _DIST)
    else:  # _DEXTRA
        state[_PREV_DIST] += v
        _copy(state, window)


@nb.njit(cache=True, nogil=True)
def _symbol(state, lens, counts, symbols, window, t, sym):  # pragma: no cover - compiled
    if t == _CL:
        if sym < 16:
            _add_lengths(state, lens, counts, symbols, sym, 1)
        elif sym == 16 and state[_NLENS] == 0:
            stop(state)
        else:
            state[_REPSYM] = sym
            _field(state, _REP, 2 if sym == 16 else (3 if sym == 17 else 7))
        return
    if t == _LITLEN:
        state[_LASTSYM] = sym
        state[_SYMBOLS] += 1
        if state[_SYMBOLS] >= FIXED_PROOF:
            state[_LIVE] = 1
        if sym < 256:
            _emit(state, window, sym)
            _code(state, _LITLEN)
        elif sym == 256:
            if state[_FINAL]:
                stop(state)
            else:
                _field(state, _BHEAD, 3)
        elif sym <= 285:
            i = sym - 257
            state[_LENSYM] = i
            state[_PREV_LENGTH] = state[_LENGTH]
            state[_LENGTH] = _LEN_BASE[i]
            if _LEN_EXTRA[i] > 0:
                _field(state, _LEXTRA, _LEN_EXTRA[i])
            else:
                _code(state, _DIST)
        else:
            stop(state)
        return
    if sym >= 30:
        stop(state)
        return
    state[_PREV_DSYM] = state[_DSYM]
    state[_DSYM] = sym
    state[_PREV_DIST] = _DIST_BASE[sym]
    if _DIST_EXTRA[sym] > 0:
        _field(state, _DEXTRA, _DIST_EXTRA[sym])
    else:
        _copy(state, window)


@nb.njit(cache=True, nogil=True)
def byte_start(state):  # pragma: no cover - compiled
    """Whether the model speaks for the next byte: it is in a stream whose start has proven to
    be one (a dynamic block's complete code-length code, or its tables built, or
    :data:`FIXED_PROOF` symbols of fixed codes).
    The mixer then codes its bits in stream order, least significant first, and gives each to
    ``bit_done``; before the proof, ``byte_done`` reads the byte's bits itself."""
    return state[_ACTIVE] == 1 and state[_LIVE] == 1


@nb.njit(cache=True, nogil=True)
def _start(state):  # pragma: no cover - compiled
    state[_ACTIVE] = 1
    state[_LIVE] = 0
    state[_SYMBOLS] = 0
    state[_HKIND] = _NONE
    state[_OUT] = 0
    state[_LENGTH] = 0
    state[_PREV_DIST] = 0
    state[_DSYM] = 0
    state[_LASTSYM] = 0
    _field(state, _BHEAD, 3)


@nb.njit(cache=True, nogil=True)
def _gzip_next(state):  # pragma: no cover - compiled
    """The next part of a gzip header after its first ten bytes, by the flags not yet read."""
    flags = state[_HFLAGS]
    if flags & 4:  # FEXTRA: a 2-byte length, then that many bytes
        state[_HFLAGS] = flags & ~4
        state[_HPHASE] = _XLEN
        state[_HPOS] = 0
        state[_HSKIP] = 0
    elif flags & 8:  # FNAME, zero-terminated
        state[_HFLAGS] = flags & ~8
        state[_HPHASE] = _ZSTRING
        state[_HPOS] = 0
    elif flags & 16:  # FCOMMENT, zero-terminated
        state[_HFLAGS] = flags & ~16
        state[_HPHASE] = _ZSTRING
        state[_HPOS] = 0
    elif flags & 2:  # FHCRC
        state[_HFLAGS] = flags & ~2
        state[_HPHASE] = _SKIP
        state[_HSKIP] = 2
    else:
        _start(state)


@nb.njit(cache=True, nogil=True)
def _header_byte(state, byte):  # pragma: no cover - compiled
    """One byte of a gzip member's or a zip entry's header (``_HPOS`` bytes in)."""
    phase = state[_HPHASE]
    if phase == _SKIP:
        state[_HSKIP] -= 1
        if state[_HSKIP] == 0:
            if state[_HKIND] == _GZIP:
                _gzip_next(state)
            else:
                _start(state)
        return
    if phase == _XLEN:
        state[_HSKIP] |= byte << (8 * state[_HPOS])
        state[_HPOS] += 1
        if state[_HPOS] == 2:
            state[_HPHASE] = _SKIP
            if state[_HSKIP] == 0:
                _gzip_next(state)
        return
    if phase == _ZSTRING:
        state[_HPOS] += 1
        if byte == 0:
            _gzip_next(state)
        elif state[_HPOS] > 4096:
            state[_HKIND] = _NONE
        return
    p = state[_HPOS]  # the fixed part: this byte's offset in the header
    state[_HPOS] = p + 1
    if state[_HKIND] == _GZIP:
        if (p == 2 and byte != 8) or (p == 3 and byte & 0xE0):
            state[_HKIND] = _NONE  # not deflate, or flags no gzip sets
        elif p == 3:
            state[_HFLAGS] = byte
        elif p == 9:
            _gzip_next(state)
        return
    # A zip entry: flags at 6-7 (bit 0: encrypted), method at 8-9 (8: deflate), the name's
    # and the extra field's lengths at 26-27 and 28-29, then both, then the data.
    if (p == 6 and byte & 1) or (p == 8 and byte != 8) or (p == 9 and byte != 0):
        state[_HKIND] = _NONE
    elif p == 26 or p == 28:
        state[_HSKIP] += byte
    elif p == 27 or p == 29:
        state[_HSKIP] += byte << 8
        if p == 29:
            state[_HPHASE] = _SKIP
            if state[_HSKIP] == 0:
                _start(state)


@nb.njit(cache=True, nogil=True)
def byte_done(state, lens, counts, symbols, window, byte, spoken):  # pragma: no cover
    """After each byte (``spoken``: whether ``byte_start`` said so for it). In a stream that
    has not proven itself yet, read the byte's bits (least significant first). While the model
    is off, watch for a stream's start: a zlib header (CMF: deflate, a 4-32 KiB window; FLG:
    the check holds, no preset dictionary), a gzip member's header or a zip entry's local
    header (deflate, not encrypted). The stream starts at the next byte."""
    prev = state[_PREV_BYTE]
    state[_PREV_BYTE] = byte
    state[_LAST4] = ((state[_LAST4] << 8) | byte) & 0xFFFFFFFF
    if state[_ACTIVE] == 1:
        if not spoken:
            for bit in range(8):
                bit_done(state, lens, counts, symbols, window, (byte >> bit) & 1)
        return
    if state[_HKIND] != _NONE:
        _header_byte(state, byte)
        return
    if (prev & 15) == 8 and 4 <= (prev >> 4) <= 7 and ((prev << 8) | byte) % 31 == 0 and (
            byte & 32) == 0:
        _start(state)
    elif state[_LAST4] & 0xFFFF == 0x1F8B:
        state[_HKIND] = _GZIP
        state[_HPHASE] = _FIXED
        state[_HPOS] = 2
        state[_HFLAGS] = 0
    elif state[_LAST4] == 0x504B0304:
        state[_HKIND] = _ZIP
        state[_HPHASE] = _FIXED
        state[_HPOS] = 4
        state[_HSKIP] = 0


@nb.njit(cache=True, nogil=True)
def bit_done(state, lens, counts, symbols, window, y):  # pragma: no cover - compiled
    """Take the stream's next bit ``y``."""
    if state[_ACTIVE] == 0:
        return
    if state[_MODE] == 0:
        state[_VALUE] |= y << state[_GOT]
        state[_GOT] += 1
        if state[_GOT] == state[_NEED]:
            _field_done(state, lens, counts, symbols, window)
        return
    t = state[_TABLE]
    length = state[_CLEN]
    code = state[_CODE] | y
    count = counts[t, length]
    if code - count < state[_FIRST]:
        index = state[_INDEX] + code - state[_FIRST]
        _symbol(state, lens, counts, symbols, window, t, symbols[t, min(index, 319)])
        return
    if length == 15:
        stop(state)  # not a code of this table
        return
    state[_INDEX] += count
    state[_FIRST] = (state[_FIRST] + count) << 1
    state[_CODE] = code << 1
    state[_CLEN] = length + 1


@nb.njit(cache=True, nogil=True, inline="always")
def _mix(a, b):  # pragma: no cover - compiled
    return ((a * 0x2F0A3) + b + 1) & 0xFFFFFFFF


@nb.njit(cache=True, nogil=True)
def contexts(state, window):  # pragma: no cover - compiled
    """The three contexts (32-bit hashes) and the mixer selector (0 .. 63) of the next bit."""
    out = state[_OUT]
    o1 = np.int64(window[(out - 1) & (WINDOW - 1)]) if out > 0 else 256
    o2 = np.int64(window[(out - 2) & (WINDOW - 1)]) if out > 1 else 256
    if state[_MODE] == 0:
        kind = state[_KIND]
        base = _mix(_mix(_mix(_mix(3, kind), state[_GOT]), state[_VALUE]), state[_NEED])
        if kind == _DEXTRA:
            base = _mix(base, state[_DSYM])
            second = _mix(_mix(base, state[_PREV_DIST]), 21)
            third = _mix(_mix(base, state[_LENSYM]), 22)
        elif kind == _LEXTRA:
            base = _mix(base, state[_LENSYM])
            second = _mix(_mix(base, state[_PREV_LENGTH]), 23)
            third = _mix(_mix(base, o1), 24)
        else:
            second = _mix(_mix(base, state[_CLI]), 25)
            third = _mix(_mix(base, state[_REPSYM]), 26)
        return _mix(base, 20), second, third, 48 + kind * 2 + min(state[_GOT], 1)
    t = state[_TABLE]
    length = state[_CLEN]
    node = _mix(_mix(_mix(4, t), length), state[_CODE])
    if t == _LITLEN:
        first = _mix(_mix(node, o1), 30)
        second = _mix(_mix(_mix(node, o1), o2), 31)
        third = _mix(_mix(_mix(node, state[_LASTSYM]), o2), 32)
    elif t == _DIST:
        first = _mix(_mix(node, state[_LENSYM]), 33)
        second = _mix(_mix(node, state[_DSYM]), 34)
        third = _mix(_mix(_mix(node, state[_DSYM]), state[_PREV_DSYM]), 35)
    else:
        first = _mix(_mix(node, state[_LASTLEN]), 36)
        second = _mix(_mix(node, 1 if state[_NLENS] < state[_HLIT] else 0), 37)
        third = _mix(node, 38)
    return first, second, third, t * 16 + min(length, 15)
