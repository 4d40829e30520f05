"""Versions 3, 4 and 5 of the context-mixing model (methods 7, 8 and 9): more contexts, checked
lines, four mixers, the JPEG model of :mod:`._jpeg_model` (version 4 on) and the deflate model
of :mod:`._deflate_model` (version 5).

The same scheme as versions 1 and 2 (:mod:`llm_codecs.coding._cm_kernel`: each byte as 8
binary decisions, predictions mixed in the logistic domain, a 32-bit binary arithmetic coder,
integers only, one function for both directions), with what validation showed pays
(``benchmarks/fallbacks.py``; about 11% smaller than version 2 there):

- :data:`N_CONTEXTS` hashed contexts: orders 1, 2, 3, 4, 6 and 8; the current word and the
  word before it; the column (the byte above in the previous line); sparse contexts (the byte
  two back, two and three back, one and three back) for binary data; two **record** contexts
  (the bytes one and two records up, the byte one record up, the one after it and the byte
  before) once a record length is detected (tables, images: the byte at a fixed distance
  repeats); two **field** contexts for logs and CSV (the field number and the field so far;
  the byte at the same place of the same field in the previous line); the classes of the last
  eight bytes (letter, digit, space...: hex runs, numbers); and the byte the match model expects
  with the match length;
- each context's statistics for a nibble sit in one 64-byte line (a check, then the 15 nodes
  of the nibble's binary tree, each a probability and a count), found among two neighbouring
  lines: two memory lookups per context and byte instead of eight, and a line held by another
  context (a hash collision) starts afresh instead of lending its statistics (the less used
  of the two lines is evicted);
- four mixers, their weights chosen by the partial byte, the match state, the byte classes
  and the byte before, averaged in the logistic domain;
- two adaptive probability maps (by the byte before, by the match state) refine the mix.

Version 5 codes the bytes of a zlib stream with their bits in the stream's order (least
significant first), so that the deflate model can follow its codes bit by bit; elsewhere it
predicts what version 4 does, bit for bit, as version 4 does version 3's outside JPEG scans.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors
from . import _deflate_model as _defl
from . import _jpeg_model as _jpeg
from ._cm_kernel import coder_bit, coder_finish, coder_start

wide_vectors.install()  # before the kernels below compile

#: Hashed contexts of the model (see the module docstring, in order).
N_CONTEXTS = 18
#: log2 of the entries of each context table, at most (blocks of 256 KiB and more).
TABLE_BITS = 20
#: Bytes of context the match model looks up, and log2 of its table of positions (at most).
MATCH_MIN = 5
MATCH_BITS = 18
#: The count after which a context's probability adapts at its slowest rate: the low orders
#: (1, 2, the byte two back) see stationary statistics, the others change with the data.
LIMIT_LOW = 60
LIMIT_HIGH = 30
#: Record lengths the record model can detect, at most.
MAX_RECORD = 4096
#: The deflate model's contexts adapt fastest: a code means another symbol in each deflate
#: block, whose Huffman tables change (chosen on this machine's PDFs: 4 was 2.5% smaller than 30).
LIMIT_DEFLATE = 4
_MIXERS = 4
_MULT = 0x2545F491  # below 2**30: every product of a 32-bit hash with it fits in int64


def rate_table() -> np.ndarray:
    """Learning rate of a slot seen ``n`` times, Q16, for ``n`` in 0 .. 255 (the count's
    range): ``65536 / (n + 1.5)``; each context floors it at its own limit."""
    n = np.arange(256, dtype=np.int64)
    return (2 * 65536) // (2 * n + 3)


@nb.njit(cache=True, nogil=True, inline="always")
def _mix(a, b):  # pragma: no cover - compiled
    return ((a * 0x2F0A3) + b + 1) & 0xFFFFFFFF


@nb.njit(cache=True, nogil=True, inline="always")
def _byte_class(b):  # pragma: no cover - compiled
    if 97 <= b <= 122:
        return 1
    if 65 <= b <= 90:
        return 2
    if 48 <= b <= 57:
        return 3
    if b == 32:
        return 4
    if b == 10:
        return 5
    if b >= 128:
        return 6
    return 7


@nb.njit(cache=True, nogil=True, inline="always")
def _is_letter(b):  # pragma: no cover - compiled
    return (65 <= b <= 90) or (97 <= b <= 122) or b >= 128


@nb.njit(cache=True, nogil=True, inline="always")
def _is_separator(b):  # pragma: no cover - compiled
    return b == 32 or b == 9 or b == 44 or b == 59 or b == 124


@nb.njit(cache=True, nogil=True, inline="always")
def _interpolate(row, lo, wt):  # pragma: no cover - compiled
    return (np.int64(row[lo]) * (128 - wt) + np.int64(row[min(lo + 1, 32)]) * wt) >> 11


@nb.njit(cache=True, nogil=True)
def run(data, n, decode, payload, out, squash, stretch, rates, jpeg, deflate):  # pragma: no cover
    """Code ``n`` bytes: encode ``data`` into ``out`` (returns the bytes written, or -1 when
    they would not fit ``out``), or decode ``payload`` into ``data`` (returns how many bytes
    the decoder read, padding included: a complete stream is read exactly 3 bytes past its
    end). ``jpeg`` adds the JPEG model (:mod:`._jpeg_model`): version 4; without it, the
    predictions are version 3's, bit for bit. ``deflate`` (with ``jpeg``) adds the deflate
    model (:mod:`._deflate_model`): version 5."""
    # Table sizes follow the block, the same function of ``n`` on both sides.
    size_bits = 0
    while (1 << size_bits) < n:
        size_bits += 1
    table_bits = min(TABLE_BITS, max(10, size_bits + 2))
    apm_bits = min(16, max(8, size_bits))
    apm_mask = (1 << apm_bits) - 1
    match_bits = min(MATCH_BITS, max(8, size_bits))
    nc = N_CONTEXTS
    inputs = 1 + nc + 2 + (2 if jpeg else 0) + (3 if deflate else 0)
    deflate_input = 1 + nc + 2 + (2 if jpeg else 0)
    # The JPEG model's two contexts: direct tables of probabilities and counts, and 64 more
    # weight sets for the fourth mixer while it speaks.
    jpeg_bits = 18 if jpeg else 0
    jpeg_tables = np.full((2, 1 << jpeg_bits), 32768 << 16, dtype=np.uint32)
    jpeg_slots = np.zeros(2, dtype=np.int64)
    jstate, jmax, jmin, jptr, jvalues, jsegment = _jpeg.new_state()
    in_jpeg = False
    # The deflate model's three contexts (direct tables like the JPEG model's), and 64 more
    # weight sets for the fourth mixer while it speaks.
    deflate_bits = 18 if deflate else 0
    deflate_tables = np.full((3, 1 << deflate_bits), 32768 << 16, dtype=np.uint32)
    deflate_slots = np.zeros(3, dtype=np.int64)
    deflate_weights = 4480 + (64 if jpeg else 0)
    dstate, dlens, dcounts, dsymbols, dwindow = _defl.new_state()
    in_deflate = False
    reverse = False
    reversed_bits = np.zeros(256, dtype=np.int64)
    for b in range(256):
        for j in range(8):
            reversed_bits[b] |= ((b >> j) & 1) << (7 - j)
    limits = np.full(nc, LIMIT_HIGH, dtype=np.int64)
    limits[0] = LIMIT_LOW  # order 1
    limits[1] = LIMIT_LOW  # order 2
    limits[10] = LIMIT_LOW  # the byte two back
    # Each context's table is a row of lines of 16 slots (64 bytes: one cache line), one line
    # per context and nibble: slot 0 holds the line's check (its full hash), slots 1 .. 15
    # the nodes of the nibble's binary tree, each a probability (Q16) in the high 16 bits and
    # a count in the next 8. Two lines per context and byte, so two cache misses, not eight.
    line_bits = table_bits - 4
    line_shift = 32 - line_bits
    tables = np.full((nc, 1 << table_bits), 32768 << 16, dtype=np.uint32)
    tables[:, ::16] = 0
    lines = np.zeros(nc, dtype=np.int64)
    order0 = np.full(256, 32768, dtype=np.int64)
    bases = np.zeros(nc, dtype=np.int64)
    slots = np.zeros(nc, dtype=np.int64)
    st = np.zeros(inputs, dtype=np.int64)
    # Weight sets: 256 by partial byte, 128 by match length and bit, 2048 by byte classes
    # and bit pair, 2048 by the byte before and bit.
    weights = np.full((256 + 128 + 2048 + 2048 + (64 if jpeg else 0) + (64 if deflate else 0),
                       inputs), 1 << 13, dtype=np.int64)
    selected = np.zeros(_MIXERS, dtype=np.int64)
    dots = np.zeros(_MIXERS, dtype=np.int64)
    mixed = np.zeros(_MIXERS, dtype=np.int64)
    apm1 = np.empty((1 << apm_bits, 33), dtype=np.int32)
    for c in range(1 << apm_bits):
        for j in range(33):
            apm1[c, j] = squash[min(max((j - 16) * 128, -2047), 2047) + 2047] * 16
    apm2 = apm1.copy()
    last_seen = np.zeros(1 << match_bits, dtype=np.int64)
    match_right = np.full(64, 49152, dtype=np.int64)  # P(the match's bit is right), by length
    match_ptr = 0
    match_len = 0
    word = np.int64(0)
    previous_word = np.int64(0)
    line_start = 0
    prev_start = 0
    classes = np.int64(0)
    # The record model: the last three positions of each byte value; a distance seen three
    # times in a row for one value, then confirmed twice, becomes the record length.
    byte_pos = np.zeros((256, 3), dtype=np.int64)
    record = 0
    candidate = 0
    confirmed = 0
    # The field model: fields of the line split at separators, and where each field of the
    # previous line started.
    field_no = 0
    field_hash = np.int64(0)
    field_off = 0
    field_starts = np.zeros(64, dtype=np.int64)
    prev_field_starts = np.zeros(64, dtype=np.int64)
    prev_fields = 0
    x1, x2, x, pos = coder_start(decode, payload)
    for i in range(n):
        c1 = np.int64(data[i - 1]) if i > 0 else np.int64(0)
        c2 = np.int64(data[i - 2]) if i > 1 else np.int64(0)
        c3 = np.int64(data[i - 3]) if i > 2 else np.int64(0)
        if deflate:
            if jstate[_jpeg._IN_SCAN] == 1:
                _defl.stop(dstate)  # a JPEG scan is coded in the JPEG model's bit order
            in_deflate = _defl.byte_start(dstate)
            reverse = in_deflate
        expected = np.int64(data[match_ptr]) | 256 if match_len > 0 else np.int64(0)
        if reverse and match_len > 0:
            expected = reversed_bits[data[match_ptr]] | 256
        # The contexts of this byte, each a 32-bit hash with its own salt.
        h = np.int64(0)
        k = 0
        for j in range(1, 9):
            h = _mix(h, np.int64(data[i - j]) if i >= j else 0)
            if j == 1 or j == 2 or j == 3 or j == 4 or j == 6 or j == 8:
                bases[k] = _mix(h, j)
                k += 1
        bases[6] = _mix(word, 200)
        bases[7] = _mix(_mix(word, previous_word), 212)
        above = 0
        if line_start > 0:
            col = i - line_start
            if prev_start + col < line_start:
                above = np.int64(data[prev_start + col]) + 1
        bases[8] = _mix(_mix(_mix(above, c1), min(i - line_start, 255)), 201)
        bases[9] = _mix(_mix(c2, c3), 203)
        bases[10] = _mix(c2, 202)
        bases[11] = _mix(_mix(c1, c3), 204)
        if record > 0 and i >= record:
            up = np.int64(data[i - record])
            up2 = np.int64(data[i - 2 * record]) if i >= 2 * record else 0
            bases[12] = _mix(_mix(_mix(up, up2), record), 205)
            bases[13] = _mix(_mix(_mix(up, np.int64(data[i - record + 1])), c1), 206)
        else:
            bases[12] = 205
            bases[13] = 206
        bases[14] = _mix(_mix(field_hash, min(field_no, 63)), 207)
        field_above = 0
        if field_no < prev_fields:
            p = prev_field_starts[field_no] + field_off
            if p < line_start:
                field_above = np.int64(data[p]) + 1
        bases[15] = _mix(_mix(_mix(field_above, min(field_no, 63)), c1), 208)
        bases[16] = _mix(classes & 0xFFFFFF, 209)  # the last eight bytes' classes
        if match_len > 0:
            bases[17] = _mix(_mix(expected, min(match_len, 15)), 210)
        else:
            bases[17] = _mix(c1, 211)
        if jpeg:
            in_jpeg = _jpeg.byte_start(jstate)
        c0 = 1
        node = 1
        for bit in range(8):
            if bit == 0 or bit == 4:
                # A new nibble: find each context's line, and claim it if another context
                # (a hash collision) or nothing holds it yet.
                for k in range(nc):
                    hh = (_mix(bases[k], c0) * _MULT) & 0xFFFFFFFF
                    line = (hh >> line_shift) << 4
                    other = line ^ 16
                    if np.int64(tables[k, line]) != hh:
                        if np.int64(tables[k, other]) == hh:
                            line = other
                        else:
                            # Evict the less used of the two: the count of its first node.
                            if ((np.int64(tables[k, other + 1]) >> 8) & 255) < (
                                    (np.int64(tables[k, line + 1]) >> 8) & 255):
                                line = other
                            tables[k, line] = hh
                            for j in range(1, 16):
                                tables[k, line + j] = 32768 << 16
                    lines[k] = line
                node = 1
            st[0] = stretch[order0[c0] >> 4]
            for k in range(nc):
                s = lines[k] + node
                slots[k] = s
                st[1 + k] = stretch[np.int64(tables[k, s]) >> 20]
            m = 1 + nc
            expected_bit = -1
            length = 0
            if expected and (expected >> (8 - bit)) == c0:
                expected_bit = (expected >> (7 - bit)) & 1
                length = min(match_len, 63)
                p_right = stretch[match_right[length] >> 4]
                st[m] = p_right if expected_bit else -p_right
            else:
                st[m] = 0
            st[m + 1] = 256
            selected[0] = c0
            selected[1] = 256 + (min(length, 15) if expected_bit >= 0 else 0) * 8 + bit
            selected[2] = 384 + (classes & 511) * 4 + (bit >> 1)
            selected[3] = 2432 + c1 * 8 + bit
            if in_jpeg:
                first, second, selector = _jpeg.contexts(jstate)
                for q in range(2):
                    hj = (((first if q == 0 else second) * _MULT) & 0xFFFFFFFF) >> (32 - jpeg_bits)
                    jpeg_slots[q] = hj
                    st[m + 2 + q] = stretch[np.int64(jpeg_tables[q, hj]) >> 20]
                selected[3] = 4480 + selector
            elif jpeg:
                st[m + 2] = 0
                st[m + 3] = 0
            if in_deflate:
                f1, f2, f3, selector = _defl.contexts(dstate, dwindow)
                for q in range(3):
                    hd = (((f1 if q == 0 else (f2 if q == 1 else f3)) * _MULT) & 0xFFFFFFFF
                          ) >> (32 - deflate_bits)
                    deflate_slots[q] = hd
                    st[deflate_input + q] = stretch[np.int64(deflate_tables[q, hd]) >> 20]
                selected[3] = deflate_weights + selector
            elif deflate:
                for q in range(3):
                    st[deflate_input + q] = 0
            total = np.int64(0)
            for q in range(_MIXERS):
                w = weights[selected[q]]
                d = np.int64(0)
                for j in range(inputs):
                    d += w[j] * st[j]
                d = min(max(d >> 16, -2047), 2047)
                dots[q] = d
                mixed[q] = min(max(squash[d + 2047], 1), 4095)
                total += d
            p = min(max(squash[(total >> 2) + 2047], 1), 4095)
            # Two adaptive probability maps: by partial byte and the byte before; by the
            # match state and the partial byte.
            s_in = stretch[p] + 2048
            lo = s_in >> 7
            wt = s_in & 127
            near = min(lo + (wt >> 6), 32)
            row1 = apm1[(c0 | (c1 << 8)) & apm_mask]
            row2 = apm2[(((expected_bit + 1) * 64 + min(length, 15) * 4) * 256 + c0) & apm_mask]
            p = min(max((2 * p + 3 * _interpolate(row1, lo, wt)
                         + 3 * _interpolate(row2, lo, wt)) >> 3, 1), 4095)
            # The binary arithmetic coder (shared with versions 1 and 2): P(bit = 1) = p / 4096.
            shift = bit if reverse else 7 - bit
            x1, x2, x, pos, y = coder_bit(x1, x2, x, pos, p, (np.int64(data[i]) >> shift) & 1,
                                          decode, payload, out)
            if y < 0:
                # Read past any complete stream (damaged: stop now), or longer than the room
                # given (the caller stores the block).
                return pos if decode else -1
            # Learn: the maps, the mixers, then every model.
            row1[near] += ((y << 16) - row1[near]) >> 6
            row2[near] += ((y << 16) - row2[near]) >> 6
            for q in range(_MIXERS):
                w = weights[selected[q]]
                err = (y << 12) - mixed[q]
                for j in range(inputs):
                    w[j] += (st[j] * err) >> 10
            order0[c0] += ((y << 16) - order0[c0]) >> 5
            for k in range(nc):
                v = np.int64(tables[k, slots[k]])
                t = v >> 16
                c = (v >> 8) & 255
                t += (((y << 16) - t) * rates[min(c, limits[k])]) >> 16
                t = min(max(t, 0), 65535)
                if c < 255:
                    c += 1
                tables[k, slots[k]] = (t << 16) | (c << 8)
            if expected_bit >= 0:
                right = 1 if y == expected_bit else 0
                match_right[length] += ((right << 16) - match_right[length]) >> 6
            if in_jpeg:
                for q in range(2):
                    v = np.int64(jpeg_tables[q, jpeg_slots[q]])
                    t = v >> 16
                    c = (v >> 8) & 255
                    t += (((y << 16) - t) * rates[min(c, LIMIT_HIGH)]) >> 16
                    t = min(max(t, 0), 65535)
                    if c < 255:
                        c += 1
                    jpeg_tables[q, jpeg_slots[q]] = (t << 16) | (c << 8)
                _jpeg.bit_done(jstate, jmax, jmin, jptr, jvalues, y)
                # A code that went wrong turns the model off for the rest of the byte too.
                in_jpeg = jstate[_jpeg._IN_SCAN] == 1
            if in_deflate:
                for q in range(3):
                    v = np.int64(deflate_tables[q, deflate_slots[q]])
                    t = v >> 16
                    c = (v >> 8) & 255
                    t += (((y << 16) - t) * rates[min(c, LIMIT_DEFLATE)]) >> 16
                    t = min(max(t, 0), 65535)
                    if c < 255:
                        c += 1
                    deflate_tables[q, deflate_slots[q]] = (t << 16) | (c << 8)
                _defl.bit_done(dstate, dlens, dcounts, dsymbols, dwindow, y)
                in_deflate = _defl.byte_start(dstate)  # the rest of the byte, if it ended
            c0 = (c0 << 1) | y
            node = (node << 1) | y
        byte = c0 & 255
        if reverse:
            byte = reversed_bits[byte]
        if decode:
            data[i] = byte
        if jpeg:
            _jpeg.byte_done(jstate, jmax, jmin, jptr, jvalues, jsegment, byte)
        if deflate:
            _defl.byte_done(dstate, dlens, dcounts, dsymbols, dwindow, byte, reverse)
        classes = ((classes << 3) | _byte_class(byte)) & 0x3FFFFFFF
        # Lines and fields.
        if byte == 10:
            prev_start = line_start
            line_start = i + 1
            prev_fields = min(field_no + 1, 64)
            for f in range(prev_fields):
                prev_field_starts[f] = field_starts[f]
            field_no = 0
            field_hash = 0
            field_off = 0
            field_starts[0] = i + 1
        elif _is_separator(byte):
            if field_off > 0:
                field_no += 1
            field_hash = _mix(0, byte)
            field_off = 0
            if field_no < 64:
                field_starts[field_no] = i + 1
        else:
            field_hash = _mix(field_hash, byte)
            field_off += 1
        # Words: the letters (and UTF-8 bytes) since the last other byte, any case.
        if _is_letter(byte):
            word = (word * 0x2F0A3 + (byte | 32) + 1) & 0xFFFFFFFF
        else:
            if _is_letter(c1):
                previous_word = word
            word = (byte + 1) * 0x101
        # Records: the distance to this value's last occurrence, if it repeats.
        r = i - byte_pos[byte, 0]
        if (byte_pos[byte, 2] > 0 and 1 < r <= MAX_RECORD
                and r == byte_pos[byte, 0] - byte_pos[byte, 1]
                and r == byte_pos[byte, 1] - byte_pos[byte, 2]):
            if r == candidate:
                confirmed += 1
                if confirmed >= 2:
                    record = r
            else:
                candidate = r
                confirmed = 0
        byte_pos[byte, 2] = byte_pos[byte, 1]
        byte_pos[byte, 1] = byte_pos[byte, 0]
        byte_pos[byte, 0] = i
        # The match model: follow the match, or look the context up.
        if match_len > 0 and data[match_ptr] == byte:
            match_len += 1
            match_ptr += 1
        else:
            match_len = 0
        if i + 1 >= MATCH_MIN:
            h = np.int64(0)
            for j in range(MATCH_MIN):
                h = (h * 0x2F0A3 + data[i - j] + 1) & 0xFFFFFFFF
            h = ((h * 0x9E3779B) >> 24) & ((1 << match_bits) - 1)
            if match_len == 0 and last_seen[h] > 0:
                match_ptr = last_seen[h]
                match_len = 1
            last_seen[h] = i + 1
    return coder_finish(x1, pos, decode, out)
