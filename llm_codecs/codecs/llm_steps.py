"""The one step loop both directions of the LLM codec run.

At every step the schedule predicts, the in-block models turn the prediction into integer
tables, and a *side* codes the step's symbols: the encoder's side knows them and records their
intervals, the decoder's side reads them from the rANS stream. Everything else - the tables,
what the in-block models observe, what the model is fed next - is the same code in both
directions, so they cannot drift apart (as constriction separates entropy models from coders).
"""

from __future__ import annotations

import numpy as np

from ..coding import rans
from ..growth import grown
from .llm_schedule import step_active

__all__ = ["DecodingSide", "EncodingSide", "run_steps"]


class EncodingSide:
    """Knows every symbol (``tokens``, ``(lanes, steps)``); records what the coder needs."""

    def __init__(self, tokens: np.ndarray):
        self.tokens = tokens
        steps, lanes = tokens.shape[1], tokens.shape[0]
        # Step-major, as the decoder meets the symbols.
        self.starts = np.empty((steps, lanes), dtype=np.int64)
        self.freqs = np.empty_like(self.starts)

    def code(self, t: int, cum: np.ndarray, active: np.ndarray) -> np.ndarray:
        """The step's symbols; their intervals in ``cum`` are kept for :meth:`stream`."""
        self.starts[t], self.freqs[t] = rans.symbol_bounds(cum, self.tokens[:, t])
        return self.tokens[:, t]

    def ideal_bits(self, start: int, stop: int, active: np.ndarray,
                   scale_bits: int) -> tuple[float, int]:
        """Ideal code length (bits) of the symbols of steps ``start .. stop - 1``, and their
        count."""
        coded = active[:, start:stop].T
        freqs = self.freqs[start:stop][coded].astype(np.float64)
        return float((scale_bits - np.log2(freqs)).sum()), int(coded.sum())

    def stream(self, active: np.ndarray, scale_bits: int) -> tuple[bytes, float]:
        """The rANS stream of the active symbols, and their ideal code length in bits."""
        coded = active.T
        ideal = float((scale_bits - np.log2(self.freqs[coded].astype(np.float64))).sum())
        return rans.encode(self.starts[coded], self.freqs[coded], scale_bits), ideal


class DecodingSide:
    """Reads every step's symbols from a rANS stream."""

    def __init__(self, stream: bytes, scale_bits: int):
        self._decoder = rans.RansDecoder(stream)
        self._scale_bits = scale_bits

    def code(self, t: int, cum: np.ndarray, active: np.ndarray) -> np.ndarray:
        """The step's symbols, decoded (inactive lanes' entries are unspecified)."""
        return self._decoder.decode_step(cum, active, self._scale_bits)

    def finish(self) -> None:
        """Check the stream ended exactly (raises :class:`~llm_codecs.CorruptDataError`)."""
        self._decoder.check_finished()


def run_steps(schedule, mixer, count: int, lanes: int, steps: int, start_id: int,
              side, checkpoints=None) -> np.ndarray | None:
    """Run every step of a block of ``count`` tokens; return its ``(lanes, steps)`` tokens.

    Lane ``i`` codes tokens ``i * steps ..`` (:func:`~.llm_schedule.lane_layout`); positions
    past the last token hold ``start_id``. The token grid grows with the steps run
    (:mod:`llm_codecs.growth`): a decoder whose stream fails early never holds the grid its
    payload declared.

    Parameters
    ----------
    schedule : RingSchedule or ReprefillSchedule
        Predicts each step (:mod:`.llm_schedule`).
    mixer : TokenCacheMixer
        Turns predictions into tables and learns from the coded symbols.
    count, lanes, steps : int
        Tokens of the block and its layout, as :func:`~.llm_schedule.lane_layout` gives them.
    start_id : int
        What an inactive position holds (and what the model is fed there).
    side : EncodingSide or DecodingSide
        Writes or reads each step's symbols.
    checkpoints : dict of int to callable, optional
        The encoder's chances to give up: before step ``t``, ``checkpoints[t]()`` is called
        if there is one, and the run stops (returning None) if it returns False. They change
        nothing in what is coded when the run goes on, so the decoder never needs them.
    """
    tokens = np.empty((lanes, 0), dtype=np.int64)
    for t in range(steps):
        if checkpoints and t in checkpoints and not checkpoints[t]():
            return None
        tokens = grown(tokens, 1, t + 1, steps)
        active = step_active(count, lanes, steps, t)
        cum = mixer.tables(schedule.logits(t))
        symbols = side.code(t, cum, active)
        mixer.observe(symbols, active)
        tokens[:, t] = np.where(active, symbols, start_id)
        if t + 1 < steps:
            schedule.feed(t + 1, tokens[:, t])
    return tokens[:, :steps]
