"""The triple-barrier kernel (labeling.md §3): one numba loop over events, barriers fixed in price space at t0."""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from tickwise.core.labels.spec import (
    BOTH_SL_FIRST,
    DROP_ATR_NAN,
    DROP_CENSORED,
    PT,
    PT_GAP,
    SL,
    SL_GAP,
    VERTICAL,
)

FloatArray = npt.NDArray[np.float64]


class BarrierResult(NamedTuple):
    """Per-event kernel output; rows with ``barrier_code < 0`` were dropped (label 0, t1 -1, NaN prices)."""

    label: npt.NDArray[np.int8]
    t1_idx: npt.NDArray[np.int64]
    exit_price: FloatArray
    ret: FloatArray
    barrier_code: npt.NDArray[np.int8]
    ambiguous: npt.NDArray[np.bool_]


@numba.njit(cache=True, nogil=True)
def _triple_barrier_kernel(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    atr: FloatArray,
    t0_idx: npt.NDArray[np.int64],
    side: npt.NDArray[np.int8],
    k_pt: float,
    k_sl: float,
    horizon: int,
    vertical_zero: bool,
    label: npt.NDArray[np.int8],
    t1_idx: npt.NDArray[np.int64],
    exit_price: FloatArray,
    ret: FloatArray,
    barrier_code: npt.NDArray[np.int8],
    ambiguous: npt.NDArray[np.bool_],
) -> None:
    n_bars = close.shape[0]
    for e in range(t0_idx.shape[0]):
        t0 = t0_idx[e]
        s = side[e]
        label[e] = 0
        t1_idx[e] = -1
        exit_price[e] = np.nan
        ret[e] = np.nan
        ambiguous[e] = False
        a = atr[t0]
        if not a > 0.0:  # NaN fails every comparison, so this also catches NaN
            barrier_code[e] = DROP_ATR_NAN
            continue
        if t0 + horizon > n_bars - 1:
            # Censored: dropped even when a barrier is touched before the data ends (labeling.md §5).
            barrier_code[e] = DROP_CENSORED
            continue
        p0 = close[t0]
        # Price-space levels fixed at t0; comparing prices (not returns) gives clean >= / <= tie semantics.
        upper = p0 + s * k_pt * a  # profit-taking level for this side
        lower = p0 - s * k_sl * a  # stop-loss level for this side
        code = VERTICAL
        hit = -1
        price = np.nan
        # The event bar's own high/low happened before entry at its close: the scan starts at t0 + 1.
        for j in range(t0 + 1, t0 + horizon + 1):
            o = open_[j]
            if s > 0:
                # Plain "<=" / ">=" on floats; a NaN bar never triggers (callers drop NaN windows first).
                if o >= upper:
                    code, price = PT_GAP, o
                elif o <= lower:
                    code, price = SL_GAP, o
                elif high[j] >= upper and low[j] <= lower:
                    code, price = BOTH_SL_FIRST, lower
                elif low[j] <= lower:
                    code, price = SL, lower
                elif high[j] >= upper:
                    code, price = PT, upper
                else:
                    continue
            else:
                if o <= upper:
                    code, price = PT_GAP, o
                elif o >= lower:
                    code, price = SL_GAP, o
                elif low[j] <= upper and high[j] >= lower:
                    code, price = BOTH_SL_FIRST, lower
                elif high[j] >= lower:
                    code, price = SL, lower
                elif low[j] <= upper:
                    code, price = PT, upper
                else:
                    continue
            hit = j
            break
        if hit < 0:
            hit = t0 + horizon
            price = close[hit]
        r = s * (price / p0 - 1.0)
        if r == 0.0:
            r = 0.0  # normalise -0.0 (short side, unchanged price) so it labels and stores as 0
        if code == VERTICAL:
            if vertical_zero or r == 0.0:
                label[e] = 0
            elif r > 0.0:
                label[e] = 1
            else:
                label[e] = -1
        elif code in (PT, PT_GAP):
            label[e] = 1
        else:
            label[e] = -1
        ambiguous[e] = code == BOTH_SL_FIRST
        barrier_code[e] = code
        t1_idx[e] = hit
        exit_price[e] = price
        ret[e] = r


def triple_barrier(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    atr: npt.ArrayLike,
    t0_idx: npt.ArrayLike,
    side: int | npt.ArrayLike,
    k_pt: float,
    k_sl: float,
    horizon: int,
    vertical_zero: bool = False,
) -> BarrierResult:
    """Label events at bar positions ``t0_idx`` with the triple-barrier rules of labeling.md §3.

    Bars are one instrument and timeframe in time order. Entry is ``close[t0]``; bars ``t0+1 … t0+horizon``
    are scanned in the order gap-PT, gap-SL, both (SL first, ambiguous), SL, PT; the vertical barrier exits at
    ``close[t0+horizon]``. ``side`` is +1 (long) / −1 (short), one value or one per event. ``ret`` is the
    side-adjusted simple return ``side·(exit/P0 − 1)``. Events whose ATR is NaN or ≤ 0 get code
    ``DROP_ATR_NAN``; events whose horizon runs past the last bar get ``DROP_CENSORED`` (touched or not).
    """
    o, h, lo, c, a = (np.ascontiguousarray(x, dtype=np.float64) for x in (open_, high, low, close, atr))
    n = c.shape[0]
    if not (o.shape == h.shape == lo.shape == c.shape == a.shape) or c.ndim != 1:
        raise ValueError("open, high, low, close and atr must be 1-D arrays of the same length")
    t0 = np.ascontiguousarray(t0_idx, dtype=np.int64)
    if t0.ndim != 1:
        raise ValueError("t0_idx must be 1-D")
    if t0.size and (t0.min() < 0 or t0.max() >= n):
        raise ValueError(f"t0_idx must lie in [0, {n - 1}]")
    sides = np.ascontiguousarray(np.broadcast_to(np.asarray(side), t0.shape), dtype=np.int8)
    if sides.size and not np.all((sides == 1) | (sides == -1)):
        raise ValueError("side must be +1 (long) or -1 (short) for every event")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if not (k_pt > 0 and k_sl > 0):
        raise ValueError(f"k_pt and k_sl must be > 0, got {k_pt} and {k_sl}")
    m = t0.shape[0]
    out = BarrierResult(
        label=np.empty(m, dtype=np.int8),
        t1_idx=np.empty(m, dtype=np.int64),
        exit_price=np.empty(m, dtype=np.float64),
        ret=np.empty(m, dtype=np.float64),
        barrier_code=np.empty(m, dtype=np.int8),
        ambiguous=np.empty(m, dtype=np.bool_),
    )
    _triple_barrier_kernel(
        o, h, lo, c, a, t0, sides, float(k_pt), float(k_sl), int(horizon), bool(vertical_zero), *out
    )
    return out
