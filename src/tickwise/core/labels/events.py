"""Label the events of one instrument and timeframe: drop rules (§5), barrier kernel (§3), weights (§9)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib

from tickwise.core.labels.barrier import triple_barrier
from tickwise.core.labels.drops import expected_successor_break, missing_bars, session_cross
from tickwise.core.labels.meta import meta_labels
from tickwise.core.labels.spec import BARRIER_NAMES, DEFAULT_LABEL_SPEC, DROP_REASONS, LabelSpec
from tickwise.core.sample_weights import event_weights
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe

# fmt: off
LABEL_COLUMNS: tuple[str, ...] = (
    "instrument_token", "timeframe", "time", "side", "label", "t1", "t1_max",
    "ret", "exit_price", "barrier", "ambiguous", "weight",
)
# fmt: on
"""Columns of the contract's ``labels`` table, in order (``meta`` is appended for primary-side sets)."""

_PRICE_COLUMNS = ("open", "high", "low", "close")


def _bar_times(candles: pd.DataFrame) -> pd.DatetimeIndex:
    missing = [c for c in ("time", *_PRICE_COLUMNS) if c not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    times = pd.DatetimeIndex(candles["time"])
    if times.tz is None:
        raise ValueError("candles.time must be tz-aware")
    if len(times) > 1 and not bool(np.all(np.diff(times.as_unit("ns").asi8) > 0)):
        raise ValueError(
            "candles.time must be strictly increasing (one instrument and timeframe, no duplicates)"
        )
    return times


def _sides(side: int | npt.ArrayLike, n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8], bool]:
    """Candidate t0 positions, their sides and whether the sides come from a primary model."""
    if np.ndim(side) == 0:
        s = int(side)  # type: ignore[arg-type]
        if s not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {side!r}")
        return np.arange(n, dtype=np.int64), np.full(n, s, dtype=np.int8), False
    per_bar = np.asarray(side)
    if per_bar.shape != (n,):
        raise ValueError(
            f"a per-bar primary side needs one value per candle ({n}), got shape {per_bar.shape}"
        )
    if not np.all(np.isin(per_bar, (-1, 0, 1))):
        raise ValueError("primary sides must be -1, 0 (no event) or +1")
    t0 = np.flatnonzero(per_bar).astype(np.int64)
    return t0, per_bar[t0].astype(np.int8), True


def label_events(
    candles: pd.DataFrame,
    spec: LabelSpec = DEFAULT_LABEL_SPEC,
    side: int | npt.ArrayLike = 1,
    timeframe: Timeframe | str = Timeframe.M1,
    calendar: SessionCalendar | None = NSE,
    *,
    instrument_token: int | None = None,
    atr: npt.ArrayLike | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Triple-barrier label every candle of one instrument and timeframe as an event (labeling.md §3-§6, §9).

    ``candles``: that instrument's full history in the timeframe (``time`` tz-aware open instants, ``open``,
    ``high``, ``low``, ``close``). ``side``: +1 or −1 labels every candle for that side; a per-candle array of
    primary sides (−1/0/+1, 0 = no event) labels only the proposed events and adds the ``meta`` column.
    ATR is TA-Lib ``ATR(atr_period)`` over the whole history unless ``atr`` is given (tests). With
    ``calendar=None`` the session and candle-grid rules are off (NaN bars still count as missing).

    Returns the labels frame (contract ``labels`` columns; ``instrument_token`` only when given) and the
    number of dropped candidate events per reason; each drop is counted once, under the first reason in
    ``DROP_REASONS`` order, so ``len(frame) + sum(counts) == number of candidates``.
    """
    tf = Timeframe.parse(timeframe) if isinstance(timeframe, str) else timeframe
    times = _bar_times(candles)
    n = len(times)
    o, h, lo, c = (candles[col].to_numpy(dtype=np.float64) for col in _PRICE_COLUMNS)
    if atr is None:
        atr_arr = talib.ATR(h, lo, c, timeperiod=spec.atr_period) if n else np.zeros(0)
    else:
        atr_arr = np.asarray(atr, dtype=np.float64)
        if atr_arr.shape != (n,):
            raise ValueError(f"atr needs one value per candle ({n}), got shape {atr_arr.shape}")
    t0, sides, primary = _sides(side, n)
    horizon = spec.horizon

    reason = np.full(t0.shape, -1, dtype=np.int8)  # index into DROP_REASONS, -1 = kept

    def mark(code: int, flags: npt.NDArray[np.bool_]) -> None:
        reason[(reason < 0) & flags] = code

    mark(0, ~(atr_arr[t0] > 0.0))
    mark(1, t0 < spec.warmup_bars)
    censored = t0 + horizon > n - 1
    mark(2, censored)
    inside = np.flatnonzero(~censored)
    t0_in = t0[inside]
    if calendar is not None and tf is not Timeframe.D1:
        flags = np.zeros(t0.shape, dtype=np.bool_)
        flags[inside] = session_cross(times, t0_in, horizon)
        mark(3, flags)
    nan_bar = np.isnan(o) | np.isnan(h) | np.isnan(lo) | np.isnan(c)
    breaks = expected_successor_break(times, tf, calendar) if calendar is not None else None
    flags = np.zeros(t0.shape, dtype=np.bool_)
    flags[inside] = missing_bars(nan_bar, breaks, t0_in, horizon)
    mark(4, flags)
    counts = {name: int(np.count_nonzero(reason == i)) for i, name in enumerate(DROP_REASONS)}

    keep = reason < 0
    t0_k, side_k = t0[keep], sides[keep]
    res = triple_barrier(
        o, h, lo, c, atr_arr, t0_k, side_k, spec.k_pt, spec.k_sl, horizon, spec.vertical_zero
    )
    if np.any(res.barrier_code < 0):  # the drop rules above are a superset of the kernel's
        raise AssertionError("barrier kernel dropped an event the drop rules kept")

    weight = np.empty(t0_k.shape, dtype=np.float64)
    for s in (1, -1):
        sel = side_k == s
        if np.any(sel):
            weight[sel] = event_weights(t0_k[sel], res.t1_idx[sel], c)

    frame = pd.DataFrame(
        {
            "timeframe": tf.value,
            "time": times[t0_k],
            "side": side_k.astype(np.int16),
            "label": res.label.astype(np.int16),
            "t1": times[res.t1_idx],
            "t1_max": times[t0_k + horizon],
            "ret": res.ret,
            "exit_price": res.exit_price,
            "barrier": np.asarray(BARRIER_NAMES, dtype=object)[res.barrier_code],
            "ambiguous": res.ambiguous,
            "weight": weight,
        }
    )
    if instrument_token is not None:
        frame.insert(0, "instrument_token", np.int64(instrument_token))
    if primary:
        frame["meta"] = meta_labels(res.ret, spec.cost_threshold)
    return frame, counts


def label_both_sides(
    candles: pd.DataFrame,
    spec: LabelSpec = DEFAULT_LABEL_SPEC,
    timeframe: Timeframe | str = Timeframe.M1,
    calendar: SessionCalendar | None = NSE,
    *,
    instrument_token: int | None = None,
) -> tuple[pd.DataFrame, dict[int, dict[str, int]]]:
    """Label every candle once as a long event and once as a short event (two separate event sets).

    Returns the long rows followed by the short rows, and the drop counts per side (keys +1 and −1).
    """
    atr = None
    if len(candles):
        atr = talib.ATR(
            candles["high"].to_numpy(dtype=np.float64),
            candles["low"].to_numpy(dtype=np.float64),
            candles["close"].to_numpy(dtype=np.float64),
            timeperiod=spec.atr_period,
        )
    frames, counts = [], {}
    for s in (1, -1):
        frame, counts[s] = label_events(
            candles, spec, s, timeframe, calendar, instrument_token=instrument_token, atr=atr
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), counts
