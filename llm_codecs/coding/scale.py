"""The precision of the LLM codec's frequency tables: one range, checked in one place.

Every table sums to ``M = 2**scale_bits``. The frame records ``scale_bits`` in the ``llm``
codec's parameters (``docs/format.md``), and the codec, the quantizer (:mod:`.quantize`), the
in-block mixer (:mod:`.cache_mix`) and the rANS coder (:mod:`.rans`) all accept the same range:

- at most 31: the rANS64 state lives in ``[L, L * 2**32)`` with ``L = 2**31``, and
  renormalization needs ``M <= L``; the quantizer's int64 products ``2**32 * (M - V)`` also
  stay below ``2**63`` only up to there;
- at least 24: what the ``llm`` codec has accepted since its first version. The tables give
  every token at least one count and the quantizer holds vocabularies to ``V <= M / 16`` (the
  model keeps at least 15/16 of the mass), so 24 bits admit up to ``2**20`` tokens; the rANS
  coder would work with fewer bits, but nothing makes such tables and no frame records them.
"""

from __future__ import annotations

from typing import Any

from ..errors import CodecError

__all__ = ["MAX_SCALE_BITS", "MIN_SCALE_BITS", "check_scale_bits"]

MIN_SCALE_BITS = 24
MAX_SCALE_BITS = 31


def check_scale_bits(scale_bits: Any) -> int:
    """Return ``scale_bits`` if it is an ``int`` (not a bool) in ``MIN_SCALE_BITS ..
    MAX_SCALE_BITS``; raise :class:`~llm_codecs.errors.CodecError` (a ``ValueError``) if not."""
    if isinstance(scale_bits, bool) or not isinstance(scale_bits, int) \
            or not MIN_SCALE_BITS <= scale_bits <= MAX_SCALE_BITS:
        raise CodecError(f"scale_bits must be an integer between {MIN_SCALE_BITS} and "
                         f"{MAX_SCALE_BITS}, got {scale_bits!r}")
    return scale_bits
