"""Unsigned LEB128 integers, as the LZ77 and LLM payloads write their counts and lengths.

Seven bits per byte, low group first; the high bit of a byte says that another one follows.
Specified in ``docs/format.md`` ("Integers in payloads"): at most :data:`MAX_BYTES` bytes
(values below ``2**35``), and canonical - the last byte is never ``0x00`` unless it is the only
one, so every value has exactly one encoding. Every writer of the format has written exactly
this (the shortest encoding), so a reader that refuses anything else refuses no frame a writer
made.
"""

from __future__ import annotations

from ..errors import CorruptDataError

__all__ = ["MAX_BYTES", "MAX_VALUE", "get_varint", "put_varint"]

#: Longest encoding a reader accepts: 35 bits, more than any count or length in a block of at
#: most 64 MiB needs (those fit 4 bytes).
MAX_BYTES = 5
#: Largest value an encoding of :data:`MAX_BYTES` bytes holds.
MAX_VALUE = (1 << (7 * MAX_BYTES)) - 1


def put_varint(out: bytearray, value: int) -> None:
    """Append the canonical encoding of ``0 <= value <= MAX_VALUE`` to ``out``."""
    if not 0 <= value <= MAX_VALUE:
        raise ValueError(f"varint value {value} outside 0 .. {MAX_VALUE}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def get_varint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read the integer at ``data[pos:]``: ``(value, position after it)``.

    Raises :class:`~llm_codecs.errors.CorruptDataError`, its message starting with ``what``, if
    the encoding is truncated, longer than :data:`MAX_BYTES` bytes or not canonical.
    """
    value = 0
    for k in range(MAX_BYTES):
        if pos >= len(data):
            raise CorruptDataError(f"{what}: truncated integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * k)
        if byte < 0x80:
            if byte == 0 and k:
                raise CorruptDataError(f"{what}: non-canonical integer")
            return value, pos
    raise CorruptDataError(f"{what}: integer longer than {MAX_BYTES} bytes")
