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

    Blocked so the inner loop runs over independent outputs (vectorisable) while every output still
    accumulates its terms in the order k = 0, 1, …: the same operations as the live dot product.
    """
    n = logclose.shape[0]
    L = weights.shape[0]
    first = L - 1
    for t in range(min(first, n)):
        out[t] = np.nan
    block = 2048
    acc = np.empty(block)
    for b0 in range(first, n, block):
        b1 = min(b0 + block, n)
        m = b1 - b0
        for j in range(m):
            acc[j] = 0.0
        for k in range(L):
            w = weights[k]
            off = b0 - k
            for j in range(m):
                acc[j] += w * logclose[off + j]
        for j in range(m):
            out[b0 + j] = acc[j]
