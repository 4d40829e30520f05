"""Frequency tables that mix the model with the token counts of the block coded so far.

A small model is badly calibrated on text unlike its training data (WikiText's ``@-@`` markup,
JSON keys, CSV columns): a plain count of the tokens already seen in the block - a unigram
*cache* - predicts them far better. On the prose the model knows, mixing anything in only
costs. So each block adapts: the table at every step mixes the model's quantized distribution
with the counts by one of a few fixed shares, the share that would have coded the block's tokens
so far in the fewest bits (follow the leader; ties go to the smaller cache share). Encoder and
decoder update the same integer state from the same decoded tokens, so the choice never needs
to be transmitted.

Everything is integer arithmetic after the model's float32 logits (see :mod:`.quantize`); with no
tokens seen yet, or the cache turned off, the tables are exactly :func:`.quantize`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _quantize_kernel as kernel
from .quantize import _EXP2_COEFFS, _INV_LN2, _MIN_Y, MAX_SCALE_BITS, MIN_SCALE_BITS

__all__ = ["CACHE_SHARES_64THS", "TokenCacheMixer"]

#: Cache shares tried, in 64ths of the table (the model keeps the rest).
CACHE_SHARES_64THS = (0, 1, 2, 4, 8, 16, 32, 48)
# log2(1 + i / 4096) in 1/65536 bits: the selection's integer cost (rounding makes it immune to
# last-ulp differences between math libraries).
_LOG_TABLE = np.round(np.log2(1.0 + np.arange(4096) / 4096.0) * 65536.0).astype(np.int64)
_COEFFS = np.array(_EXP2_COEFFS, dtype=np.float32)


class TokenCacheMixer:
    """Tables for one block on one side (encoder or decoder); feed it every coded step.

    Parameters
    ----------
    lanes : int
        Rows per step.
    vocab : int
        Width of the logits.
    scale_bits : int
        Tables sum to ``2**scale_bits`` (24 .. 31).
    cache : bool
        Mix in the token counts (default); ``False`` gives exactly :func:`.quantize`'s tables.

    Raises
    ------
    ValueError
        ``scale_bits`` out of range, or a vocabulary larger than ``2**(scale_bits - 4)``.
    """

    def __init__(self, lanes: int, vocab: int, scale_bits: int, cache: bool = True):
        if not isinstance(scale_bits, int) or not MIN_SCALE_BITS <= scale_bits <= MAX_SCALE_BITS:
            raise ValueError(f"scale_bits must be an int in [{MIN_SCALE_BITS}, "
                             f"{MAX_SCALE_BITS}], got {scale_bits!r}")
        M = 1 << scale_bits
        if not 1 <= vocab <= M >> 4:
            raise ValueError(f"vocabulary size {vocab} does not fit scale_bits={scale_bits}")
        self.M, self.V = M, vocab
        shares = CACHE_SHARES_64THS if cache else (0,)
        # Model shares, largest first, so that argmin's first-minimum rule prefers the model.
        self.model_shares = np.array([(M - vocab) - (M - vocab) * k // 64 for k in shares],
                                     dtype=np.int64)
        self.costs = np.zeros(len(shares), dtype=np.int64)
        self.counts = np.zeros(vocab, dtype=np.int64)
        self.seen = 0
        self._weights = np.empty((lanes, vocab), dtype=np.int64)
        self._totals = np.empty(lanes, dtype=np.int64)

    @property
    def cache_share(self) -> float:
        """The fraction of the next table given to the counts."""
        share = int(self.model_shares[int(np.argmin(self.costs))])
        return 0.0 if self.seen == 0 else 1.0 - share / (self.M - self.V)

    def tables(self, logits: torch.Tensor) -> torch.Tensor:
        """Cumulative tables ``(lanes, V + 1)`` (int64, leading zero) for one step's logits."""
        x = logits.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        if x.shape != self._weights.shape:
            raise ValueError(f"logits of shape {x.shape}, expected {self._weights.shape}")
        share = self.model_shares[int(np.argmin(self.costs))]
        out = np.empty((x.shape[0], self.V + 1), dtype=np.int64)
        kernel.mixed_rows(x, self.M, out, self._weights, self._totals, self.counts, self.seen,
                          share, np.float32(_INV_LN2), np.float32(_MIN_Y), _COEFFS)
        return torch.from_numpy(out).to(logits.device)

    def observe(self, symbols: torch.Tensor, active: torch.Tensor) -> None:
        """Record the step's coded ``symbols`` ``(lanes,)`` where ``active`` ``(lanes,)``."""
        self.seen = kernel.observe(
            self._weights, self._totals, symbols.to("cpu", torch.int64).numpy(),
            active.to("cpu", torch.bool).numpy(), self.counts, self.seen, self.M,
            self.model_shares, self.costs, _LOG_TABLE,
        )
