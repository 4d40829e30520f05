"""The portable engine: a Llama-family model's forward in exact integer arithmetic.

Its predictions are a pure function of the weights and the tokens, on every CPU instruction
set, thread count, torch version and on CUDA, so the ``llm`` codec's frames made with it
(``numerics="portable"``, the default for the models it supports) decode on any machine.

- :mod:`.arith`: integer primitives and the exactly specified tables (``exp2``, rotary);
- :mod:`.weights`: the deterministic int8 quantization of a loaded model;
- :mod:`.step`: the forward in torch integer operations (any device; the reference);
- :mod:`.cpu_step` and :mod:`._kernels`: the same arithmetic fused in numba for the CPU;
- :mod:`.cpu_prefill`: the same values for many positions per call, for an encoder.

``docs/format.md`` specifies the arithmetic; a change to it is a new :data:`ENGINE` version,
and the versions before it keep decoding.
"""

from __future__ import annotations

from typing import Any

from .weights import portable_support

__all__ = ["ENGINE", "ENGINES", "integer_prefill", "integer_step", "portable_support"]

#: Every engine this version can decode, oldest first: ``int8-v2`` caches keys and values as
#: 8-bit mantissas with an exponent per vector, where ``int8-v1`` cached the 25-bit values.
ENGINES = ("int8-v1", "int8-v2")
#: The engine this version writes, as recorded in a frame's fingerprint.
ENGINE = ENGINES[-1]


def integer_step(model: Any, lanes: int, slots: int, positions: int, device: str = "cpu",
                 engine: str = ENGINE, parts: int = 1, hold=None):
    """The integer forward of ``model`` for ``lanes`` sequences on ``device``, in the
    arithmetic of ``engine`` (one of :data:`ENGINES`).

    The numba path on the CPU, the torch-operations path elsewhere; both compute the same
    values. On the CPU, ``parts`` > 1 runs the lanes in that many threads
    (:class:`~llm_codecs.portable.lane_parts.LaneParts`, each in the context ``hold()``): the
    same values again.
    """
    from .weights import integer_model

    weights = integer_model(model, device)
    if str(device) == "cpu":
        from .cpu_step import CpuIntegerStep
        from .lane_parts import LaneParts

        if parts > 1:
            return LaneParts(lambda n: CpuIntegerStep(weights, n, slots, positions, engine),
                             lanes, parts, hold)
        return CpuIntegerStep(weights, lanes, slots, positions, engine)
    from .step import IntegerLlamaStep

    return IntegerLlamaStep(weights, lanes, slots, positions, engine)


def integer_prefill(model: Any, lanes: int, window: int, chunk: int, engine: str = ENGINE,
                    parts: int = 1, hold=None):
    """The integer forward of ``model`` on the CPU, ``chunk`` positions of ``lanes`` sequences
    per call (:class:`~llm_codecs.portable.cpu_prefill.CpuIntegerPrefill`): the values
    :func:`integer_step` gives position by position, for an encoder that knows every input.
    ``parts`` and ``hold`` as :func:`integer_step`'s."""
    from .cpu_prefill import CpuIntegerPrefill
    from .lane_parts import LaneParts
    from .weights import integer_model

    weights = integer_model(model, "cpu")
    if parts > 1:
        return LaneParts(lambda n: CpuIntegerPrefill(weights, n, window, chunk, engine), lanes,
                         parts, hold)
    return CpuIntegerPrefill(weights, lanes, window, chunk, engine)
