"""Frequency tables that adapt the model to the block being coded.

A small model is badly calibrated on text unlike its training data (WikiText's ``@-@`` markup,
JSON keys, CSV columns, log lines) and knows nothing of what a block repeats (names, phrases,
records). Three cheap in-block models, updated by encoder and decoder alike from the tokens
already coded, correct both:

- a **unigram cache**: the model's table is mixed with the counts of the tokens seen so far in
  the block, by one of a few fixed shares - the share that would have coded the block so far in
  the fewest bits (follow the leader; ties go to the smaller cache share);
- **match models** (:mod:`._match_kernel`): for context lengths :data:`MATCH_ORDERS`, the token
  that followed the lane's last ``k`` tokens the previous time they occurred in the block gets
  the probability with which such predictions have come true so far;
- **successor counts** (:mod:`._successor_kernel`): for context lengths
  :data:`SUCCESSOR_ORDERS`, the distribution of the tokens that followed the lane's last ``k``
  tokens in the block, mixed in with a share chosen like the cache's.

Neither choice is transmitted. Everything after the model's float32 logits is integer or plain
IEEE float64 arithmetic in a fixed order (see :mod:`.quantize`); with nothing seen yet, or with
``cache=False``, the tables are exactly :func:`.quantize`'s.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import compile_helper
from ..growth import grown
from ..parts import part_bounds, run_parts
from . import _match_kernel as match
from . import _quantize_kernel as kernel
from . import _successor_kernel as successor
from .quantize import _EXP2_COEFFS, _INV_LN2, _MIN_Y
from .scale import check_scale_bits

__all__ = ["CACHE_SHARES_64THS", "MATCH_ORDERS", "SUCCESSOR_ORDERS", "SUCCESSOR_SHARES",
           "TokenCacheMixer"]

#: Cache shares tried, in 64ths of the table (the model keeps the rest).
CACHE_SHARES_64THS = (0, 1, 2, 4, 8, 16, 32, 48)
# log2(1 + i / 4096) in 1/65536 bits: the selection's integer cost (rounding makes it immune to
# last-ulp differences between math libraries).
_LOG_TABLE = np.round(np.log2(1.0 + np.arange(4096) / 4096.0) * 65536.0).astype(np.int64)
_COEFFS = np.array(_EXP2_COEFFS, dtype=np.float32)
#: Context lengths (in tokens) of the match models, applied in this order.
MATCH_ORDERS = (1, 2, 3, 4, 6, 8, 12, 16, 24)
# Hash slots per order: a power of two well above a 64 KiB block's ~20,000 tokens.
_MATCH_SLOTS = 1 << 16
#: Context lengths of the successor-count models, applied in this order after the match models.
SUCCESSOR_ORDERS = (1, 2, 3)
#: Shares of the successor distribution tried (times the evidence weight ``n / (n + 16)``).
SUCCESSOR_SHARES = (0.0, 0.125, 0.25, 0.5, 0.75)
_SUCCESSOR_SLOTS = 1 << 15


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
        Adapt to the block (default); ``False`` gives exactly :func:`.quantize`'s tables.
    steps : int
        Most steps that will be coded (the match models keep each lane's history).
    parts : int
        Threads a step's rows are computed in (:mod:`llm_codecs.parts`); the tables are the
        same whatever it is.

    Raises
    ------
    ValueError
        ``scale_bits`` out of range, or a vocabulary larger than ``2**(scale_bits - 4)``.
    """

    def __init__(self, lanes: int, vocab: int, scale_bits: int, cache: bool = True,
                 steps: int = 0, parts: int = 1):
        M = 1 << check_scale_bits(scale_bits)
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
        self._freqs = np.empty((lanes, vocab), dtype=np.int64)
        self._t = 0
        # Each lane's history grows with the steps coded (a decoder's step count comes from a
        # payload that has not proven it yet), up to ``steps``.
        self._steps = max(steps, 1)
        self._hist = np.zeros((lanes, 0), dtype=np.int64)
        self._match = match.match_state(
            np.array(MATCH_ORDERS if cache else (), dtype=np.int64), lanes, _MATCH_SLOTS)
        s_orders = np.array(SUCCESSOR_ORDERS if cache else (), dtype=np.int64)
        self._succ = successor.successor_state(
            s_orders, np.array(SUCCESSOR_SHARES, dtype=np.float64), lanes,
            _SUCCESSOR_SLOTS if len(s_orders) else 1)
        self._last = None
        # Rows are independent within a step (llm_codecs.parts): parts of them run at once.
        self._bounds = part_bounds(lanes, parts)

    def tables(self, logits: torch.Tensor) -> np.ndarray:
        """Cumulative tables ``(lanes, V + 1)`` (int64, leading zero) for one step's logits.

        The tables live in host memory (numpy), where the coder reads them, whatever the
        device of ``logits``.
        """
        compile_helper.wait_for("tables")  # on a fresh install, another process may compile them
        x = logits.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        if x.shape != self._weights.shape:
            raise ValueError(f"logits of shape {x.shape}, expected {self._weights.shape}")
        if self._t >= self._steps:
            raise ValueError(f"more steps than the {self._steps} this mixer was made for")
        self._hist = grown(self._hist, 1, self._t + 1, self._steps)
        share = self.model_shares[int(np.argmin(self.costs))]
        successor.choose_shares(self._succ.costs, self._succ.choice)
        out = np.empty((x.shape[0], self.V + 1), dtype=np.int64)

        def rows(first: int, stop: int) -> None:
            kernel.mixed_rows(x[first:stop], self.M, self._freqs[first:stop],
                              self._weights[first:stop], self._totals[first:stop], self.counts,
                              self.seen, share, np.float32(_INV_LN2), np.float32(_MIN_Y),
                              _COEFFS)
            match.adjust_rows(self._freqs, out, self.M, self._hist, self._t, self._match,
                              self._succ, first, stop)

        run_parts(rows, self._bounds)
        self._last = out
        return out

    def observe(self, symbols: np.ndarray, active: np.ndarray) -> None:
        """Record the step's coded ``symbols`` ``(lanes,)`` where ``active`` ``(lanes,)``."""
        symbols = np.ascontiguousarray(symbols, dtype=np.int64)
        active = np.ascontiguousarray(active, dtype=np.bool_)
        if self._last is None:
            raise ValueError("observe() must follow tables() for the same step")
        self.seen = kernel.observe(self._weights, self._totals, symbols, active, self.counts,
                                   self.seen, self.M, self.model_shares, self.costs, _LOG_TABLE)
        successor.observe_successors(self._hist, self._t, symbols, active, self._last, self.M,
                                     self._succ, _LOG_TABLE)
        match.observe_matches(self._hist, self._t, symbols, active, self._match)
        self._t += 1
        self._last = None
