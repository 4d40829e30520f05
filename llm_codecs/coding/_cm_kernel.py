"""A bitwise context-mixing model and binary arithmetic coder (numba), for the ``cm`` codec.

Each byte is coded as 8 binary decisions, most significant bit first. Every decision is
predicted by several models, mixed in the logistic domain, and coded with a 32-bit binary
arithmetic coder:

- order-0 (the bits of the byte so far), hashed order-1, 2, 3, 4 and 6 contexts (the previous
  bytes), the current word and (version 2) the column: the byte above in the previous line,
  each an adaptive probability per context and partial byte;
- a match model: the byte that followed the latest earlier occurrence of the last
  :data:`MATCH_MIN` bytes, its predicted bit weighted by how long the match has run;
- a mixer: one weight vector per partial byte, trained online to minimise coding cost.

All arithmetic is on integers (probabilities in 1/4096 or 1/65536, weights in Q16, the logistic
curve from a fixed table), so both sides compute the same predictions on every machine. One
function runs both directions (``decode`` selects which side of the coder it is), so the
encoder and the decoder cannot drift apart.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

#: The contexts of each version of the model, as ``orders``: ``n > 0`` hashes the ``n``
#: bytes before the one being coded, ``0`` the current word, ``-1`` the column (the byte
#: above in the previous line, the byte before, the column). Version 1 is method 5,
#: version 2 (with the column context) method 6; both stay decodable.
ORDERS_V1 = np.array([1, 2, 3, 4, 6, 0], dtype=np.int64)
ORDERS_V2 = np.array([1, 2, 3, 4, 6, 0, -1], dtype=np.int64)
#: log2 of the entries of each hashed context table (at most; smaller blocks use fewer).
TABLE_BITS = 18
#: Bytes of context the match model looks up.
MATCH_MIN = 5
#: log2 of the entries of the match model's table of last positions (at most).
MATCH_BITS = 16
#: The logistic curve at 33 points, ``round(4096 / (1 + exp(-(i - 16) / 2)))`` clipped to
#: 1 .. 4095: written out, so no machine's ``exp`` is ever involved.
_SQUASH_POINTS = np.array(
    [1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994,
     3349, 3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095],
    dtype=np.int64,
)


#: Counts after which a context's probability adapts at its slowest rate.
COUNT_LIMIT = 20


def rate_table() -> np.ndarray:
    """Learning rate of a context seen ``n`` times, Q16: ``65536 / (n + 1.5)``, floored at the
    rate of :data:`COUNT_LIMIT` (a new context learns fast, an old one averages)."""
    n = np.arange(COUNT_LIMIT + 1, dtype=np.int64)
    return (2 * 65536) // (2 * n + 3)


def squash_table() -> np.ndarray:
    """``squash(d)`` for ``d`` in -2047 .. 2047 (index ``d + 2047``): probability in 1/4096,
    linearly interpolated between the 33 points."""
    d = np.arange(-2047, 2048, dtype=np.int64)
    i = (d + 2048) >> 7
    w = (d + 2048) & 127
    return (_SQUASH_POINTS[i] * (128 - w) + _SQUASH_POINTS[np.minimum(i + 1, 32)] * w + 64) >> 7


def stretch_table(squash: np.ndarray) -> np.ndarray:
    """``stretch(p)`` for ``p`` in 0 .. 4095: the smallest ``d`` with ``squash(d) >= p``."""
    out = np.full(4096, 2047, dtype=np.int64)
    filled = 0
    for d in range(-2047, 2048):
        v = int(squash[d + 2047])
        if v >= filled:
            out[filled : v + 1] = d
            filled = v + 1
    return out


# The binary arithmetic coder of every version, in one place. Its state is four integers: the
# interval ``x1 .. x2``, the decoder's window ``x`` and the payload position ``pos``.


@nb.njit(cache=True, nogil=True)
def coder_start(decode, payload):  # pragma: no cover - compiled
    """``(x1, x2, x, pos)`` of an empty interval; a decoder reads its first 4 bytes (zeros
    past the end)."""
    x = np.int64(0)
    pos = 0
    if decode:
        for _ in range(4):
            x = (x << 8) | (payload[pos] if pos < payload.shape[0] else 0)
            pos += 1
    return np.int64(0), np.int64(0xFFFFFFFF), x, pos


@nb.njit(cache=True, nogil=True, inline="always")
def coder_bit(x1, x2, x, pos, p, bit, decode, payload, out):  # pragma: no cover - compiled
    """Code one decision of probability ``p / 4096`` of a 1: the encoder's ``bit``, or the bit
    the decoder reads. Returns the new ``(x1, x2, x, pos)`` and the bit, which is -1 when the
    decoder has read past any complete stream (damaged: stop) or the encoder's output would
    not fit ``out``."""
    xmid = x1 + ((x2 - x1) >> 12) * p
    y = (1 if x <= xmid else 0) if decode else bit
    if y:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if decode:
            if pos > payload.shape[0] + 3:
                return x1, x2, x, pos, -1
            x = ((x << 8) & 0xFFFFFFFF) | (payload[pos] if pos < payload.shape[0] else 0)
            pos += 1
        else:
            if pos >= out.shape[0]:
                return x1, x2, x, pos, -1
            out[pos] = x2 >> 24
            pos += 1
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    return x1, x2, x, pos, y


@nb.njit(cache=True, nogil=True)
def coder_finish(x1, pos, decode, out):  # pragma: no cover - compiled
    """The encoder's last byte (one that, followed by any bytes, decodes inside the interval):
    the payload's length, or -1 if it does not fit. The decoder: the bytes it read."""
    if decode:
        return pos
    if pos >= out.shape[0]:
        return -1
    out[pos] = ((x1 + 0xFFFFFF) >> 24) & 255
    return pos + 1


@nb.njit(cache=True, nogil=True, inline="always")
def _context_hash(data, i, order):  # pragma: no cover - compiled
    h = order + 1
    for j in range(1, order + 1):
        b = data[i - j] if i >= j else 0
        h = ((h * 0x2F0A3) + b + 1) & 0xFFFFFFFF
    return h


@nb.njit(cache=True, nogil=True)
def run(data, n, decode, payload, out, squash, stretch, rates, orders):  # pragma: no cover
    """Code ``n`` bytes: encode ``data`` into ``out`` (returns the bytes written, or -1 when
    they would not fit ``out``), or decode ``payload`` into ``data`` (returns how many bytes
    the decoder read, padding included: a complete stream is read exactly 3 bytes past its
    end)."""
    # Table sizes follow the block (a small block needs little room, and clearing 17 MiB for
    # it would cost more than coding it): the same function of ``n`` on both sides.
    size_bits = 0
    while (1 << size_bits) < n:
        size_bits += 1
    table_bits = min(TABLE_BITS, max(10, size_bits + 2))
    apm_bits = min(16, max(8, size_bits))
    match_bits = min(MATCH_BITS, max(8, size_bits))
    mask = (1 << table_bits) - 1
    n_orders = orders.shape[0]
    inputs = 1 + n_orders + 2
    order0 = np.full(256, 32768, dtype=np.int64)
    tables = np.full((n_orders, 1 << table_bits), 32768, dtype=np.int32)
    counts = np.zeros((n_orders, 1 << table_bits), dtype=np.uint8)
    bases = np.zeros(n_orders, dtype=np.int64)
    slots = np.zeros(n_orders, dtype=np.int64)
    weights = np.full((256 + 16 * 8, inputs), 1 << 14, dtype=np.int64)
    st = np.zeros(inputs, dtype=np.int64)
    last_seen = np.zeros(1 << match_bits, dtype=np.int64)
    # The final stage (SSE): the mixed probability refined by the partial byte and the byte
    # before, on 33 interpolation points each.
    apm = np.empty((1 << apm_bits, 33), dtype=np.int32)
    for c in range(1 << apm_bits):
        for j in range(33):
            apm[c, j] = squash[min(max((j - 16) * 128, -2047), 2047) + 2047] * 16
    match_right = np.full(64, 49152, dtype=np.int64)  # P(the match's bit is right), by length
    match_ptr = 0
    match_len = 0
    word = np.int64(0)
    line_start = 0
    prev_start = 0
    x1, x2, x, pos = coder_start(decode, payload)
    for i in range(n):
        for k in range(n_orders):
            if orders[k] == 0:
                h = word
            elif orders[k] < 0:
                # The column context: the byte above (same column of the previous line) and
                # the byte before, for line-structured text (logs, CSV, tables).
                above = 0
                if line_start > 0:
                    col = i - line_start
                    if prev_start + col < line_start:
                        above = np.int64(data[prev_start + col]) + 1
                h = ((above * 0x2F0A3 + (np.int64(data[i - 1]) if i > 0 else 0) + 7) * 0x2F0A3
                     + min(i - line_start, 255)) & 0xFFFFFFFF
            else:
                h = _context_hash(data, i, orders[k])
            bases[k] = (h * 0x9E3779B) >> 24
        expected = np.int64(data[match_ptr]) | 256 if match_len > 0 else np.int64(0)
        c0 = 1
        for bit in range(8):
            # Inputs: stretched probabilities of each model.
            st[0] = stretch[order0[c0] >> 4]
            for k in range(n_orders):
                s = (bases[k] + c0 * 0x2F0A3) & mask
                slots[k] = s
                st[1 + k] = stretch[tables[k, s] >> 4]
            m = 1 + n_orders
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
            # Two weight sets, by partial byte and by match length and bit position; their
            # outputs are averaged in the logistic domain.
            w = weights[c0]
            w2 = weights[256 + (min(length, 15) if expected_bit >= 0 else 0) * 8 + bit]
            dot = np.int64(0)
            dot2 = np.int64(0)
            for j in range(inputs):
                dot += w[j] * st[j]
                dot2 += w2[j] * st[j]
            dot = min(max(dot >> 16, -2047), 2047)
            dot2 = min(max(dot2 >> 16, -2047), 2047)
            p1 = min(max(squash[dot + 2047], 1), 4095)
            p2 = min(max(squash[dot2 + 2047], 1), 4095)
            p = min(max(squash[((dot + dot2) >> 1) + 2047], 1), 4095)
            actx = (c0 | ((np.int64(data[i - 1]) << 8) if i > 0 else 0)) & ((1 << apm_bits) - 1)
            s_in = stretch[p] + 2048
            lo = s_in >> 7
            wt = s_in & 127
            row = apm[actx]
            pa = (np.int64(row[lo]) * (128 - wt) + np.int64(row[min(lo + 1, 32)]) * wt) >> 11
            near = min(lo + (wt >> 6), 32)
            p = min(max((p + 3 * pa) >> 2, 1), 4095)
            # The binary arithmetic coder: P(bit = 1) = p / 4096.
            x1, x2, x, pos, y = coder_bit(x1, x2, x, pos, p, (np.int64(data[i]) >> (7 - bit)) & 1,
                                          decode, payload, out)
            if y < 0:
                # Read past any complete stream (damaged: stop now), or longer than the room
                # given (the caller stores the block).
                return pos if decode else -1
            # Learn: the mixer towards the coded bit, then every model.
            row[near] += ((y << 16) - row[near]) >> 6
            err = ((y << 12) - p1)
            err2 = ((y << 12) - p2)
            for j in range(inputs):
                w[j] += (st[j] * err) >> 10
                w2[j] += (st[j] * err2) >> 10
            order0[c0] += ((y << 16) - order0[c0]) >> 5
            for k in range(n_orders):
                sk = slots[k]
                t = np.int64(tables[k, sk])
                c = np.int64(counts[k, sk])
                tables[k, sk] = t + ((((y << 16) - t) * rates[c]) >> 16)
                if c < COUNT_LIMIT:
                    counts[k, sk] = c + 1
            if expected_bit >= 0:
                right = 1 if y == expected_bit else 0
                match_right[length] += ((right << 16) - match_right[length]) >> 6
            c0 = (c0 << 1) | y
        byte = c0 & 255
        if decode:
            data[i] = byte
        if byte == 10:
            prev_start = line_start
            line_start = i + 1
        # The word context: the letters (and UTF-8 bytes) since the last other byte, any case.
        if (65 <= byte <= 90) or (97 <= byte <= 122) or byte >= 128:
            word = (word * 0x2F0A3 + (byte | 32) + 1) & 0xFFFFFFFF
        else:
            word = (byte + 1) * 0x101
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
