"""512-bit vectors for this package's numba kernels, on CPUs that have them.

LLVM tunes code for Intel's server CPUs (and AMD's Zen 4) to prefer 256-bit vectors even where
AVX-512 exists: on the first AVX-512 Xeons, 512-bit instructions lowered the core's clock. The
language model's kernels (the portable engine's integer forward, the in-block tables) are long
loops of 64-bit integer and float32 arithmetic, and with 512-bit vectors a decoded 64 KiB block
took 10-15% less time on the Xeon where it was measured (``docs/benchmarks.md``, issue 12).
torch's int8 matrix products, which run beside them, use 512-bit instructions already.

The width changes no result, so frames and their decoding do not depend on it: the kernels
compute on integers, or with IEEE float operations element by element (numba compiles without
``fastmath``, so LLVM neither vectorizes a float sum, whose order would matter, nor fuses a
multiply and an add).

numba has no option for it: :func:`install` marks the functions of this package with LLVM's
``"prefer-vector-width"="512"`` attribute as numba lowers them, and leaves every other numba
function of the process as it was. It relies on a numba internal (``CPUContext.post_lowering``):
where that is missing, it does nothing and the kernels are compiled with numba's defaults.
Kernels loaded from numba's disk cache are whatever was compiled into it.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["ATTRIBUTE", "install"]

#: The LLVM function attribute given to this package's numba functions.
ATTRIBUTE = '"prefer-vector-width"="512"'
# numba's mangled names spell each part of the qualified name with its length first.
_PACKAGE = __name__.split(".")[0]
_MARK = f"{len(_PACKAGE)}{_PACKAGE}"
_lock = threading.Lock()
_installed = False


def _mark(module) -> None:
    """Give ``module``'s function definitions of this package :data:`ATTRIBUTE`."""
    for function in module.functions:
        if function.blocks and _MARK in function.name:
            # llvmlite's ``add`` takes only the names it lists; a string attribute in the set
            # is printed as given.
            set.add(function.attributes, ATTRIBUTE)


def install() -> bool:
    """Mark this package's numba functions for 512-bit vectors from now on (idempotent).

    Returns
    -------
    bool
        Whether the mark is in place (``False`` where numba's internals differ).
    """
    global _installed
    with _lock:
        if _installed:
            return True
        try:
            from numba.core import cpu

            lower_done = cpu.CPUContext.post_lowering
        except (ImportError, AttributeError):
            return False

        def post_lowering(self, mod, library):
            # This runs for every function numba compiles in the process, the user's too: a
            # numba or llvmlite whose internals differ only loses the mark, never a compile.
            with contextlib.suppress(Exception):
                _mark(mod)
            return lower_done(self, mod, library)

        cpu.CPUContext.post_lowering = post_lowering
        _installed = True
        return True
