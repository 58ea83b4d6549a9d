"""Meta-labels and AFML bet sizing (labeling.md §6)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_erf = np.frompyfunc(math.erf, 1, 1)


def meta_labels(ret: npt.ArrayLike, cost_threshold: float = 0.0) -> npt.NDArray[np.int16]:
    """``1`` where the side-adjusted return beats ``cost_threshold`` (strictly), else ``0``."""
    return (np.asarray(ret, dtype=np.float64) > cost_threshold).astype(np.int16)


def bet_size(p: npt.ArrayLike, side: npt.ArrayLike, k: int = 2) -> npt.NDArray[np.float64]:
    """AFML snippet 10.1: ``z = (p − 1/k)/sqrt(p(1 − p))``, ``size = side·(2Φ(z) − 1)`` in [−1, 1].

    ``p`` is the meta model's P(meta = 1) for the primary ``side``; ``k`` the number of classes.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    prob = np.asarray(p, dtype=np.float64)
    if np.any((prob < 0.0) | (prob > 1.0)) or np.any(np.isnan(prob)):
        raise ValueError("probabilities must lie in [0, 1]")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (prob - 1.0 / k) / np.sqrt(prob * (1.0 - prob))
    # p = 0 or 1 gives z = ∓inf, where Φ is exactly 0 or 1.
    phi = 0.5 * (1.0 + np.asarray(_erf(np.asarray(z) / math.sqrt(2.0)), dtype=np.float64))
    return np.asarray(side, dtype=np.float64) * (2.0 * phi - 1.0)


def discretise_bet(size: npt.ArrayLike, step: float) -> npt.NDArray[np.float64]:
    """Round bet sizes to multiples of ``step`` (AFML snippet 10.3), clipped to [−1, 1]."""
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must lie in (0, 1], got {step}")
    return np.clip(np.round(np.asarray(size, dtype=np.float64) / step) * step, -1.0, 1.0)
