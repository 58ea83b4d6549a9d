"""Sample weights for overlapping labels (labeling.md §9, AFML ch. 4).

Events are intervals of bar positions ``[t0, t1]`` (both ends inclusive) on one bar grid: one instrument and
timeframe. Everything here is O(bars + events) prefix-sum arithmetic, so it needs no numba.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _positions(t0_idx: npt.ArrayLike, t1_idx: npt.ArrayLike, n_bars: int) -> tuple[IntArray, IntArray]:
    t0 = np.asarray(t0_idx, dtype=np.int64)
    t1 = np.asarray(t1_idx, dtype=np.int64)
    if t0.shape != t1.shape or t0.ndim != 1:
        raise ValueError("t0_idx and t1_idx must be 1-D arrays of the same length")
    if t0.size and (t0.min() < 0 or t1.max() >= n_bars or np.any(t1 < t0)):
        raise ValueError(f"events need 0 <= t0 <= t1 < {n_bars}")
    return t0, t1


def concurrency(t0_idx: npt.ArrayLike, t1_idx: npt.ArrayLike, n_bars: int) -> IntArray:
    """Number of events whose ``[t0, t1]`` contains each bar ``0 … n_bars-1`` (both ends inclusive)."""
    t0, t1 = _positions(t0_idx, t1_idx, n_bars)
    delta = np.zeros(n_bars + 1, dtype=np.int64)
    np.add.at(delta, t0, 1)
    np.add.at(delta, t1 + 1, -1)
    return np.cumsum(delta[:-1])


def average_uniqueness(t0_idx: npt.ArrayLike, t1_idx: npt.ArrayLike, n_bars: int) -> FloatArray:
    """Mean of ``1/c_t`` over each event's bars ``[t0, t1]``; every value lies in (0, 1]."""
    t0, t1 = _positions(t0_idx, t1_idx, n_bars)
    c = concurrency(t0, t1, n_bars)
    inv = np.zeros(n_bars, dtype=np.float64)
    covered = c > 0
    inv[covered] = 1.0 / c[covered]
    prefix = np.concatenate(([0.0], np.cumsum(inv)))
    return np.asarray((prefix[t1 + 1] - prefix[t0]) / (t1 - t0 + 1), dtype=np.float64)


def return_attribution(t0_idx: npt.ArrayLike, t1_idx: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """``|Σ_{t=t0+1}^{t1} r_t / c_t|`` with log returns ``r_t``, normalised so the weights sum to the event count.

    The sum starts at t0 + 1, not t0 as in AFML, because entry is at the close of t0 (labeling.md §9). When
    every attribution is zero (flat prices) there is no return information, so each event gets weight 1.
    """
    c_arr = np.asarray(close, dtype=np.float64)
    n_bars = c_arr.shape[0]
    t0, t1 = _positions(t0_idx, t1_idx, n_bars)
    if t0.size == 0:
        return np.zeros(0, dtype=np.float64)
    conc = concurrency(t0, t1, n_bars)
    log_ret = np.zeros(n_bars, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ret[1:] = np.log(c_arr[1:] / c_arr[:-1])
    contrib = np.zeros(n_bars, dtype=np.float64)
    covered = conc > 0
    contrib[covered] = log_ret[covered] / conc[covered]
    prefix = np.concatenate(([0.0], np.cumsum(np.nan_to_num(contrib, nan=0.0, posinf=0.0, neginf=0.0))))
    raw = np.abs(prefix[t1 + 1] - prefix[t0 + 1])
    return _normalise(raw)


def _normalise(w: FloatArray) -> FloatArray:
    total = w.sum()
    if not np.isfinite(total) or total <= 0.0:
        return np.ones_like(w)
    return np.asarray(w * (w.size / total), dtype=np.float64)


def time_decay(t0_order: npt.ArrayLike, uniqueness: npt.ArrayLike, decay: float = 1.0) -> FloatArray:
    """Piecewise-linear decay in cumulative uniqueness (AFML snippet 4.11), newest event weight 1.

    Events are ordered by ``t0_order`` (e.g. t0 timestamps as int64). ``decay = 1``: no decay;
    ``0 <= decay < 1``: the line starts at ``decay`` at zero cumulative uniqueness, so the oldest event keeps
    about ``decay``; ``-1 < decay < 0``: the oldest fraction ``|decay|`` of cumulative uniqueness gets weight 0.
    """
    if not -1.0 < decay <= 1.0:
        raise ValueError(f"decay must lie in (-1, 1], got {decay}")
    u = np.asarray(uniqueness, dtype=np.float64)
    order = np.argsort(np.asarray(t0_order), kind="stable")
    out = np.ones_like(u)
    if u.size == 0 or decay == 1.0:
        return out
    cum = np.cumsum(u[order])
    total = cum[-1]
    # AFML 4.11: the line passes through (total, 1) and through (0, decay) or (|decay|·total, 0).
    slope = (1.0 - decay) / total if decay >= 0.0 else 1.0 / ((decay + 1.0) * total)
    const = 1.0 - slope * total
    out[order] = np.maximum(const + slope * cum, 0.0)
    return out


def event_weights(t0_idx: npt.ArrayLike, t1_idx: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """``ū × attribution`` over one labelled set (one instrument, timeframe, side), normalised to sum = n.

    This is the value stored in ``labels.weight``.
    """
    c_arr = np.asarray(close, dtype=np.float64)
    u = average_uniqueness(t0_idx, t1_idx, c_arr.shape[0])
    return _normalise(u * return_attribution(t0_idx, t1_idx, c_arr))


def fold_weights(
    labels: pd.DataFrame,
    bars: Mapping[tuple[int, str], pd.Series],
    train_end: pd.Timestamp,
    *,
    use_uniqueness: bool = True,
    use_attribution: bool = True,
    decay: float = 1.0,
) -> pd.Series:
    """Recompute weights inside one training fold from the labels with ``t1 <= train_end`` (labeling.md §9).

    ``labels`` has the contract columns ``instrument_token``, ``timeframe``, ``side``, ``time`` (t0) and
    ``t1``; ``bars[(token, timeframe)]`` is that instrument's close series indexed by candle open time (the
    bar grid the labels were built on). Each (instrument, timeframe, side) set is weighted on its own bar grid
    and normalised to its event count, so the fold's weights sum to the number of fold events. Returns a
    Series aligned to ``labels.index``: NaN for rows outside the fold (``t1 > train_end``).
    """
    result = pd.Series(np.nan, index=labels.index, dtype=np.float64)
    in_fold = labels["t1"] <= train_end
    fold = labels[in_fold]
    for (token, timeframe, _side), group in fold.groupby(
        ["instrument_token", "timeframe", "side"], sort=False
    ):
        try:
            close = bars[(int(token), str(timeframe))]
        except KeyError:
            raise KeyError(f"no bars given for instrument {token} timeframe {timeframe}") from None
        grid = pd.DatetimeIndex(close.index)
        t0 = grid.get_indexer(pd.DatetimeIndex(group["time"]))
        t1 = grid.get_indexer(pd.DatetimeIndex(group["t1"]))
        if np.any(t0 < 0) or np.any(t1 < 0):
            raise ValueError(f"label times of instrument {token} {timeframe} are not on its bar grid")
        w = np.ones(len(group), dtype=np.float64)
        u = average_uniqueness(t0, t1, len(grid))
        if use_uniqueness:
            w *= u
        if use_attribution:
            w *= return_attribution(t0, t1, close.to_numpy(dtype=np.float64))
        if decay != 1.0:
            w *= time_decay(t0, u, decay)
        result.loc[group.index] = _normalise(w)
    return result


def fold_weights_of(
    token: npt.ArrayLike,
    t0_ns: npt.ArrayLike,
    t1_ns: npt.ArrayLike,
    closes: Mapping[int, tuple[IntArray, FloatArray]],
    train_end_ns: int,
) -> FloatArray:
    """:func:`fold_weights` of one timeframe and side on arrays (issue 15: no frame of the window's
    labels): ``token``, ``t0_ns``/``t1_ns`` (int64 ns since the epoch, UTC; ``NaT`` as numpy's
    minimum int64) per event, ``closes[token]`` that instrument's bar grid (int64 ns, ascending) and
    closes. The same arithmetic in the same order per instrument, so the same values bit for bit; NaN
    for events outside the fold (``t1 > train_end_ns`` or no ``t1``)."""
    tokens = np.asarray(token, dtype=np.int64)
    t0_all = np.asarray(t0_ns, dtype=np.int64)
    t1_all = np.asarray(t1_ns, dtype=np.int64)
    result = np.full(len(tokens), np.nan, dtype=np.float64)
    in_fold = (t1_all <= train_end_ns) & (t1_all != np.iinfo(np.int64).min)
    for tok in pd.unique(tokens[in_fold]):
        mine = np.flatnonzero(in_fold & (tokens == tok))
        try:
            grid, close = closes[int(tok)]
        except KeyError:
            raise KeyError(f"no bars given for instrument {tok}") from None
        result[mine] = instrument_fold_weights(grid, close, t0_all[mine], t1_all[mine], int(tok))
    return result


def instrument_fold_weights(
    grid: IntArray, close: FloatArray, t0_ns: IntArray, t1_ns: IntArray, token: int
) -> FloatArray:
    """One instrument's part of :func:`fold_weights_of`: the in-fold events ``t0_ns``/``t1_ns`` (int64
    ns, every one with a ``t1``, in row order) on its bar ``grid`` and ``close``, normalised to their
    count. Shared by :func:`fold_weights_of` and a training set's per-instrument window weights
    (``core.dataset.TrainingSet.window_weights``), so both do the same arithmetic in the same order."""
    t0, t1 = _grid_positions(grid, t0_ns), _grid_positions(grid, t1_ns)
    if np.any(t0 < 0) or np.any(t1 < 0):
        raise ValueError(f"label times of instrument {token} are not on its bar grid")
    w = np.ones(len(t0), dtype=np.float64)
    w *= average_uniqueness(t0, t1, len(grid))
    w *= return_attribution(t0, t1, close)
    return _normalise(w)


def _grid_positions(grid: IntArray, at: IntArray) -> IntArray:
    """Positions of ``at`` in the ascending ``grid`` (-1 where absent), as ``get_indexer`` gives."""
    pos = np.searchsorted(grid, at)
    found = pos < len(grid)
    found[found] = grid[pos[found]] == at[found]
    return np.where(found, pos, -1).astype(np.int64)
