"""The computation a block of the LLM codec replays: lane layout and model schedules.

Exactness rests on one rule (``docs/determinism.md``): compression replays, call for call, the
computation decompression performs. For a block of ``T`` tokens it is a pure function of the
codec's configuration and ``T``:

- the tokens are cut into ``lanes_used`` contiguous segments of ``S`` tokens (the last one
  shorter) by :func:`lane_layout`; all lanes advance in lock-step, one token per lane per model
  call, with batch shape ``(lanes_used, 1)``;
- every lane starts from the model's start token;
- :class:`RingSchedule` (the portable integer engine, and the lean float forward of
  Llama-family models): each lane's KV cache is a ring of ``context`` slots, token ``t`` sits
  at position ``t`` and attends to the latest ``context`` tokens, the oldest slot being
  overwritten in place;
- :class:`ReprefillSchedule` (``transformers``' own forward, any causal LM): when a lane's
  cache holds ``context`` positions it is dropped and rebuilt by one forward over the last
  ``context // 2`` inputs, again with the same shape on both sides;
- lanes past their segment's end keep receiving the start token, so shapes never change.

Nothing depends on how many blocks are coded together, so one block decoded alone (a range read,
one Zarr chunk) replays exactly what its encoder did.
"""

from __future__ import annotations

import numpy as np

from ..growth import capacity, grown

__all__ = ["MIN_LANE_TOKENS", "PREFILL_CHUNK", "PrefillSchedule", "ReprefillSchedule",
           "RingSchedule", "lane_layout", "step_active", "token_grid"]

#: Fewest tokens a lane gets before the schedule adds another lane: a lane starts without
#: context, so very short lanes cost ratio. 192 lets a 64 KiB block of prose (about 21,000
#: tokens) use 96 lanes.
MIN_LANE_TOKENS = 192
#: Positions the encoder's :class:`PrefillSchedule` computes per model call: a divisor of the
#: probe's steps (16 and 64), so that a block given up early costs no position past the probe.
PREFILL_CHUNK = 16


def lane_layout(tokens: int, lanes: int) -> tuple[int, int]:
    """``(lanes_used, steps)`` of the schedule for a block of ``tokens`` tokens."""
    if tokens == 0:
        return 0, 0
    used = max(1, min(lanes, tokens // MIN_LANE_TOKENS))
    steps = -(-tokens // used)
    used = -(-tokens // steps)  # drop lanes the rounding left empty
    return used, steps


def token_grid(ids: np.ndarray, used: int, steps: int, start_id: int):
    """``(tokens, active)``, each ``(used, steps)``: lane ``i`` codes row ``i``.

    Positions past the last token hold ``start_id`` and are inactive.
    """
    grid = np.full(used * steps, start_id, dtype=np.int64)
    grid[: len(ids)] = ids
    active = np.zeros(used * steps, dtype=bool)
    active[: len(ids)] = True
    return grid.reshape(used, steps), active.reshape(used, steps)


def step_active(count: int, used: int, steps: int, t: int) -> np.ndarray:
    """``(used,)`` bool: the lanes that code a token at step ``t`` (column ``t`` of
    :func:`token_grid`'s ``active``), without building the grid."""
    return np.arange(used, dtype=np.int64) * steps + t < count


class _Inputs:
    """The ``(lanes, steps)`` grid of model inputs, the start token first; its columns are
    allocated as steps are fed (:mod:`llm_codecs.growth`)."""

    def __init__(self, loaded, lanes: int, steps: int, start_id: int):
        import torch

        self._steps, self._start_id = max(steps, 1), start_id
        self.inputs = torch.full((lanes, capacity(1, self._steps)), start_id, dtype=torch.int64,
                                 device=loaded.device)

    def feed(self, t: int, ids: np.ndarray) -> None:
        """Set the inputs of step ``t`` (the tokens of step ``t - 1``, ``(lanes,)``)."""
        import torch

        self.inputs = grown(self.inputs, 1, t + 1, self._steps, self._start_id)
        self.inputs[:, t] = torch.from_numpy(ids).to(self.inputs.device)


class RingSchedule(_Inputs):
    """A ring KV cache of ``context`` slots per lane (module docstring), run by the lean float
    forward (``engine="lean"``) or the portable integer one (``engine`` its version, one of
    :data:`llm_codecs.portable.ENGINES`)."""

    def __init__(self, loaded, lanes: int, steps: int, context: int, start_id: int,
                 engine: str = "lean", parts: int = 1, hold=None):
        super().__init__(loaded, lanes, steps, start_id)
        self._slots = max(1, min(context, steps))
        self._logits = None
        self._vocab = loaded.vocab_size
        if engine != "lean":
            from ..portable import integer_step

            self._step = integer_step(loaded.model, lanes, self._slots, steps, loaded.device,
                                      engine, parts, hold)
        else:
            from ..models.llama_step import LlamaStep

            self._step = LlamaStep(loaded.model, lanes, self._slots, positions=steps)

    def logits(self, t: int):
        """Logits ``(lanes, V)`` predicting token ``t``; ``inputs[:, :t + 1]`` must be set.
        On the CPU's integer forward they are valid until the next call (written into one
        buffer: the tables read them before then)."""
        slot, filled = t % self._slots, min(t + 1, self._slots)
        step_into = getattr(self._step, "step_into", None)
        if step_into is None:
            return self._step.step(self.inputs[:, t], t, slot=slot, filled=filled)
        import torch

        if self._logits is None:
            self._logits = np.empty((self.inputs.shape[0], self._vocab), dtype=np.float32)
        step_into(self.inputs[:, t], t, slot, filled, self._logits)
        return torch.from_numpy(self._logits)


class PrefillSchedule:
    """:class:`RingSchedule`'s predictions for an encoder, :data:`PREFILL_CHUNK` positions of
    every lane per model call (the portable engine on the CPU,
    :class:`~llm_codecs.portable.cpu_prefill.CpuIntegerPrefill`).

    The encoder knows every input before it codes: ``inputs`` ``(lanes, steps)`` are the
    start token, then each lane's tokens (the start token past the end), exactly what
    :meth:`RingSchedule.feed` would be given. The logits are :class:`RingSchedule`'s, integer
    for integer (same window, same positions), so the payload is the same bytes.
    """

    def __init__(self, loaded, inputs: np.ndarray, context: int, engine: str, parts: int = 1,
                 hold=None):
        from ..portable import integer_prefill

        lanes, steps = inputs.shape
        self._inputs = inputs
        self._chunk = PREFILL_CHUNK
        window = max(1, min(context, steps))
        self._prefill = integer_prefill(loaded.model, lanes, window, self._chunk, engine, parts,
                                        hold)
        self._first = -1
        # One step's logits at a time (the tables read them before the next step asks).
        self._logits = np.empty((lanes, loaded.vocab_size), dtype=np.float32)

    def logits(self, t: int):
        """Logits ``(lanes, V)`` predicting token ``t`` (``t`` in order, from 0), valid until
        the next call."""
        import torch

        first = t - t % self._chunk
        if first != self._first:
            ids = self._inputs[:, first : first + self._chunk]
            if ids.shape[1] < self._chunk:  # the last call: positions past the end are unused
                ids = np.pad(ids, ((0, 0), (0, self._chunk - ids.shape[1])), mode="edge")
            self._prefill.run_hidden(np.ascontiguousarray(ids), first)
            self._first = first
        self._prefill.logits_at(t - first, self._logits)
        return torch.from_numpy(self._logits)

    def feed(self, t: int, ids: np.ndarray) -> None:
        """Check that step ``t``'s inputs are those known in advance (they always are)."""
        if not np.array_equal(self._inputs[:, t], ids):
            raise AssertionError(f"step {t}: the encoder's inputs changed")


class ReprefillSchedule(_Inputs):
    """``transformers``' forward and cache, re-prefilled at ``context`` (module docstring)."""

    def __init__(self, loaded, lanes: int, steps: int, context: int, start_id: int):
        import inspect

        super().__init__(loaded, lanes, steps, start_id)
        self._model = loaded.torch_model()
        self._context = context
        self._keep = max(1, context // 2)
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; accept both.
        params = inspect.signature(self._model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._cache = None
        self._cached = 0

    def logits(self, t: int):
        """Float logits ``(lanes, V)`` predicting token ``t``; ``inputs[:, :t + 1]`` must be set."""
        if self._cache is None or self._cached >= self._context:
            begin = max(0, t + 1 - self._keep) if self._cache is not None else t
            out = self._model(self.inputs[:, begin : t + 1], use_cache=True, logits_to_keep=1)
            self._cached = t + 1 - begin
        else:
            out = self._model(self.inputs[:, t : t + 1], use_cache=True, logits_to_keep=1,
                              **{self._cache_kw: self._cache})
            self._cached += 1
        cache = out.get("cache")
        self._cache = cache if cache is not None else out.get("past_key_values")
        return out.logits[:, -1, :]
