"""A JPEG model for context mixing (version 4): where each bit of a baseline JPEG's scan falls.

A baseline JPEG's scan is a stream of Huffman codes (and the raw bits after each: a
coefficient's magnitude), so its bytes look random to byte contexts. This model follows the
JPEG as its bytes are coded, on both sides alike: it parses the markers (the Huffman tables of
DHT, the components of SOF0/SOF1, the scan's tables of SOS), then tracks, bit by bit, which
Huffman code is being read, how far into it, and which coefficient of which block of which
component comes next. The context mixer gets two contexts from that state (the node of the
Huffman tree with the coefficient's index; the node with the component and how many
coefficients the component's previous block had), and picks one mixer's weights by it.

Everything is bounded: a marker segment is kept up to :data:`SEGMENT_BYTES`, a table or scan
that does not parse or a code that runs past 16 bits turns the model off until the next scan,
and every index is checked, so a hostile stream costs nothing but a worse prediction. Only a
block that holds the JPEG's headers gets the model (blocks are coded independently).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

#: Bytes of a marker segment the model keeps (a DHT of four full tables is 1,092).
SEGMENT_BYTES = 2048
#: The state's slots.
_PARSE, _MARKER, _LEFT, _SEGLEN, _IN_SCAN, _AFTER_FF, _SOF_OK, _NF = range(8)
_MODE, _CODE, _CLEN, _TABLE, _K, _EXTRA, _BLOCK, _BLOCKS, _NONZERO, _COMP, _SIZE = range(8, 19)
_SKIP_BYTE = 19
_IDS, _HV, _DC, _AC, _PREV_NONZERO = 20, 24, 28, 32, 36
_BLOCK_COMP = 40  # 10 slots: the component of each block of an MCU
_VALID = 50  # 8 slots: whether each Huffman table (class * 4 + id) was defined
STATE_SIZE = 64


@nb.njit(cache=True, nogil=True)
def new_state():  # pragma: no cover - compiled
    """The model's arrays: state, and the Huffman tables (max code, min code, value index,
    values per code length), and the segment buffer."""
    state = np.zeros(STATE_SIZE, dtype=np.int64)
    maxcode = np.full((8, 17), -1, dtype=np.int64)
    mincode = np.zeros((8, 17), dtype=np.int64)
    valptr = np.zeros((8, 17), dtype=np.int64)
    values = np.zeros((8, 256), dtype=np.int64)
    segment = np.zeros(SEGMENT_BYTES, dtype=np.int64)
    return state, maxcode, mincode, valptr, values, segment


@nb.njit(cache=True, nogil=True)
def _start_block(state):  # pragma: no cover - compiled
    comp = state[_BLOCK_COMP + state[_BLOCK]]
    state[_COMP] = comp
    state[_TABLE] = state[_DC + comp]
    state[_K] = 0
    state[_MODE] = 0
    state[_CODE] = 0
    state[_CLEN] = 0
    state[_NONZERO] = 0


@nb.njit(cache=True, nogil=True)
def _end_block(state):  # pragma: no cover - compiled
    state[_PREV_NONZERO + state[_COMP]] = state[_NONZERO]
    state[_BLOCK] += 1
    if state[_BLOCK] >= state[_BLOCKS]:
        state[_BLOCK] = 0
    _start_block(state)


@nb.njit(cache=True, nogil=True)
def _define_tables(state, maxcode, mincode, valptr, values, segment):  # pragma: no cover
    n = state[_SEGLEN]
    p = 0
    while p + 17 <= n:
        cls = segment[p] >> 4
        ident = segment[p] & 15
        if cls > 1 or ident > 3:
            return
        total = 0
        for length in range(1, 17):
            total += segment[p + length]
        if total > 256 or p + 17 + total > n:
            return
        t = cls * 4 + ident
        code = 0
        index = 0
        complete = True
        for length in range(1, 17):
            count = segment[p + length]
            mincode[t, length] = code
            valptr[t, length] = index
            maxcode[t, length] = code + count - 1 if count > 0 else -1
            index += count
            code += count
            if code > (1 << length):
                complete = False
            code <<= 1
        for j in range(total):
            values[t, j] = segment[p + 17 + j]
        state[_VALID + t] = 1 if complete else 0
        p += 17 + total


@nb.njit(cache=True, nogil=True)
def _define_frame(state, segment, baseline):  # pragma: no cover - compiled
    state[_SOF_OK] = 0
    if not baseline or state[_SEGLEN] < 6:
        return
    nf = segment[5]
    if nf < 1 or nf > 4 or state[_SEGLEN] < 6 + 3 * nf:
        return
    for c in range(nf):
        hv = segment[6 + 3 * c + 1]
        if not (1 <= hv >> 4 <= 4 and 1 <= (hv & 15) <= 4):
            return
        state[_IDS + c] = segment[6 + 3 * c]
        state[_HV + c] = hv
    state[_NF] = nf
    state[_SOF_OK] = 1


@nb.njit(cache=True, nogil=True)
def _start_scan(state, segment):  # pragma: no cover - compiled
    state[_IN_SCAN] = 0
    n = state[_SEGLEN]
    if not state[_SOF_OK] or n < 1:
        return
    ns = segment[0]
    if ns < 1 or ns > 4 or n < 1 + 2 * ns + 3:
        return
    blocks = 0
    for j in range(ns):
        ident = segment[1 + 2 * j]
        comp = -1
        for c in range(state[_NF]):
            if state[_IDS + c] == ident:
                comp = c
        if comp < 0:
            return
        dc = segment[2 + 2 * j] >> 4
        ac = segment[2 + 2 * j] & 15
        if dc > 3 or ac > 3 or not state[_VALID + dc] or not state[_VALID + 4 + ac]:
            return
        state[_DC + comp] = dc
        state[_AC + comp] = 4 + ac
        state[_PREV_NONZERO + comp] = 0
        count = 1 if ns == 1 else (state[_HV + comp] >> 4) * (state[_HV + comp] & 15)
        for _ in range(count):
            if blocks >= 10:
                return
            state[_BLOCK_COMP + blocks] = comp
            blocks += 1
    state[_BLOCKS] = blocks
    state[_BLOCK] = 0
    state[_AFTER_FF] = 0
    _start_block(state)
    state[_IN_SCAN] = 1


@nb.njit(cache=True, nogil=True)
def _marker(state, code):  # pragma: no cover - compiled
    """After ``0xFF code`` outside a scan's data."""
    if code == 0xFF:
        state[_PARSE] = 1  # fill bytes
    elif code == 0 or code == 1 or 0xD0 <= code <= 0xD9:
        state[_PARSE] = 0  # no segment follows
    else:
        state[_MARKER] = code
        state[_PARSE] = 2


@nb.njit(cache=True, nogil=True)
def _segment_done(state, maxcode, mincode, valptr, values, segment):  # pragma: no cover
    marker = state[_MARKER]
    if marker == 0xC4:
        _define_tables(state, maxcode, mincode, valptr, values, segment)
    elif marker == 0xC0 or marker == 0xC1:
        _define_frame(state, segment, True)
    elif 0xC2 <= marker <= 0xCF and marker != 0xC4 and marker != 0xC8 and marker != 0xCC:
        _define_frame(state, segment, False)  # progressive, lossless, arithmetic: not modelled
    elif marker == 0xDA:
        _start_scan(state, segment)
    state[_PARSE] = 0


@nb.njit(cache=True, nogil=True)
def byte_done(state, maxcode, mincode, valptr, values, segment, byte):  # pragma: no cover
    """Follow the JPEG's structure past one more byte."""
    if state[_IN_SCAN]:
        if state[_SKIP_BYTE]:  # the byte after 0xFF in the scan: stuffing or a marker
            state[_AFTER_FF] = 0
            if byte == 0xFF:
                state[_AFTER_FF] = 1
            elif 0xD0 <= byte <= 0xD7:
                state[_BLOCK] = 0
                for c in range(4):
                    state[_PREV_NONZERO + c] = 0
                _start_block(state)
            elif byte != 0:
                state[_IN_SCAN] = 0
                _marker(state, byte)
        elif byte == 0xFF:
            state[_AFTER_FF] = 1
        return
    parse = state[_PARSE]
    if parse == 0:
        if byte == 0xFF:
            state[_PARSE] = 1
    elif parse == 1:
        _marker(state, byte)
    elif parse == 2:
        state[_LEFT] = byte << 8
        state[_PARSE] = 3
    elif parse == 3:
        state[_LEFT] = (state[_LEFT] | byte) - 2
        state[_SEGLEN] = 0
        if state[_LEFT] <= 0:
            _segment_done(state, maxcode, mincode, valptr, values, segment)
        else:
            state[_PARSE] = 4
    else:
        if state[_SEGLEN] < SEGMENT_BYTES:
            segment[state[_SEGLEN]] = byte
            state[_SEGLEN] += 1
        state[_LEFT] -= 1
        if state[_LEFT] <= 0:
            _segment_done(state, maxcode, mincode, valptr, values, segment)


@nb.njit(cache=True, nogil=True)
def byte_start(state):  # pragma: no cover - compiled
    """Whether the model speaks for the byte about to be coded (scan data, not the byte
    after a 0xFF)."""
    state[_SKIP_BYTE] = state[_AFTER_FF]
    return state[_IN_SCAN] == 1 and state[_SKIP_BYTE] == 0


@nb.njit(cache=True, nogil=True)
def bit_done(state, maxcode, mincode, valptr, values, y):  # pragma: no cover - compiled
    """Follow the scan past one more bit of entropy-coded data."""
    if state[_MODE] == 1:  # a coefficient's magnitude bits
        state[_EXTRA] -= 1
        if state[_EXTRA] > 0:
            return
        state[_MODE] = 0
        if state[_K] == 0:
            state[_K] = 1
            state[_TABLE] = state[_AC + state[_COMP]]
        else:
            state[_NONZERO] += 1
            state[_K] += 1
            if state[_K] > 63:
                _end_block(state)
        return
    code = state[_CODE] * 2 + y
    length = state[_CLEN] + 1
    t = state[_TABLE]
    if length > 16:
        state[_IN_SCAN] = 0  # not a code of this table: lost until the next scan
        return
    state[_CODE] = code
    state[_CLEN] = length
    if maxcode[t, length] < 0 or code > maxcode[t, length] or code < mincode[t, length]:
        return
    symbol = values[t, min(valptr[t, length] + code - mincode[t, length], 255)]
    state[_CODE] = 0
    state[_CLEN] = 0
    if state[_K] == 0:  # DC: the symbol is the difference's size
        size = symbol & 15
        if size > 0:
            state[_MODE] = 1
            state[_EXTRA] = size
            state[_SIZE] = size
        else:
            state[_K] = 1
            state[_TABLE] = state[_AC + state[_COMP]]
        return
    run = symbol >> 4
    size = symbol & 15
    if size == 0:
        if run == 15:
            state[_K] += 16
            if state[_K] > 63:
                _end_block(state)
        else:
            _end_block(state)  # end of block
        return
    state[_K] += run
    if state[_K] > 63:
        _end_block(state)
        return
    state[_MODE] = 1
    state[_EXTRA] = size
    state[_SIZE] = size


@nb.njit(cache=True, nogil=True, inline="always")
def _mix(a, b):  # pragma: no cover - compiled
    return ((a * 0x2F0A3) + b + 1) & 0xFFFFFFFF


@nb.njit(cache=True, nogil=True)
def contexts(state):  # pragma: no cover - compiled
    """The two contexts (32-bit hashes) and the mixer selector (0 .. 63) of the next bit."""
    k = min(state[_K], 63)
    if state[_MODE] == 1:
        base = _mix(_mix(_mix(1, state[_SIZE]), state[_EXTRA]), k)
        first = _mix(base, 11)
        second = _mix(_mix(base, min(state[_PREV_NONZERO + state[_COMP]], 15)), 12)
        return first, second, 32 + min(state[_EXTRA], 15) * 2 + (1 if k == 0 else 0)
    node = _mix(_mix(_mix(2, state[_TABLE]), state[_CLEN]), state[_CODE])
    first = _mix(_mix(node, k), 13)
    second = _mix(_mix(_mix(node, state[_COMP]),
                       min(state[_PREV_NONZERO + state[_COMP]], 15)), 14)
    return first, second, min(state[_CLEN], 15) * 2 + (1 if k == 0 else 0)
