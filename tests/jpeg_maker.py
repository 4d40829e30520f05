"""Baseline JPEG files made here, for the tests of the context-mixing JPEG model.

A small baseline (SOF0) encoder: YCbCr with 2x2-subsampled chroma (six blocks an MCU) or
grayscale, an orthonormal DCT, one flat quantization table, and Huffman tables optimal for the
image (as ``jpegtran -optimize`` writes them), at most 16 bits, none all ones. No image library
is needed and nothing is downloaded; the images are drawn from a seed.
"""

from __future__ import annotations

import numpy as np

from llm_codecs.coding.huffman import _package_merge

_ZIGZAG = sorted(((y, x) for y in range(8) for x in range(8)),
                 key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0]))
_DCT = np.array([[np.sqrt((1 if k == 0 else 2) / 8) * np.cos((2 * n + 1) * k * np.pi / 16)
                  for n in range(8)] for k in range(8)])


def picture(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB picture: smooth gradients, a few discs and stripes, a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / (20 + 10 * c) + y / 37 + c) for c in range(3)], -1)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(8, 40)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    img[(x.astype(int) // 9) % 5 == 0] *= 0.6
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _size(v: int) -> int:
    return int(abs(v)).bit_length()


def _bits(v: int, size: int) -> int:
    return v if v >= 0 else v + (1 << size) - 1


def _blocks(plane: np.ndarray, quant: np.ndarray) -> np.ndarray:
    """Quantized coefficients in zigzag order, shape (rows, cols, 64)."""
    h, w = plane.shape
    out = np.zeros((h // 8, w // 8, 64), dtype=np.int64)
    for by in range(h // 8):
        for bx in range(w // 8):
            block = plane[by * 8:(by + 1) * 8, bx * 8:(bx + 1) * 8] - 128.0
            coef = np.rint(_DCT @ block @ _DCT.T / quant).astype(np.int64)
            out[by, bx] = [coef[p] for p in _ZIGZAG]
    return out


def _symbols(coefs: np.ndarray, previous_dc: int):
    """(DC symbol, DC bits), then the AC (symbol, bits) of one block; the block's DC."""
    dc = int(coefs[0])
    diff = dc - previous_dc
    out = [("dc", _size(diff), _bits(diff, _size(diff)), _size(diff))]
    run = 0
    for k in range(1, 64):
        v = int(coefs[k])
        if v == 0:
            run += 1
            continue
        while run > 15:
            out.append(("ac", 0xF0, 0, 0))
            run -= 16
        out.append(("ac", (run << 4) | _size(v), _bits(v, _size(v)), _size(v)))
        run = 0
    if run:
        out.append(("ac", 0x00, 0, 0))
    return out, dc


def _huffman(freq: np.ndarray) -> tuple[list[int], list[int], dict[int, tuple[int, int]]]:
    """JPEG's (counts per length, symbols) and symbol -> (code, length), for ``freq``."""
    freq = freq.copy()
    freq[256] = 1  # a reserved symbol takes the all-ones code, which JPEG forbids
    if np.count_nonzero(freq) < 2:
        freq[0] = max(freq[0], 1)
    lengths = _package_merge(freq, 16)
    longest = int(np.argmax(lengths))
    lengths[256], lengths[longest] = lengths[longest], lengths[256]  # the reserved one last
    order = sorted((int(lengths[s]), s) for s in range(257) if lengths[s])
    counts = [0] * 16
    codes, code, previous = {}, 0, order[0][0]
    for length, symbol in order:
        code <<= length - previous
        previous = length
        counts[length - 1] += 1
        codes[symbol] = (code, length)
        code += 1
    symbols = [s for _, s in order if s != 256]
    counts[order[-1][0] - 1] -= 1  # the reserved symbol is not written (it is the last code)
    assert order[-1][1] == 256
    return counts, symbols, codes


def encode(rgb: np.ndarray, gray: bool = False, quality_step: int = 10) -> bytes:
    """A baseline JPEG of ``rgb`` (height and width multiples of 16)."""
    h, w, _ = rgb.shape
    f = rgb.astype(np.float64)
    luma = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    quant = np.full((8, 8), float(quality_step))
    quant[0, 0] = 8.0
    planes = [_blocks(luma, quant)]
    if not gray:
        cb = 128 - 0.168736 * f[..., 0] - 0.331264 * f[..., 1] + 0.5 * f[..., 2]
        cr = 128 + 0.5 * f[..., 0] - 0.418688 * f[..., 1] - 0.081312 * f[..., 2]
        for plane in (cb, cr):
            small = plane.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            planes.append(_blocks(small, quant))
    # The scan's blocks in MCU order: 2x2 luma then one of each chroma, or luma alone.
    units = []
    if gray:
        units = [(0, by, bx) for by in range(h // 8) for bx in range(w // 8)]
    else:
        for my in range(h // 16):
            for mx in range(w // 16):
                units += [(0, 2 * my + dy, 2 * mx + dx) for dy in (0, 1) for dx in (0, 1)]
                units += [(1, my, mx), (2, my, mx)]
    coded, previous = [], [0, 0, 0]
    for comp, by, bx in units:
        symbols, previous[comp] = _symbols(planes[comp][by, bx], previous[comp])
        coded.append((comp, symbols))
    tables = {}
    for kind in ("dc", "ac"):
        for group in ((0,), (1, 2)):
            freq = np.zeros(257, dtype=np.int64)
            for comp, symbols in coded:
                if comp in group:
                    for k, s, _, _ in symbols:
                        if k == kind:
                            freq[s] += 1
            if freq.any():
                tables[(kind, group[0])] = _huffman(freq)
    bits, nbits = 0, 0
    data = bytearray()

    def put(value: int, length: int) -> None:
        nonlocal bits, nbits
        bits = (bits << length) | value
        nbits += length
        while nbits >= 8:
            byte = (bits >> (nbits - 8)) & 255
            data.append(byte)
            if byte == 0xFF:
                data.append(0)
            nbits -= 8
        bits &= (1 << nbits) - 1

    for comp, symbols in coded:
        group = 0 if comp == 0 else 1
        for kind, s, extra, size in symbols:
            code, length = tables[(kind, group)][2][s]
            put(code, length)
            if size:
                put(extra, size)
    if nbits:
        put((1 << (8 - nbits)) - 1, 8 - nbits)
    out = bytearray(b"\xff\xd8")
    q = bytes([0]) + bytes(int(quant[p]) for p in _ZIGZAG)
    out += b"\xff\xdb" + (2 + len(q)).to_bytes(2, "big") + q
    ncomp = 1 if gray else 3
    sof = bytes([8]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([ncomp])
    sof += bytes([1, 0x11 if gray else 0x22, 0])
    if not gray:
        sof += bytes([2, 0x11, 0, 3, 0x11, 0])
    out += b"\xff\xc0" + (2 + len(sof)).to_bytes(2, "big") + sof
    for (kind, group), (counts, symbols, _) in sorted(tables.items()):
        body = bytes([(0 if kind == "dc" else 0x10) | (0 if group == 0 else 1)])
        body += bytes(counts) + bytes(symbols)
        out += b"\xff\xc4" + (2 + len(body)).to_bytes(2, "big") + body
    sos = bytes([ncomp, 1, 0x00])
    if not gray:
        sos += bytes([2, 0x11, 3, 0x11])
    sos += bytes([0, 63, 0])
    out += b"\xff\xda" + (2 + len(sos)).to_bytes(2, "big") + sos
    return bytes(out + data + b"\xff\xd9")
