"""Fixed-width-window fractional differentiation (labeling.md §8).

``X̃_t = Σ_{k=0}^{l*-1} w_k · log(C_{t-k})`` with ``w_0 = 1``, ``w_k = -w_{k-1} (d - k + 1) / k``, keeping
weights until the first ``|w_k| < τ``. A FIR filter is window-pure: the live kernel
(:func:`tickwise.core.features.kernels.step`) sums the same terms in the same order (k = 0 first) from
its ring buffer, so live equals batch bit for bit. The first ``l* - 1`` bars have no value.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def ffd_weights(d: float, tau: float) -> np.ndarray:
    """Weights ``w_0 … w_{l*-1}`` (the first weight with ``|w_k| < tau`` is not kept)."""
    weights = [1.0]
    k = 1
    while True:
        w = -weights[-1] * (d - k + 1) / k
        if abs(w) < tau:
            break
        weights.append(w)
        k += 1
    return np.asarray(weights, dtype=np.float64)


@njit(cache=True)
def ffd_batch(logclose: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """Write FFD of ``logclose`` into ``out`` (NaN for the first ``len(weights) - 1`` bars).

    Register-tiled: eight consecutive outputs accumulate side by side in registers, while each of them
    still sums its terms in the order k = 0, 1, …, i.e. the same operations as the live dot product.
    Indices are cast to unsigned so numba emits no negative-index wraparound branch in the inner loop.
    """
    n = logclose.shape[0]
    L = weights.shape[0]
    first = L - 1
    x = logclose
    for t in range(min(first, n)):
        out[t] = np.nan
    t = first
    while t + 8 <= n:
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for k in range(L):
            w = weights[k]
            b = t - k
            a0 += w * x[np.uintp(b)]
            a1 += w * x[np.uintp(b + 1)]
            a2 += w * x[np.uintp(b + 2)]
            a3 += w * x[np.uintp(b + 3)]
            a4 += w * x[np.uintp(b + 4)]
            a5 += w * x[np.uintp(b + 5)]
            a6 += w * x[np.uintp(b + 6)]
            a7 += w * x[np.uintp(b + 7)]
        out[t] = a0
        out[t + 1] = a1
        out[t + 2] = a2
        out[t + 3] = a3
        out[t + 4] = a4
        out[t + 5] = a5
        out[t + 6] = a6
        out[t + 7] = a7
        t += 8
    while t < n:
        a = 0.0
        for k in range(L):
            a += weights[k] * x[t - k]
        out[t] = a
        t += 1
