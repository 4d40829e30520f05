"""The hash of a lane's last ``k`` tokens, shared by the in-block models of :mod:`.cache_mix`."""

from __future__ import annotations

import numba as nb
import numpy as np

from .. import wide_vectors

wide_vectors.install()  # before the kernels below compile

_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(cache=True, nogil=True, inline="always")
def context_hash(hist, lane, t, k, order_index):  # pragma: no cover - compiled
    h = np.uint64(order_index + 1) * _HASH_MUL
    for i in range(t - k, t):
        h = (h ^ np.uint64(hist[lane, i] + 1)) * _HASH_MUL
    return h ^ (h >> np.uint64(29))


