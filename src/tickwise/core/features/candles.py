"""TA-Lib's candle patterns of the catalog, replicated for the compiled step (bit-identical).

Each pattern compares a bar's body or shadows with TA-Lib's *candle settings*: a factor times the
average of a range (real body ``|c - o|`` or ``h - l``) over the ``period`` bars BEFORE the bar being
judged (TA-Lib 0.8 defaults, ``ta_global.c``). TA-Lib keeps each of those averages as a running sum
whose rounding depends on where it started: the sum for "bar ``i - off``" of a pattern with lookback
``L`` is first added up sequentially over bars ``L - off - period .. L - off - 1``, then slid once per
output as ``sum + (range(i - off) - range(i - off - period))``. :data:`SUMS` lists every distinct
``(L, off, period, range)`` sum the 13 patterns use (patterns sharing one share its bits), and
:func:`candles` repeats that schedule bar by bar, so the values equal the Function API's from the
anchor. The pattern conditions are transcribed from ta-lib 0.8.1's ``ta_CDL*.c``; the only fused
multiply-add is in MORNINGSTAR and PIERCING (``c + body * penetration``; the library's ``.fma``
clones of those two functions contain exactly one ``vfmadd`` each, EVENINGSTAR's and
DARKCLOUDCOVER's ``c - body * penetration`` are not fused).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickwise.core.features.fma import fma as _fma
from tickwise.core.features.jit import njit_no_nrt

RB, HL = 0, 1  # TA_RangeType_RealBody, TA_RangeType_HighLow (the Shadows type is not used here)

# TA-Lib's default candle settings (factor; the range type and period are in SUMS):
# BodyLong / BodyShort: real body, 10 bars, 1.0; BodyDoji and ShadowVeryShort: high-low, 10 bars,
# 0.1; Near: high-low, 5 bars, 0.2; Far: high-low, 5 bars, 0.6; ShadowLong: real body, period 0
# (the bar's OWN body), 1.0.
_F_DOJI, _F_VSHORT, _F_NEAR, _F_FAR = 0.1, 0.1, 0.2, 0.6
_MORNING_PEN, _PIERCING_PEN, _EVENING_PEN, _DARK_PEN = 0.3, 0.5, 0.3, 0.5

PATTERNS: tuple[str, ...] = (
    "DOJI",
    "HAMMER",
    "SHOOTINGSTAR",
    "ENGULFING",
    "HARAMI",
    "MORNINGSTAR",
    "EVENINGSTAR",
    "3WHITESOLDIERS",
    "3BLACKCROWS",
    "MARUBOZU",
    "SPINNINGTOP",
    "PIERCING",
    "DARKCLOUDCOVER",
)

# (lookback L of the pattern, offset of the judged bar, period, range type), one row per distinct sum
SUMS = np.array(
    [
        (10, 0, 10, HL),  # 0  DOJI body-doji, MARUBOZU very-short shadows
        (11, 0, 10, RB),  # 1  HAMMER/SHOOTINGSTAR/HARAMI short body, PIERCING long body (bar i)
        (11, 0, 10, HL),  # 2  HAMMER/SHOOTINGSTAR very-short shadow
        (11, 1, 5, HL),  # 3  HAMMER near (bar i-1)
        (11, 1, 10, RB),  # 4  HARAMI/PIERCING/DARKCLOUDCOVER long body (bar i-1)
        (12, 2, 10, RB),  # 5  MORNING/EVENINGSTAR long body (bar i-2)
        (12, 1, 10, RB),  # 6  MORNING/EVENINGSTAR short body (bar i-1)
        (12, 0, 10, RB),  # 7  MORNING/EVENINGSTAR short body (bar i), 3WHITESOLDIERS short body
        (12, 2, 10, HL),  # 8  3WHITESOLDIERS very-short shadow (bar i-2)
        (12, 1, 10, HL),  # 9  ... (bar i-1)
        (12, 0, 10, HL),  # 10 ... (bar i)
        (12, 2, 5, HL),  # 11 3WHITESOLDIERS near and far (bar i-2): same range and period
        (12, 1, 5, HL),  # 12 ... (bar i-1)
        (13, 2, 10, HL),  # 13 3BLACKCROWS very-short shadow (bar i-2)
        (13, 1, 10, HL),  # 14 ... (bar i-1)
        (13, 0, 10, HL),  # 15 ... (bar i)
        (10, 0, 10, RB),  # 16 MARUBOZU long body, SPINNINGTOP short body
    ],
    dtype=np.int64,
)
N_SUMS = SUMS.shape[0]
# After the sums: the real body and the high-low range of the last _HIST bars (slot = bar & (_HIST - 1)),
# each computed once per bar; a sum reads them instead of recomputing them from the ring rows
# (the same expressions, so the same bits).
_HIST = 16  # > the deepest bar a sum reads: offset 2 + period 10
N_STATE = N_SUMS + 2 * _HIST


@njit(cache=True, inline="always")
def _range(ro: np.ndarray, rh: np.ndarray, rl: np.ndarray, rc: np.ndarray, k: int, kind: int) -> float:
    r: float = abs(rc[k] - ro[k]) if kind == RB else rh[k] - rl[k]
    return r


@njit(cache=True, inline="always")
def _color(o: float, c: float) -> int:
    return 1 if c >= o else -1


# One explicit signature: one specialisation, whatever literal the inlined caller passes (see
# kernels._PART_SIG); the ring rows are C-contiguous rows of the C-contiguous ring.
@njit_no_nrt(
    "void(float64[::1], int64, float64[::1], float64[::1], float64[::1], float64[::1], int64, int64, "
    "float64[:, ::1], int64[::1], int64, int64)",
    cache=True,
    error_model="numpy",
)
def candles(
    fst: np.ndarray, j: int, ro: np.ndarray, rh: np.ndarray, rl: np.ndarray, rc: np.ndarray, rm: int, n: int,
    out: np.ndarray, cslots: np.ndarray, k: int, col: int,
) -> None:  # fmt: skip
    """The 13 patterns for bar ``n`` (the ring rows already hold it) into ``out[cslots[k + p], col]``.

    ``fst[j : j + N_SUMS]`` carries the running sums of :data:`SUMS`; values before a pattern's
    lookback are NaN.
    ``fst[j + N_SUMS : j + N_STATE]`` the ranges of the last bars (see ``N_STATE``).
    """
    jr = j + N_SUMS  # real bodies, then high-low ranges
    i0 = n & rm
    hm = _HIST - 1
    fst[jr + (n & hm)] = _range(ro, rh, rl, rc, i0, RB)
    fst[jr + _HIST + (n & hm)] = _range(ro, rh, rl, rc, i0, HL)
    if n < 13:  # the longest lookback: every pattern emits from here on
        # 1) sums still being primed take this bar when it falls in their first window
        for s in range(N_SUMS):
            lb = SUMS[s, 0]
            off = SUMS[s, 1]
            per = SUMS[s, 2]
            if lb - off - per <= n <= lb - off - 1:
                fst[j + s] = fst[j + s] + fst[jr + SUMS[s, 3] * _HIST + (n & hm)]
        nan = math.nan
        for p in range(13):
            out[cslots[k + p], col] = nan
        if n < 2:
            return

    # 2) the patterns, with the sums as they stand before this bar's slide
    i1 = (n - 1) & rm
    o0, h0, l0, c0 = ro[i0], rh[i0], rl[i0], rc[i0]
    o1, h1, l1, c1 = ro[i1], rh[i1], rl[i1], rc[i1]
    col0 = _color(o0, c0)
    col1 = _color(o1, c1)
    body0 = abs(c0 - o0)
    body1 = abs(c1 - o1)
    top0 = c0 if c0 >= o0 else o0  # the real body's upper / lower end, as TA_UPPERSHADOW computes it
    bot0 = o0 if c0 >= o0 else c0

    # ENGULFING (lookback 2)
    res = 0.0
    if (col0 == 1 and col1 == -1 and ((c0 >= o1 and o0 < c1) or (c0 > o1 and o0 <= c1))) or (
        col0 == -1 and col1 == 1 and ((o0 >= c1 and c0 < o1) or (o0 > c1 and c0 <= o1))
    ):
        res = col0 * 100.0 if (o0 != c1 and c0 != o1) else col0 * 80.0
    out[cslots[k + 3], col] = res

    if n >= 10:
        # DOJI
        out[cslots[k + 0], col] = 100.0 if body0 <= _F_DOJI * (fst[j + 0] / 10) else 0.0
        # MARUBOZU
        vs = _F_VSHORT * (fst[j + 0] / 10)
        res = 0.0
        if body0 > 1.0 * (fst[j + 16] / 10) and (h0 - top0) < vs and (bot0 - l0) < vs:
            res = col0 * 100.0
        out[cslots[k + 9], col] = res
        # SPINNINGTOP
        res = 0.0
        if (h0 - top0) > body0 and (bot0 - l0) > body0 and body0 < 1.0 * (fst[j + 16] / 10):
            res = col0 * 100.0
        out[cslots[k + 10], col] = res

    if n >= 11:
        short0 = 1.0 * (fst[j + 1] / 10)
        vs = _F_VSHORT * (fst[j + 2] / 10)
        long1 = 1.0 * (fst[j + 4] / 10)
        # HAMMER: small body, long lower shadow (longer than its own body), very short upper shadow,
        # body near the prior low
        ok = (
            body0 < short0
            and (bot0 - l0) > 1.0 * body0
            and (h0 - top0) < vs
            and min(c0, o0) <= l1 + _F_NEAR * (fst[j + 3] / 5)
        )
        out[cslots[k + 1], col] = 100.0 if ok else 0.0
        # SHOOTINGSTAR
        ok = min(o0, c0) > max(o1, c1) and body0 < short0 and (h0 - top0) > 1.0 * body0 and (bot0 - l0) < vs
        out[cslots[k + 2], col] = -100.0 if ok else 0.0
        # HARAMI
        res = 0.0
        if body1 > long1 and body0 <= short0:
            if max(c0, o0) < max(c1, o1) and min(c0, o0) > min(c1, o1):
                res = -col1 * 100.0
            elif max(c0, o0) <= max(c1, o1) and min(c0, o0) >= min(c1, o1):
                res = -col1 * 80.0
        out[cslots[k + 4], col] = res
        # PIERCING (c1 + body1 * 0.5 fused, as the library's code is)
        ok = (
            col1 == -1
            and body1 > long1
            and col0 == 1
            and body0 > 1.0 * (fst[j + 1] / 10)
            and o0 < l1
            and c0 < o1
            and c0 > _fma(body1, _PIERCING_PEN, c1)
        )
        out[cslots[k + 11], col] = 100.0 if ok else 0.0
        # DARKCLOUDCOVER (not fused)
        ok = (
            col1 == 1 and body1 > long1 and col0 == -1 and o0 > h1 and c0 > o1 and c0 < c1 - body1 * _DARK_PEN
        )
        out[cslots[k + 12], col] = -100.0 if ok else 0.0

    if n >= 12:
        i2 = (n - 2) & rm
        o2, h2, c2 = ro[i2], rh[i2], rc[i2]
        col2 = _color(o2, c2)
        body2 = abs(c2 - o2)
        long2 = 1.0 * (fst[j + 5] / 10)
        short1 = 1.0 * (fst[j + 6] / 10)
        short0 = 1.0 * (fst[j + 7] / 10)
        # MORNINGSTAR (c2 + body2 * 0.3 fused)
        ok = (
            col2 == -1
            and col0 == 1
            and max(o1, c1) < min(o2, c2)
            and c0 > _fma(body2, _MORNING_PEN, c2)
            and body2 > long2
            and body1 <= short1
            and body0 > short0
        )
        out[cslots[k + 5], col] = 100.0 if ok else 0.0
        # EVENINGSTAR (not fused)
        ok = (
            col2 == 1
            and col0 == -1
            and min(o1, c1) > max(o2, c2)
            and c0 < c2 - body2 * _EVENING_PEN
            and body2 > long2
            and body1 <= short1
            and body0 > short0
        )
        out[cslots[k + 6], col] = -100.0 if ok else 0.0
        # 3WHITESOLDIERS
        top1 = c1 if c1 >= o1 else o1
        top2 = c2 if c2 >= o2 else o2
        ok = (
            col2 == 1
            and (h2 - top2) < _F_VSHORT * (fst[j + 8] / 10)
            and col1 == 1
            and (h1 - top1) < _F_VSHORT * (fst[j + 9] / 10)
            and col0 == 1
            and (h0 - top0) < _F_VSHORT * (fst[j + 10] / 10)
            and c0 > c1
            and c1 > c2
            and o1 > o2
            and o1 <= c2 + _F_NEAR * (fst[j + 11] / 5)
            and o0 > o1
            and o0 <= c1 + _F_NEAR * (fst[j + 12] / 5)
            and body1 > body2 - _F_FAR * (fst[j + 11] / 5)
            and body0 > body1 - _F_FAR * (fst[j + 12] / 5)
            and body0 > short0
        )
        out[cslots[k + 7], col] = 100.0 if ok else 0.0

    if n >= 13:
        i2 = (n - 2) & rm
        i3 = (n - 3) & rm
        o2, l2, c2 = ro[i2], rl[i2], rc[i2]
        o3, h3, c3 = ro[i3], rh[i3], rc[i3]
        bot1 = o1 if c1 >= o1 else c1
        bot2 = o2 if c2 >= o2 else c2
        ok = (
            _color(o3, c3) == 1
            and _color(o2, c2) == -1
            and col1 == -1
            and col0 == -1
            and o1 < o2
            and o1 > c2
            and o0 < o1
            and o0 > c1
            and h3 > c2
            and c2 > c1
            and c1 > c0
            and (bot2 - l2) < _F_VSHORT * (fst[j + 13] / 10)
            and (bot1 - l1) < _F_VSHORT * (fst[j + 14] / 10)
            and (bot0 - l0) < _F_VSHORT * (fst[j + 15] / 10)
        )
        out[cslots[k + 8], col] = -100.0 if ok else 0.0

    # 3) slide the sums whose pattern has started emitting
    for s in range(N_SUMS):
        lb = SUMS[s, 0]
        if n >= lb:
            off = SUMS[s, 1]
            per = SUMS[s, 2]
            base = jr + SUMS[s, 3] * _HIST
            lead = fst[base + ((n - off) & hm)]
            trail = fst[base + ((n - off - per) & hm)]
            fst[j + s] = fst[j + s] + (lead - trail)
