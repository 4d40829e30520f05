"""Reversible text views of string-array chunks, so that a text model sees lines of text.

A Zarr or numcodecs chunk of strings is not text as it lies in memory: fixed-width ``S`` items
are padded with NULs, ``U`` items are UTF-32, and variable-length strings carry a 4-byte length
before each item (numcodecs' ``VLenUTF8`` / ``VLenBytes`` encoding, also zarr 3's
``vlen-utf8``). A model codes such bytes badly, or not at all (the padding makes a block look
binary). :func:`text_view` turns a chunk into its items as lines, each item followed by a
*separator* byte that occurs in no item, and a :class:`StringLayout` that says how to rebuild
the chunk from those lines exactly. The frame records the layout (``docs/format.md``), so the
reader restores the original bytes, whatever they were.

Exactness does not rest on the rules below being right for every input: :func:`text_view`
rebuilds the chunk from its view and returns no view unless that gives back the very same bytes
(embedded NULs, empty strings, lone surrogates in ``U``, bytes that are not UTF-8 in ``S``, a
hint that does not describe the data). Without a view the chunk is coded as it is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import CodecError, CorruptDataError

__all__ = ["KINDS", "StringLayout", "strings_hint", "text_view"]

#: Layout kinds: items of ``itemsize`` bytes padded with NULs; items of ``itemsize`` bytes of
#: UTF-32 (little- or big-endian) padded with U+0000; numcodecs' variable-length encoding.
KINDS = ("fixed-bytes", "fixed-utf32le", "fixed-utf32be", "vlen")
#: Separators in order of preference: a newline reads most like the text the model knows; the
#: others are used only when every item of the chunk contains the ones before.
_PREFERRED = (0x0A, 0x1E, 0x00, 0x1F, 0x1D, 0x1C, 0x09)
_SEPARATORS = (*_PREFERRED, *(b for b in range(256) if b not in _PREFERRED))
_U32 = struct.Struct("<I")
#: Longest item a layout may declare (bytes): bounds what a forged layout makes a reader build.
MAX_ITEMSIZE = 1 << 30


@dataclass(frozen=True)
class StringLayout:
    """How a chunk of strings became lines of text; recorded in the frame header.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    itemsize : int
        Bytes per item for the fixed kinds; 0 for ``"vlen"``.
    separator : int
        The byte that ends every item in the text (it occurs in no item).
    """

    kind: str
    itemsize: int
    separator: int

    def to_json(self) -> dict[str, Any]:
        """The header's ``layout`` object."""
        fields: dict[str, Any] = {"kind": self.kind, "separator": self.separator}
        if self.kind != "vlen":
            fields["itemsize"] = self.itemsize
        return fields

    @classmethod
    def from_json(cls, fields: Any) -> StringLayout:
        """Parse and validate a header's ``layout`` object (:class:`CorruptDataError` if bad)."""
        if not isinstance(fields, dict) or fields.get("kind") not in KINDS:
            raise CorruptDataError(f"malformed frame header: bad string layout {fields!r}")
        kind = fields["kind"]
        expected = {"kind", "separator"} | ({"itemsize"} if kind != "vlen" else set())
        itemsize = fields.get("itemsize", 0)
        separator = fields.get("separator")
        if (
            set(fields) != expected
            or not _is_int(separator, 0, 255)
            or not (itemsize == 0 if kind == "vlen" else _is_int(itemsize, 1, MAX_ITEMSIZE))
            or (kind.startswith("fixed-utf32") and itemsize % 4)
        ):
            raise CorruptDataError(f"malformed frame header: bad string layout {fields!r}")
        return cls(kind, itemsize, separator)

    def restore(self, text: bytes, size: int) -> bytes:
        """Rebuild the chunk of ``size`` bytes from its text view.

        Raises
        ------
        CorruptDataError
            The text cannot be the view of a chunk of ``size`` bytes with this layout. Checked
            before anything of ``size`` is allocated.
        """
        items = bytes(text).split(bytes((self.separator,)))
        if items.pop() != b"":
            raise CorruptDataError("string layout: the text does not end with its separator")
        if self.kind == "vlen":
            if size != 4 + 3 * len(items) + len(text):  # 4 + 4n + (len(text) - n)
                raise CorruptDataError("string layout: the text does not make the declared size")
            out = bytearray(_U32.pack(len(items)))
            for item in items:
                out += _U32.pack(len(item))
                out += item
            return bytes(out)
        if len(items) * self.itemsize != size:
            raise CorruptDataError("string layout: the text does not make the declared size")
        if not items:
            return b""
        if self.kind == "fixed-bytes":
            if max(map(len, items)) > self.itemsize:
                raise CorruptDataError("string layout: an item is longer than its width")
            # numpy pads each item with NULs to the width, as the array held it.
            return np.array(items, dtype=f"S{self.itemsize}").tobytes()
        try:
            strs = [item.decode("utf-8", "surrogatepass") for item in items]
        except UnicodeDecodeError:
            raise CorruptDataError("string layout: an item is not UTF-8") from None
        width = self.itemsize // 4
        if max(map(len, strs)) > width:
            raise CorruptDataError("string layout: an item is longer than its width")
        order = "<" if self.kind == "fixed-utf32le" else ">"
        return np.array(strs, dtype=f"{order}U{width}").tobytes()


def _is_int(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def strings_hint(strings: Any, data: Any = None) -> tuple[str, int] | None:
    """Normalise the ``strings`` argument of :func:`llm_codecs.compress`.

    Returns ``("fixed-bytes" | "fixed-utf32", itemsize)``, ``("vlen", 0)``, ``("auto", 0)``
    (try the variable-length encoding) or None (no view).

    Parameters
    ----------
    strings : str, numpy dtype or None
        ``"auto"``: a numpy array of an ``S`` or ``U`` dtype is viewed as such, anything else
        is tried as the variable-length encoding. ``"vlen"``: the variable-length encoding.
        A numpy dtype (or its string, ``"S200"``, ``"<U50"``): fixed-width strings of that
        dtype; an object or ``StringDType`` dtype means the variable-length encoding. Other
        dtypes, and None: no view.
    data : object, optional
        The data being compressed, whose own dtype ``"auto"`` uses.
    """
    if strings is None:
        return None
    if isinstance(strings, str) and strings in ("auto", "vlen"):
        if strings == "vlen":
            return ("vlen", 0)
        dtype = getattr(data, "dtype", None)
        if isinstance(dtype, np.dtype) and dtype.kind in "SU":
            return strings_hint(dtype)
        return ("auto", 0)
    try:
        dtype = np.dtype(strings)
    except TypeError:
        raise CodecError(
            f"strings must be 'auto', 'vlen', None or a numpy dtype, got {strings!r}"
        ) from None
    if dtype.kind == "S" and dtype.itemsize:
        return ("fixed-bytes", dtype.itemsize)
    if dtype.kind == "U" and dtype.itemsize:
        return ("fixed-utf32", dtype.itemsize)
    if dtype.kind in "OT":  # object arrays of str, numpy's StringDType
        return ("vlen", 0)
    return None


def text_view(data: bytes | memoryview, hint: tuple[str, int] | None):
    """The text view of a chunk, or None where there is none or it would not restore exactly.

    Parameters
    ----------
    data : bytes-like
        The chunk as it lies in memory.
    hint : tuple or None
        What :func:`strings_hint` returned.

    Returns
    -------
    (StringLayout, bytes) or None
        The layout and the text: every item followed by the separator.
    """
    if hint is None or not len(data):
        return None
    data = bytes(data)
    kind, itemsize = hint
    if kind in ("vlen", "auto"):
        items = _vlen_items(data)
        candidates = [] if items is None else [("vlen", 0, items)]
    elif len(data) % itemsize:
        return None
    elif kind == "fixed-bytes":
        items = np.frombuffer(data, dtype=f"S{itemsize}").tolist()
        candidates = [("fixed-bytes", itemsize, items)]
    else:
        candidates = [(f"fixed-utf32{name}", itemsize, _utf32_items(data, itemsize, order))
                      for name, order in (("le", "<"), ("be", ">"))]
    for kind, itemsize, items in candidates:
        if items is None:
            continue
        separator = _free_byte(items)
        if separator is None:
            continue
        layout = StringLayout(kind, itemsize, separator)
        sep = bytes((separator,))
        text = sep.join(items) + sep if items else b""
        # The rule of this module: no view unless it gives back exactly these bytes.
        try:
            if layout.restore(text, len(data)) == data:
                return layout, text
        except (CorruptDataError, ValueError):
            continue
    return None


def _vlen_items(data: bytes) -> list[bytes] | None:
    """The items of numcodecs' variable-length encoding, or None if ``data`` is not one."""
    if len(data) < 4:
        return None
    (count,) = _U32.unpack_from(data, 0)
    if 4 + 4 * count > len(data):
        return None
    items, pos, end = [], 4, len(data)
    for _ in range(count):
        if pos + 4 > end:
            return None
        (n,) = _U32.unpack_from(data, pos)
        pos += 4
        if pos + n > end:
            return None
        items.append(data[pos : pos + n])
        pos += n
    return items if pos == end else None


def _utf32_items(data: bytes, itemsize: int, order: str) -> list[bytes] | None:
    """Items of a UTF-32 array as UTF-8 (surrogates passed through), or None if not UTF-32."""
    units = np.frombuffer(data, dtype=f"{order}u4")
    if units.size and int(units.max()) > 0x10FFFF:
        return None
    strs = np.frombuffer(data, dtype=f"{order}U{itemsize // 4}").tolist()
    return [s.encode("utf-8", "surrogatepass") for s in strs]


def _free_byte(items: list[bytes]) -> int | None:
    """The first separator of :data:`_SEPARATORS` that occurs in no item, if any."""
    counts = np.bincount(np.frombuffer(b"".join(items), dtype=np.uint8), minlength=256)
    for byte in _SEPARATORS:
        if counts[byte] == 0:
            return byte
    return None
