"""Carried-state numba kernels of the custom features: one ``step`` per closed 1m bar.

The live path calls :func:`step` once per bar; the batch path calls :func:`fold`, a loop over the very
same compiled ``step``, so both perform the identical sequence of floating-point operations and agree
bit for bit. All state lives in three small numpy arrays (picklable):

- ``ist`` (int64): bars seen, current IST day, active bucket start per context timeframe;
- ``fst`` (float64): VWAP accumulators, Kalman state, sliding Welford moments, forming context bars;
- ``ring`` (float64[4, R]): the last R bars of log close, close, one-bar log return and volume.

Time is carried as epoch minutes of the bar *open* (Kite's convention); IST = UTC+05:30 with no DST,
so the IST wall clock is plain integer arithmetic: ``(t + 330) % 1440`` minutes after midnight.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tickwise.core.features.derived import apply_derived

RING_CHANNELS = 4
CH_LOGCLOSE, CH_CLOSE, CH_RET, CH_VOLUME = 0, 1, 2, 3
IST_OFFSET_MINUTES = 330
MINUTES_PER_DAY = 1440

# ist layout
I_COUNT, I_DAY, I_LAST_TIME, I_BUCKET0 = 0, 1, 2, 3
# fst layout: fixed header, then 2 slots per hurst lag, 2 per z-score window (+2 ret, +2 volume),
# then 5 (o, h, l, c, v) per context timeframe.
F_VW_W, F_VW_MEAN, F_VW_S = 0, 1, 2  # volume-weighted Welford of the typical price
F_EQ_W, F_EQ_MEAN, F_EQ_S = 3, 4, 5  # equal-weighted fallback (sessions without volume, e.g. indices)
F_KF_LVL, F_KF_SLOPE, F_KF_P00, F_KF_P01, F_KF_P11 = 6, 7, 8, 9, 10
F_HEADER = 11

# custom output order (index k into ``cslots``)
K_VWAP, K_VWAP_SD, K_KF_PRICE, K_KF_SLOPE, K_HURST, K_SESSION_MINUTE, K_LOGCLOSE, K_FFD = range(8)
K_FIXED = 8


def state_sizes(n_lags: int, n_zwin: int, n_tf: int) -> tuple[int, int]:
    """Lengths of ``ist`` and ``fst`` for the given parameter counts."""
    return I_BUCKET0 + n_tf, F_HEADER + 2 * n_lags + 2 * (n_zwin + 2) + 5 * n_tf


def n_custom_outputs(n_zwin: int, n_horizons: int, n_rlags: int) -> int:
    """Number of values ``step`` writes per bar (see the K_* order and :func:`step`)."""
    return K_FIXED + n_zwin + 2 + n_horizons + n_rlags


@njit(cache=True, inline="always")
def _welford_slide(fst: np.ndarray, j: int, x_new: float, x_old: float, count: int, window: int) -> float:
    """Push ``x_new`` into a sliding window of ``window`` values (``x_old`` leaves once full).

    ``count`` is the number of values pushed so far including ``x_new``. Returns the z-score of
    ``x_new`` against the window (population std) once the window is full, else NaN. The sliding
    Welford update avoids the cancellation of running sums of squares.
    """
    mean = fst[j]
    m2 = fst[j + 1]
    if count <= window:
        d = x_new - mean
        mean = mean + d / count
        m2 = m2 + d * (x_new - mean)
    else:
        delta = x_new - x_old
        old_mean = mean
        mean = old_mean + delta / window
        m2 = m2 + delta * (x_new - mean + x_old - old_mean)
    fst[j] = mean
    fst[j + 1] = m2
    if count < window or m2 <= 0.0:
        return math.nan
    z: float = (x_new - mean) / math.sqrt(m2 / window)
    return z


@njit(cache=True, inline="always")
def _weighted_welford(fst: np.ndarray, j: int, w: float, x: float) -> None:
    total = fst[j] + w
    if total <= 0.0:
        return
    d = x - fst[j + 1]
    fst[j + 1] = fst[j + 1] + (w / total) * d
    fst[j + 2] = fst[j + 2] + w * d * (x - fst[j + 1])
    fst[j] = total


@njit(cache=True, error_model="numpy", inline="always")
def step(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    do_ffd: bool,
    cslots: np.ndarray,
    out: np.ndarray,
    col: int,
    fin_bars: np.ndarray,
    fin_count: np.ndarray,
) -> int:
    """Advance the state by one closed 1m bar opened at epoch minute ``t_min``; write its outputs.

    Outputs go to ``out[cslots[k], col]``. Context bars finalised by this bar are written to
    ``fin_bars[tf_index, j, :] = (o, h, l, c, v)`` with ``fin_count[tf_index]`` of them (0, 1 or 2).
    FFD is written only when ``do_ffd`` (batch computes it in a vectorised pass with the same order).
    Returns the number of context bars finalised by this bar (all timeframes).
    """
    RM = ring.shape[1] - 1  # the ring length is a power of two: index with a mask, not a division
    n = ist[I_COUNT]  # index of this bar
    pos = n & RM
    lc = math.log(c)
    local = t_min + IST_OFFSET_MINUTES
    day = local // MINUTES_PER_DAY
    minute = local - day * MINUTES_PER_DAY

    # ---- session VWAP (reset at each IST date) ----
    if n == 0 or day != ist[I_DAY]:
        for j in range(6):
            fst[j] = 0.0
        ist[I_DAY] = day
    tp = (h + lo + c) / 3.0
    _weighted_welford(fst, F_VW_W, v, tp)
    _weighted_welford(fst, F_EQ_W, 1.0, tp)
    base = F_VW_W if fst[F_VW_W] > 0.0 else F_EQ_W
    out[cslots[K_VWAP], col] = fst[base + 1]
    var = fst[base + 2] / fst[base]
    out[cslots[K_VWAP_SD], col] = math.sqrt(var) if var > 0.0 else 0.0

    # ---- Kalman local linear trend on log close ----
    q_lvl = kalman[0]
    q_slope = kalman[1]
    r = kalman[2]
    if n == 0:
        fst[F_KF_LVL] = lc
        fst[F_KF_SLOPE] = 0.0
        fst[F_KF_P00] = r
        fst[F_KF_P01] = 0.0
        fst[F_KF_P11] = r
    else:
        p00 = fst[F_KF_P00]
        p01 = fst[F_KF_P01]
        p11 = fst[F_KF_P11]
        lvl_p = fst[F_KF_LVL] + fst[F_KF_SLOPE]
        p00p = p00 + 2.0 * p01 + p11 + q_lvl
        p01p = p01 + p11
        p11p = p11 + q_slope
        s = p00p + r
        k0 = p00p / s
        k1 = p01p / s
        y = lc - lvl_p
        fst[F_KF_LVL] = lvl_p + k0 * y
        fst[F_KF_SLOPE] = fst[F_KF_SLOPE] + k1 * y
        fst[F_KF_P00] = (1.0 - k0) * p00p
        fst[F_KF_P01] = (1.0 - k0) * p01p
        fst[F_KF_P11] = p11p - k1 * p01p
    out[cslots[K_KF_PRICE], col] = math.exp(fst[F_KF_LVL])
    out[cslots[K_KF_SLOPE], col] = fst[F_KF_SLOPE]

    # ---- ring buffer ----
    ring[CH_LOGCLOSE, pos] = lc
    ring[CH_CLOSE, pos] = c
    ring[CH_VOLUME, pos] = v
    ret1 = lc - ring[CH_LOGCLOSE, (n - 1) & RM] if n >= 1 else np.nan
    ring[CH_RET, pos] = ret1

    # ---- Hurst: slope of log sd(q-lag differences) on log q, sliding windows of hurst_window ----
    n_lags = hurst_lags.shape[0]
    all_full = True
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(n_lags):
        q = hurst_lags[i]
        j = F_HEADER + 2 * i
        if n >= q:
            count = n - q + 1
            d_new = lc - ring[CH_LOGCLOSE, (n - q) & RM]
            d_old = 0.0
            if count > hurst_window:
                m = n - hurst_window
                d_old = ring[CH_LOGCLOSE, m & RM] - ring[CH_LOGCLOSE, (m - q) & RM]
            _welford_slide(fst, j, d_new, d_old, count, hurst_window)
            if count < hurst_window or fst[j + 1] <= 0.0:
                all_full = False
            else:
                x = math.log(q)
                yv = 0.5 * math.log(fst[j + 1] / hurst_window)
                sx += x
                sy += yv
                sxx += x * x
                sxy += x * yv
        else:
            all_full = False
    if all_full:
        denom = n_lags * sxx - sx * sx
        out[cslots[K_HURST], col] = (n_lags * sxy - sx * sy) / denom
    else:
        out[cslots[K_HURST], col] = np.nan

    out[cslots[K_SESSION_MINUTE], col] = float(minute - session[0])
    out[cslots[K_LOGCLOSE], col] = lc

    # ---- FFD (window-pure FIR on log close; same summation order as the batch kernel) ----
    if do_ffd:
        L = ffd_w.shape[0]
        if n >= L - 1:
            acc = 0.0
            for k in range(L):
                acc += ffd_w[k] * ring[CH_LOGCLOSE, (n - k) & RM]
            out[cslots[K_FFD], col] = acc
        else:
            out[cslots[K_FFD], col] = np.nan

    # ---- rolling z-scores (sliding Welford) ----
    kz = K_FIXED
    jz = F_HEADER + 2 * n_lags
    for i in range(zwins.shape[0]):
        w = zwins[i]
        old = ring[CH_CLOSE, (n - w) & RM] if n >= w else 0.0
        out[cslots[kz + i], col] = _welford_slide(fst, jz + 2 * i, c, old, n + 1, w)
    kz += zwins.shape[0]
    jz += 2 * zwins.shape[0]
    if n >= 1:
        old = ring[CH_RET, (n - zshort) & RM] if n > zshort else 0.0
        out[cslots[kz], col] = _welford_slide(fst, jz, ret1, old, n, zshort)
    else:
        out[cslots[kz], col] = np.nan
    old = ring[CH_VOLUME, (n - zshort) & RM] if n >= zshort else 0.0
    out[cslots[kz + 1], col] = _welford_slide(fst, jz + 2, v, old, n + 1, zshort)
    kz += 2

    # ---- returns and lags ----
    for i in range(horizons.shape[0]):
        hz = horizons[i]
        out[cslots[kz + i], col] = lc - ring[CH_LOGCLOSE, (n - hz) & RM] if n >= hz else np.nan
    kz += horizons.shape[0]
    for i in range(rlags.shape[0]):
        lg = rlags[i]
        out[cslots[kz + i], col] = ring[CH_RET, (n - lg) & RM] if n >= lg + 1 else np.nan

    # ---- session-aligned context bars (5/15/60m ...) ----
    jb = F_HEADER + 2 * n_lags + 2 * (zwins.shape[0] + 2)
    day_start = t_min - minute
    s_open = day_start + session[0]
    s_close = day_start + session[1]
    for i in range(tfs.shape[0]):
        m = tfs[i]
        fin_count[i] = 0
        bstart = s_open + ((t_min - s_open) // m) * m
        bend = bstart + m
        if bstart < s_close < bend:
            bend = s_close  # the last bar of the session is partial (e.g. 15:15-15:30 for 60m)
        jf = jb + 5 * i
        cur = ist[I_BUCKET0 + i]
        if cur != -1 and cur != bstart:
            _emit(fst, jf, fin_bars, fin_count, i)
            cur = -1
        if cur == -1:
            fst[jf] = o
            fst[jf + 1] = h
            fst[jf + 2] = lo
            fst[jf + 3] = c
            fst[jf + 4] = v
            cur = bstart
        else:
            fst[jf + 1] = max(fst[jf + 1], h)
            fst[jf + 2] = min(fst[jf + 2], lo)
            fst[jf + 3] = c
            fst[jf + 4] = fst[jf + 4] + v
        if t_min + 1 >= bend:  # this 1m bar closes at the bucket's end: the context bar is closed
            _emit(fst, jf, fin_bars, fin_count, i)
            cur = -1
        ist[I_BUCKET0 + i] = cur

    ist[I_COUNT] = n + 1
    ist[I_LAST_TIME] = t_min
    total = 0
    for i in range(tfs.shape[0]):
        total += fin_count[i]
    return total


@njit(cache=True, inline="always")
def _emit(fst: np.ndarray, jf: int, fin_bars: np.ndarray, fin_count: np.ndarray, i: int) -> None:
    k = fin_count[i]
    for f in range(5):
        fin_bars[i, k, f] = fst[jf + f]
    fin_count[i] = k + 1


@njit(cache=True, error_model="numpy")
def fold(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    cslots: np.ndarray,
    out: np.ndarray,
    htf_bars: np.ndarray,
    htf_rows: np.ndarray,
    htf_n: np.ndarray,
) -> None:
    """Run :func:`step` over every bar (FFD excluded); collect finalised context bars.

    ``htf_bars[tf, k, :]`` is the k-th finalised context bar of timeframe ``tf`` and ``htf_rows[tf, k]``
    the input row at which it closed (became usable); ``htf_n[tf]`` counts them.
    """
    n_tf = tfs.shape[0]
    fin_bars = np.empty((n_tf, 2, 5))
    fin_count = np.zeros(n_tf, dtype=np.int64)
    for r in range(t_min.shape[0]):
        step(
            ist,
            fst,
            ring,
            t_min[r],
            o[r],
            h[r],
            lo[r],
            c[r],
            v[r],
            hurst_window,
            hurst_lags,
            zwins,
            zshort,
            horizons,
            rlags,
            tfs,
            kalman,
            session,
            ffd_w,
            False,
            cslots,
            out,
            r,
            fin_bars,
            fin_count,
        )
        for i in range(n_tf):
            for j in range(fin_count[i]):
                k = htf_n[i]
                for f in range(5):
                    htf_bars[i, k, f] = fin_bars[i, j, f]
                htf_rows[i, k] = r
                htf_n[i] = k + 1


@njit(cache=True, error_model="numpy")
def step_derive(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    cslots: np.ndarray,
    col: np.ndarray,
    fin_bars: np.ndarray,
    fin_count: np.ndarray,
    ops: np.ndarray,
    consts: np.ndarray,
    warm: np.ndarray,
) -> int:
    """Live: :func:`step` (with FFD) on column 0 of ``col``, then, unless the bar closed a context bar,
    the derived features and warm-up mask (:func:`derived.apply_derived`) in the same native call.

    One dispatch from Python per bar instead of two. When context bars were finalised (return value
    > 0) the caller first updates the context TA-Lib handles, then applies the derived kernel itself.
    """
    bar_index = ist[I_COUNT]
    n_fin = step(
        ist, fst, ring, t_min, o, h, lo, c, v, hurst_window, hurst_lags, zwins, zshort, horizons, rlags,
        tfs, kalman, session, ffd_w, True, cslots, col, 0, fin_bars, fin_count,
    )  # fmt: skip
    if n_fin == 0:
        apply_derived(col, ops, consts, warm, bar_index)
    return n_fin
