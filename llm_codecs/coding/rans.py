"""Vectorized rANS64: many independent streams ("lanes") coded in lock-step with torch int64.

The design is ryg_rans ``rans64.h``: the state ``x`` lives in ``[L, L * 2**32)`` with
``L = 2**31`` (so it fits a *signed* int64), the coder moves 32-bit words, ``scale_bits <= 31``,
the encoder consumes symbols in reverse order and emits at most one word per symbol, the decoder
runs forward and reads at most one word per symbol. One step is therefore a handful of masked
elementwise tensor ops over all lanes, on whatever device the tensors live on; the per-step
methods never call ``.item()`` or otherwise wait for the device.

Byte layout of one lane's stream (what :meth:`RansEncoder.finish` returns and
:class:`RansDecoder` reads)::

    S bytes LE  final encoder state (the decoder's initial state), in [2**31, 2**63)
    u32 LE      words, in the order the decoder reads them (the reverse of the emission order)

where ``S`` is 5, 6, 7 or 8: the fewest bytes that hold the state, but at least 5. A stream is
``S + 4 * n_words`` bytes, so ``S = 5 + (len - 5) % 4`` is implied by its length, and the state
must use all ``S`` bytes (its top byte is non-zero when ``S > 5``): one encoding per state. This
saves 1.6 bytes per stream on average against a fixed u64. A lane that coded no symbol is the
5 bytes of ``L``. The encoder starts from ``x = L``; the decoder must end at exactly ``L`` with
every word consumed, which is how damage to the payload is detected
(:meth:`RansDecoder.check_finished`).

Typical use, with ``cum = cumulative(freqs)`` per step (see :mod:`.quantize`)::

    enc = RansEncoder(lanes)
    for t in reversed(range(T)):                       # encoder runs backwards
        start, freq = symbol_bounds(cum[t], symbols[t])
        enc.encode_step(start, freq, scale_bits, active[t])
    streams = enc.finish()

    dec = RansDecoder(streams)
    for t in range(T):
        slot = dec.peek(scale_bits)
        sym, start, freq = find_symbols(cum[t], slot)
        dec.advance(start, freq, scale_bits, active[t])
    dec.check_finished()
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import CorruptDataError

__all__ = [
    "RANS_L",
    "RansDecoder",
    "RansEncoder",
    "find_symbols",
    "symbol_bounds",
]

RANS_L = 1 << 31
"""Lower bound of the normalized state interval ``[L, L * 2**32)``."""

_WORD_MASK = (1 << 32) - 1
_CHUNK_STEPS = 4096


def _check_scale_bits(scale_bits: int) -> None:
    if not isinstance(scale_bits, int) or not 1 <= scale_bits <= 31:
        raise ValueError(f"scale_bits must be an int in [1, 31], got {scale_bits!r}")


def symbol_bounds(cum_freqs: torch.Tensor, symbols: torch.Tensor) -> tuple[torch.Tensor,
                                                                            torch.Tensor]:
    """Cumulative start and frequency of one symbol per lane.

    Parameters
    ----------
    cum_freqs : torch.Tensor
        int64 ``(lanes, V + 1)`` cumulative tables with a leading zero.
    symbols : torch.Tensor
        int64 ``(lanes,)`` symbol indices in ``[0, V)``.

    Returns
    -------
    start, freq : torch.Tensor
        int64 ``(lanes,)`` each.
    """
    idx = symbols.to(torch.int64).unsqueeze(1)
    start = cum_freqs.gather(1, idx)
    end = cum_freqs.gather(1, idx + 1)
    return start.squeeze(1), (end - start).squeeze(1)


def find_symbols(cum_freqs: torch.Tensor, slot: torch.Tensor) -> tuple[torch.Tensor,
                                                                        torch.Tensor,
                                                                        torch.Tensor]:
    """The symbol whose interval holds ``slot``, per lane: ``cum[s] <= slot < cum[s + 1]``.

    Parameters
    ----------
    cum_freqs : torch.Tensor
        int64 ``(lanes, V + 1)`` cumulative tables with a leading zero, rows summing to
        ``2**scale_bits``.
    slot : torch.Tensor
        int64 ``(lanes,)`` from :meth:`RansDecoder.peek`.

    Returns
    -------
    symbols, start, freq : torch.Tensor
        int64 ``(lanes,)`` each: the decoded symbol, and the ``start``/``freq`` to pass to
        :meth:`RansDecoder.advance`. Zero-frequency symbols are never returned.
    """
    V = cum_freqs.shape[1] - 1
    s = torch.searchsorted(cum_freqs, slot.to(torch.int64).unsqueeze(1), right=True) - 1
    # Only a malformed table can put s outside [0, V); clamping keeps the gathers in bounds.
    s = s.clamp_(0, V - 1)
    start = cum_freqs.gather(1, s)
    freq = cum_freqs.gather(1, s + 1) - start
    return s.squeeze(1), start.squeeze(1), freq.squeeze(1)


class RansEncoder:
    """Lock-step rANS64 encoder for ``lanes`` independent streams.

    Symbols must be pushed in *reverse* order (last symbol first). Lanes of different lengths
    are handled with ``active_mask``: a lane skips the steps where it is ``False``, so a lane of
    length ``n`` can be active on the last ``n`` pushed steps (its first ``n`` symbols, reversed),
    or any other subset - the decoder must use the same masks in forward order.

    Parameters
    ----------
    lanes : int
        Number of streams.
    device : torch.device or str, optional
        Device of the state and word buffers (default CPU). Step inputs must be on it.
    """

    def __init__(self, lanes: int, device: torch.device | str | None = None) -> None:
        if lanes < 0:
            raise ValueError(f"lanes must be >= 0, got {lanes}")
        self.lanes = lanes
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._x = torch.full((lanes,), RANS_L, dtype=torch.int64, device=self.device)
        # Step-major chunk buffers: writing one contiguous row per step is the cheapest masked
        # store; the chunk is compacted to the host (one sync per chunk, not per step).
        self._words = torch.empty((_CHUNK_STEPS, lanes), dtype=torch.int64, device=self.device)
        self._emit = torch.empty((_CHUNK_STEPS, lanes), dtype=torch.bool, device=self.device)
        self._n = 0  # rows used in the current chunk
        self._segments: list[tuple[np.ndarray, np.ndarray]] = []  # (lane-major words, counts)
        self._finished = False

    def encode_step(self, start: torch.Tensor, freq: torch.Tensor, scale_bits: int,
                    active_mask: torch.Tensor | None = None) -> None:
        """Push one symbol per lane (in reverse symbol order).

        Parameters
        ----------
        start, freq : torch.Tensor
            int64 ``(lanes,)``: the symbol's cumulative start and frequency in a table summing to
            ``2**scale_bits``; ``freq >= 1`` and ``start + freq <= 2**scale_bits`` on active lanes
            (inactive lanes may hold anything).
        scale_bits : int
            Table precision, ``1 <= scale_bits <= 31``; the same for all lanes of a step.
        active_mask : torch.Tensor, optional
            bool ``(lanes,)``; lanes where it is ``False`` are left untouched. Default: all.
        """
        if self._finished:
            raise RuntimeError("encoder already finished")
        _check_scale_bits(scale_bits)
        x = self._x
        if active_mask is not None:
            # Inactive lanes may carry freq 0, which would raise in integer division on CPU.
            freq = torch.where(active_mask, freq, 1)
        # Renormalize: x >= ((L >> sb) << 32) * freq, written as a shift so that
        # freq == 2**sb (a one-symbol table) cannot overflow the signed product.
        emit = (x >> (63 - scale_bits)) >= freq
        if active_mask is not None:
            emit &= active_mask
        self._words[self._n] = x & _WORD_MASK
        self._emit[self._n] = emit
        x = torch.where(emit, x >> 32, x)
        q = torch.div(x, freq, rounding_mode="floor")
        new = (q << scale_bits) + (x - q * freq) + start
        self._x = new if active_mask is None else torch.where(active_mask, new, x)
        self._n += 1
        if self._n == _CHUNK_STEPS:
            self._compact()

    def _compact(self) -> None:
        if self._n == 0:
            return
        words = self._words[: self._n].T
        emit = self._emit[: self._n].T
        # Boolean indexing of the lane-major view flattens lane by lane, in emission order.
        flat = words[emit].cpu().numpy().astype(np.uint32)
        counts = emit.sum(dim=1).cpu().numpy()
        self._segments.append((flat, counts))
        self._n = 0

    def finish(self) -> list[bytes]:
        """Flush every lane and return its stream.

        Returns
        -------
        list of bytes
            One stream per lane, in the layout of the module docstring. The encoder cannot be
            used afterwards.
        """
        if self._finished:
            raise RuntimeError("encoder already finished")
        self._compact()
        self._finished = True
        states = self._x.cpu().numpy().astype("<u8")
        per_lane: list[list[np.ndarray]] = [[] for _ in range(self.lanes)]
        for flat, counts in self._segments:
            for lane, part in enumerate(np.split(flat, np.cumsum(counts)[:-1])):
                if part.size:
                    per_lane[lane].append(part)
        out = []
        for lane in range(self.lanes):
            parts = per_lane[lane]
            words = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint32)
            # The decoder reads the last emitted word first.
            out.append(state_bytes(int(states[lane])) + words[::-1].astype("<u4").tobytes())
        self._segments = []
        return out


def state_bytes(x: int) -> bytes:
    """The final state ``x`` in the fewest little-endian bytes, at least 5 (module docstring)."""
    return x.to_bytes(max(5, (x.bit_length() + 7) // 8), "little")


def parse_state(stream: bytes) -> tuple[int | None, int]:
    """``(state, header_bytes)`` of a stream; state None when malformed (short, out of range,
    or not minimally encoded)."""
    if len(stream) < 5:
        return None, len(stream)
    head = 5 + (len(stream) - 5) % 4
    x = int.from_bytes(stream[:head], "little")
    if not RANS_L <= x < 1 << 63 or len(state_bytes(x)) != head:
        return None, head
    return x, head


class RansDecoder:
    """Lock-step rANS64 decoder over ``len(streams)`` lanes.

    Malformed streams never raise here or in the per-step methods: a stream shorter than 5 bytes,
    whose initial state is out of range or not minimally encoded, or that is read past its end is
    flagged, the
    lane keeps running on a valid state (reading zeros), and :meth:`check_finished` reports it.

    Parameters
    ----------
    streams : sequence of bytes
        One stream per lane, as produced by :meth:`RansEncoder.finish`.
    device : torch.device or str, optional
        Device of the state and words (default CPU).
    """

    def __init__(self, streams: Sequence[bytes], device: torch.device | str | None = None) -> None:
        self.lanes = len(streams)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        lanes = self.lanes
        states = np.full(lanes, RANS_L, dtype=np.int64)
        bad = np.zeros(lanes, dtype=bool)
        counts = np.zeros(lanes, dtype=np.int64)
        parts = []
        for i, s in enumerate(streams):
            s = bytes(s)
            state, head = parse_state(s)
            if state is None:
                bad[i] = True
            else:
                states[i] = state
            if len(s) >= 5:  # (len - head) is then a multiple of 4
                w = np.frombuffer(s, dtype="<u4", offset=head).astype(np.int64)
                counts[i] = w.size
                parts.append(w)
        # One flat word array with a trailing zero: out-of-range reads are redirected to it.
        flat = np.concatenate([*parts, np.zeros(1, dtype=np.int64)])
        ends = np.cumsum(counts)
        self._words = torch.from_numpy(flat).to(self.device)
        self._sentinel = int(flat.size - 1)
        self._pos = torch.from_numpy(ends - counts).to(self.device)
        self._end = torch.from_numpy(ends).to(self.device)
        self._x = torch.from_numpy(states).to(self.device)
        self._bad = torch.from_numpy(bad).to(self.device)

    def peek(self, scale_bits: int) -> torch.Tensor:
        """The current slot of every lane, in ``[0, 2**scale_bits)``.

        Parameters
        ----------
        scale_bits : int
            Precision of this step's tables.

        Returns
        -------
        torch.Tensor
            int64 ``(lanes,)``; look the symbol up with :func:`find_symbols`.
        """
        _check_scale_bits(scale_bits)
        return self._x & ((1 << scale_bits) - 1)

    def advance(self, start: torch.Tensor, freq: torch.Tensor, scale_bits: int,
                active_mask: torch.Tensor | None = None) -> None:
        """Consume the symbols found for the current slots.

        Parameters
        ----------
        start, freq : torch.Tensor
            int64 ``(lanes,)``, as returned by :func:`find_symbols` for this step's slots.
        scale_bits : int
            The value given to :meth:`peek`.
        active_mask : torch.Tensor, optional
            bool ``(lanes,)``, the mask the encoder used for this step. Default: all lanes.
        """
        _check_scale_bits(scale_bits)
        x = self._x
        new = freq * (x >> scale_bits) + (x & ((1 << scale_bits) - 1)) - start
        need = new < RANS_L
        if active_mask is not None:
            need &= active_mask
        pos = self._pos
        in_range = pos < self._end
        word = self._words[torch.where(in_range, pos, self._sentinel)]
        self._bad |= need & ~in_range
        new = torch.where(need, (new << 32) | word, new)
        self._pos = pos + need
        self._x = new if active_mask is None else torch.where(active_mask, new, x)

    def lanes_ok(self) -> torch.Tensor:
        """bool ``(lanes,)``: the lanes that decoded cleanly so far and are exactly finished.

        Only meaningful after the last step; does not synchronize by itself.
        """
        return ~self._bad & (self._pos == self._end) & (self._x == RANS_L)

    def check_finished(self) -> None:
        """Verify that every lane consumed its stream exactly and returned to the initial state.

        Raises
        ------
        CorruptDataError
            Naming the damaged lanes, if any stream was malformed, over-read, not fully consumed,
            or ended in a state other than ``L``.
        """
        ok = self.lanes_ok().cpu()
        if not bool(ok.all()):
            lanes = torch.nonzero(~ok).flatten().tolist()
            shown = ", ".join(map(str, lanes[:10])) + (" ..." if len(lanes) > 10 else "")
            raise CorruptDataError(f"rANS stream check failed on {len(lanes)} lane(s): {shown}")
