"""Causal per-bar candle checks: which bars of an instrument look like bad prints, and how badly.

Unlike :func:`~tickwise.core.candle_validator.validate_candles` (a whole-frame integrity report), every
flag here depends only on the bar itself and the bars **before** it (plus an anomaly model fitted on
earlier sessions), so the batch run over a history and the live run one bar at a time give the same
flags: live calls :func:`flag_candles` on the trailing :meth:`CandleCheckConfig.history_bars` bars and
keeps the last bar's rows.

Checks (the ``check`` column of ``candle_flags``; ``score`` is the statistic compared to the threshold):

- ``ohlc_inconsistent``: non-finite or non-positive prices, ``high < low``, open/close outside the range,
  negative volume (score 1).
- ``market_hours``: an intraday bar that does not open inside a session of the calendar (score 1).
- ``return_zscore``: robust z-score ``|r - median| / (1.4826 * MAD)`` of the log close-to-close return
  against the previous ``window`` returns (returns never span two sessions).
- ``range_iqr``: the log range ``ln(high / low)`` above the trailing third quartile, in trailing IQRs.
- ``wick_iqr``: the longer wick, ``max(ln(high / max(open, close)), ln(min(open, close) / low))``, above
  its trailing third quartile in trailing IQRs: a lone bad trade stretches one wick of a bar whose body
  stays put, so this separates bad prints from genuinely wide bars better than the range alone.
- ``volume_spike``: robust z-score of ``ln(1 + volume)`` against the previous ``window`` bars.
- ``zero_volume``: no volume in a bar of an instrument whose trailing median volume is positive.
- ``stale``: open, high, low, close and volume all equal to the previous bar's (a repeated print).
- ``session_gap``: the first bar of a session opens more than ``session_gap`` (log) away from the
  previous session's last close (price continuity across sessions).
- ``anomaly``: an IsolationForest anomaly score (0..1, higher = stranger) on the bar's normalised return,
  range, wick, volume and body. Models are refitted once a week (ISO week of the session): the model of a
  week is fitted on the ``anomaly_fit_sessions`` sessions before the week's first session, never on
  the bars it scores or anything after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from tickwise.core.aggregation import bucket_times, ist_days, utc_nanoseconds
from tickwise.core.isolation_pack import CompiledForest, IsolationPack, compile_forest
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

CHECKS = (
    "ohlc_inconsistent",
    "market_hours",
    "return_zscore",
    "range_iqr",
    "wick_iqr",
    "volume_spike",
    "zero_volume",
    "stale",
    "session_gap",
    "anomaly",
)
FLAG_COLUMNS = ["instrument_token", "timeframe", "time", "check", "score"]
_MAD_SCALE = 1.4826
# Floors keep a flat, tick-rounded series (MAD or IQR of 0) from turning every one-tick move into an outlier.
_MIN_RETURN_SCALE = 1e-4
_MIN_RANGE_IQR = 2e-4
_MIN_VOLUME_SCALE = 0.05

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CandleCheckConfig:
    """Thresholds of the checks (see the module doc); ``exclude``: checks whose flags drop the bar from
    labels and training (the others are recorded with action ``kept``)."""

    window: int = 120
    min_history: int = 30
    return_z: float = 15.0
    range_iqr: float = 20.0
    wick_iqr: float = 20.0
    volume_z: float = 8.0
    session_gap: float = 0.15
    anomaly: bool = True
    anomaly_threshold: float = 0.8
    anomaly_fit_sessions: int = 5
    anomaly_min_bars: int = 200
    anomaly_trees: int = 50
    seed: int = 7
    exclude: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"ohlc_inconsistent", "market_hours", "range_iqr", "wick_iqr", "zero_volume", "stale"}
        )
    )

    def __post_init__(self) -> None:
        unknown = set(self.exclude) - set(CHECKS)
        if unknown:
            raise ValueError(f"unknown candle checks in exclude: {sorted(unknown)} (known: {list(CHECKS)})")
        if self.window < 2 or self.min_history < 2 or self.min_history > self.window:
            raise ValueError("candle checks need 2 <= min_history <= window")

    @property
    def history_bars(self) -> int:
        """How many bars before a bar its non-anomaly checks look at (sizes the live buffer)."""
        return self.window + 1

    def action(self, check: str) -> str:
        return "excluded" if check in self.exclude else "kept"


def trailing_windows(values: FloatArray, window: int) -> FloatArray:
    """Row ``t`` holds ``values[t - window .. t - 1]`` (NaN before the start): the strict past of ``t``."""
    padded = np.concatenate((np.full(window, np.nan), values))
    view: FloatArray = sliding_window_view(padded[:-1], window)
    return view


def robust_z_past(
    values: FloatArray, past: FloatArray, min_history: int, floor: float, *, signed: bool = False
) -> FloatArray:
    """Robust z-score of ``values[t]`` against row ``t`` of ``past`` (its trailing window; NaN = no
    value): ``(v - median) / max(1.4826 * MAD, floor)``, absolute unless ``signed``; NaN where fewer
    than ``min_history`` finite values. Rows are independent, so the batch (one row per bar of a
    history) and the live minute (one row per instrument) run the same arithmetic."""
    enough = np.isfinite(past).sum(axis=1) >= min_history
    z = np.full(len(values), np.nan)
    if not enough.any():
        return z
    rows = past[enough]
    med = _row_median(rows)
    mad = _row_median(np.abs(rows - med[:, None]))
    dev = values[enough] - med
    z[enough] = (dev if signed else np.abs(dev)) / np.maximum(_MAD_SCALE * mad, floor)
    return z


def iqr_past(values: FloatArray, past: FloatArray, min_history: int, floor: float) -> FloatArray:
    """``values[t]`` above the third quartile of row ``t`` of ``past``, in its IQRs (see
    :func:`robust_z_past` for the row convention)."""
    enough = np.isfinite(past).sum(axis=1) >= min_history
    score = np.full(len(values), np.nan)
    if not enough.any():
        return score
    rows = past[enough]
    full = np.isfinite(rows).all(axis=1)
    q1, q3 = np.empty(len(rows)), np.empty(len(rows))
    # Rows without a NaN take numpy's vectorized percentile (nanpercentile loops in Python per row):
    # the same linear interpolation of the same order statistics, so the same bits.
    if full.any():
        q1[full], q3[full] = np.percentile(rows[full], [25, 75], axis=1)
    if not full.all():
        q1[~full], q3[~full] = np.nanpercentile(rows[~full], [25, 75], axis=1)
    score[enough] = (values[enough] - q3) / np.maximum(q3 - q1, floor)
    return score


def median_past(past: FloatArray, min_history: int) -> FloatArray:
    """The median of each row of ``past`` with at least ``min_history`` finite values (else NaN)."""
    enough = np.isfinite(past).sum(axis=1) >= min_history
    median = np.full(len(past), np.nan)
    if enough.any():
        median[enough] = _row_median(past[enough])
    return median


def _row_median(rows: FloatArray) -> FloatArray:
    """``np.nanmedian(rows, axis=1)`` for rows with at least one value, bit for bit, without its
    per-call masked-array path: sort (NaN last), then the middle value or the mean of the middle two,
    ``(lo + hi) / 2`` as numpy computes it (``tests/unit/core/test_candle_flags.py`` checks equality)."""
    ordered = np.sort(rows, axis=1)
    k = (~np.isnan(rows)).sum(axis=1)
    at = np.arange(len(rows))
    lo = ordered[at, np.maximum((k - 1) // 2, 0)]
    hi = ordered[at, np.minimum(k // 2, rows.shape[1] - 1)]
    with np.errstate(invalid="ignore"):
        even = (lo + hi) / 2.0
    out: FloatArray = np.where(k % 2 == 1, hi, even)
    return out


# The per-bar series whose trailing windows the robust checks use, in this order (the live windows too).
SERIES = ("return", "range", "wick", "log_volume", "volume")


def bar_series(
    o: FloatArray,
    h: FloatArray,
    low: FloatArray,
    c: FloatArray,
    v: FloatArray,
    prev_c: FloatArray,
    new_session: NDArray[np.bool_],
) -> tuple[FloatArray, FloatArray]:
    """The :data:`SERIES` of each bar (5 x n) and its body share; ``prev_c`` is the previous bar's close
    (its return is NaN where ``new_session``: returns never span two sessions)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(c) - np.log(prev_c)
        r[new_session] = np.nan
        rng = np.log(h / low)
        wick = np.maximum(np.log(h / np.maximum(o, c)), np.log(np.minimum(o, c) / low))
        logv = np.log1p(np.maximum(v, 0.0))
        body = np.abs(c - o) / np.where(h > low, h - low, np.nan)
    return np.vstack((r, rng, wick, logv, v.astype(np.float64))), body


def window_statistics(
    series: FloatArray, pasts: Sequence[FloatArray], body: FloatArray, config: CandleCheckConfig
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """The robust checks' statistics of each bar and the anomaly model's inputs (n x 5), from the bars'
    :data:`SERIES` (5 x n) and each series' trailing windows (n x window; views, not copies, in batch)."""
    m = config.min_history
    stats = {
        "return_zscore": robust_z_past(series[0], pasts[0], m, _MIN_RETURN_SCALE),
        "range_iqr": iqr_past(series[1], pasts[1], m, _MIN_RANGE_IQR),
        "wick_iqr": iqr_past(series[2], pasts[2], m, _MIN_RANGE_IQR),
        "volume_spike": robust_z_past(series[3], pasts[3], m, _MIN_VOLUME_SCALE, signed=True),
        "_median_volume": median_past(pasts[4], m),
    }
    x = np.column_stack(
        (
            np.nan_to_num(stats["return_zscore"], nan=0.0),
            np.nan_to_num(stats["range_iqr"], nan=0.0),
            np.nan_to_num(stats["wick_iqr"], nan=0.0),
            np.nan_to_num(stats["volume_spike"], nan=0.0),
            np.nan_to_num(body, nan=0.0),
        )
    )
    return np.clip(x, -50.0, 50.0), stats


@dataclass(frozen=True, slots=True)
class _Columns:
    o: FloatArray
    h: FloatArray
    low: FloatArray
    c: FloatArray
    v: FloatArray
    days: NDArray[np.object_]

    @property
    def new_session(self) -> NDArray[np.bool_]:
        return np.concatenate(([True], self.days[1:] != self.days[:-1]))

    @property
    def prev_c(self) -> FloatArray:
        return np.concatenate(([np.nan], self.c[:-1]))


def _features(cols: _Columns, config: CandleCheckConfig) -> tuple[FloatArray, dict[str, FloatArray]]:
    """The per-bar statistics of the robust checks and the anomaly model's inputs (n x 5)."""
    series, body = bar_series(cols.o, cols.h, cols.low, cols.c, cols.v, cols.prev_c, cols.new_session)
    pasts = [trailing_windows(s, config.window) for s in series]
    return window_statistics(series, pasts, body, config)


def _anomaly_scores(x: FloatArray, days: NDArray[np.object_], config: CandleCheckConfig) -> FloatArray:
    """IsolationForest score per bar; one model per ISO week, fitted on the sessions before the week.

    The week comes from the calendar, not from where the frame starts, so live (a trailing buffer that
    holds the previous sessions) and batch (the whole history) fit the same model for the same week.
    The week models score their bars in one compiled pass (:class:`IsolationPack`, equal to
    ``score_samples`` bit for bit) instead of one scikit-learn call each.
    """
    scores = np.full(len(x), np.nan)
    sessions = _Sessions.of(days)
    pack = IsolationPack()
    scored = np.zeros(len(x), dtype=bool)
    for week in range(len(sessions.weeks)):
        first = sessions.week_of_session.index(week)
        model = _fit_week(x, sessions, first, config)
        if model is None:
            continue
        pack.add(week, model)
        scored |= sessions.week_of_bar == week
    if scored.any():
        scores[scored] = -pack.score(x[scored], sessions.week_of_bar[scored].tolist())
    return scores


@dataclass(frozen=True, slots=True)
class _Sessions:
    """The distinct session days of bars in time order, their distinct ISO weeks, and each session's
    and bar's positions in them (each ISO week computed once per distinct day, not per bar)."""

    days: list[date]
    weeks: list[tuple[int, int]]
    week_of_session: list[int]
    session_of_bar: NDArray[np.int64]
    week_of_bar: NDArray[np.int64]

    @classmethod
    def of(cls, days: NDArray[np.object_]) -> _Sessions:
        distinct, session_of_bar = _first_seen(days)
        weeks: dict[tuple[int, int], int] = {}
        week_of_session = [weeks.setdefault(_iso_week(d), len(weeks)) for d in distinct]
        week_of_bar = np.asarray(week_of_session, dtype=np.int64)[session_of_bar]
        return cls(distinct, list(weeks), week_of_session, session_of_bar, week_of_bar)


def _first_seen(days: NDArray[np.object_]) -> tuple[list[date], NDArray[np.int64]]:
    """The distinct days in order of first appearance and each bar's index into them."""
    distinct: dict[date, int] = {}
    index = np.fromiter(
        (distinct.setdefault(d, len(distinct)) for d in days.tolist()), dtype=np.int64, count=len(days)
    )
    return list(distinct), index


def _fit_week(
    x: FloatArray, sessions: _Sessions, first: int, config: CandleCheckConfig
) -> IsolationForest | None:
    """:func:`fit_week_model` of the week whose first session is ``sessions.days[first]``."""
    if first < config.anomaly_fit_sessions:
        return None
    # The bars of the fit sessions: ``np.isin(days, fit_days)`` by session position, the same rows.
    train = (sessions.session_of_bar >= first - config.anomaly_fit_sessions) & (
        sessions.session_of_bar < first
    )
    if train.sum() < config.anomaly_min_bars:
        return None
    return _fit_forest(x[train], config, sessions.days[first])


def _iso_week(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.year, iso.week


def anomaly_inputs(
    candles: pd.DataFrame, config: CandleCheckConfig
) -> tuple[FloatArray, NDArray[np.object_]]:
    """The anomaly model's inputs per bar (time order) and each bar's IST session day."""
    data = candles.sort_values("time", kind="stable").reset_index(drop=True)
    o, h, low, c, v = (data[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))
    cols = _Columns(o, h, low, c, v, days=np.asarray(ist_days(data["time"])).astype(object))
    x, _ = _features(cols, config)
    return x, cols.days


def fit_week_model(
    x: FloatArray, days: NDArray[np.object_], day: date, config: CandleCheckConfig
) -> IsolationForest | None:
    """The model that scores ``day``'s ISO week: fitted on the ``anomaly_fit_sessions`` sessions of
    ``days`` before the week's first session (None when there are too few)."""
    sessions = _Sessions.of(days)
    week = _iso_week(day)
    if week not in sessions.weeks:
        return None
    return _fit_week(x, sessions, sessions.week_of_session.index(sessions.weeks.index(week)), config)


def fit_sessions_model(
    sessions: Sequence[tuple[date, FloatArray]], day: date, config: CandleCheckConfig
) -> IsolationForest | None:
    """:func:`fit_week_model` from per-session anomaly inputs (``(session day, rows)`` in time order,
    ``day``'s own session included or not): the same sessions, rows and seed, so the same model."""
    session_days = [d for d, _ in sessions]
    if day not in session_days:
        session_days.append(day)
    week = _iso_week(day)
    first = next((k for k, d in enumerate(session_days) if _iso_week(d) == week), None)
    if first is None or first < config.anomaly_fit_sessions:
        return None
    rows = [x for _, x in sessions[first - config.anomaly_fit_sessions : first]]
    train = np.concatenate(rows) if rows else np.zeros((0, 5))
    if len(train) < config.anomaly_min_bars:
        return None
    return _fit_forest(train, config, session_days[first])


def fit_compiled_model(
    sessions: Sequence[tuple[date, FloatArray]], day: date, config: CandleCheckConfig
) -> CompiledForest | None:
    """:func:`fit_sessions_model`'s forest in its compiled, scikit-learn-free form (what scoring reads):
    a process that fits in a child gets these arrays back and never imports scikit-learn itself."""
    model = fit_sessions_model(sessions, day, config)
    return None if model is None else compile_forest(model)


def _fit_forest(train: FloatArray, config: CandleCheckConfig, day: date) -> IsolationForest:
    # Seeded per session so a session's model is the same whether it is fitted in batch or live. The
    # lean fit is scikit-learn's fit without its per-tree overhead: the same trees (core/isolation_fit.py).
    # Imported here: scikit-learn (about 50 MB resident with scipy.stats) only where a forest is fitted.
    from tickwise.core.isolation_fit import fit_isolation_forest

    return fit_isolation_forest(
        train,
        n_estimators=config.anomaly_trees,
        max_samples=min(256, len(train)),
        random_state=(config.seed * 1_000_003 + day.toordinal()) % (2**31),
    )


@dataclass(frozen=True, slots=True)
class BarArrays:
    """n bars as arrays, with what each check needs of the bar before it (``prev_*``: the previous bar
    of the same instrument, NaN and ``has_prev`` False for an instrument's first bar)."""

    o: FloatArray
    h: FloatArray
    low: FloatArray
    c: FloatArray
    v: FloatArray
    prev: FloatArray  # 5 x n: open, high, low, close, volume of the previous bar
    has_prev: NDArray[np.bool_]
    first_of_session: NDArray[np.bool_]  # has a previous bar, on an earlier session day


def fired_checks(
    bars: BarArrays,
    stats: dict[str, FloatArray],
    config: CandleCheckConfig,
    in_hours: NDArray[np.bool_] | None,
    anomaly: FloatArray | None,
) -> dict[str, tuple[NDArray[np.bool_], FloatArray]]:
    """Per check, which bars it flags and their scores (``in_hours``: None for daily bars; ``anomaly``:
    the model scores, None when the model is off)."""
    n = len(bars.o)
    fired: dict[str, tuple[NDArray[np.bool_], FloatArray]] = {}
    with np.errstate(invalid="ignore"):
        prices = np.vstack([bars.o, bars.h, bars.low, bars.c])
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0) | (bars.h < bars.low)
        bad |= (bars.o < bars.low) | (bars.o > bars.h) | (bars.c < bars.low) | (bars.c > bars.h)
        bad |= ~np.isfinite(bars.v) | (bars.v < 0)
    fired["ohlc_inconsistent"] = (bad, np.ones(n))
    if in_hours is not None:
        fired["market_hours"] = (~in_hours, np.ones(n))
    with np.errstate(invalid="ignore"):
        fired["return_zscore"] = (stats["return_zscore"] > config.return_z, stats["return_zscore"])
        fired["range_iqr"] = (stats["range_iqr"] > config.range_iqr, stats["range_iqr"])
        fired["wick_iqr"] = (stats["wick_iqr"] > config.wick_iqr, stats["wick_iqr"])
        fired["volume_spike"] = (stats["volume_spike"] > config.volume_z, stats["volume_spike"])
        fired["zero_volume"] = ((bars.v == 0) & (stats["_median_volume"] > 0), np.ones(n))
    now = np.vstack([bars.o, bars.h, bars.low, bars.c, bars.v])
    same = bars.has_prev & (now == bars.prev).all(axis=0) & (bars.v > 0)
    fired["stale"] = (same, np.ones(n))
    gap = np.full(n, np.nan)
    first = bars.first_of_session
    with np.errstate(divide="ignore", invalid="ignore"):
        gap[first] = np.abs(np.log(bars.o[first] / bars.prev[3][first]))
        fired["session_gap"] = (gap > config.session_gap, gap)
    if anomaly is not None:
        with np.errstate(invalid="ignore"):
            fired["anomaly"] = (anomaly > config.anomaly_threshold, anomaly)
    return fired


def flag_rows(
    tokens: NDArray[np.int64],
    times: pd.Series | pd.DatetimeIndex,
    fired: dict[str, tuple[NDArray[np.bool_], FloatArray]],
    timeframe: Timeframe,
) -> pd.DataFrame:
    """The :data:`FLAG_COLUMNS` rows of ``fired`` (check order of :data:`CHECKS`), unsorted."""
    parts = []
    when = pd.DatetimeIndex(times)
    for check in CHECKS:
        if check not in fired:
            continue
        mask, score = fired[check]
        idx = np.flatnonzero(mask)
        if len(idx):
            parts.append(
                pd.DataFrame(
                    {
                        "instrument_token": tokens[idx],
                        "timeframe": timeframe.value,
                        "time": when[idx],
                        "check": check,
                        "score": np.round(np.nan_to_num(score[idx], nan=1.0, posinf=1e9, neginf=-1e9), 6),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    flags = pd.concat(parts, ignore_index=True)
    flags["time"] = pd.to_datetime(flags["time"], utc=True)
    return flags


def in_market_hours(
    times: pd.Series, days: NDArray[np.object_], timeframe: Timeframe, calendar: SessionCalendar
) -> NDArray[np.bool_]:
    """Whether each bar opens inside a session of ``calendar`` (on a trading day)."""
    _, in_session = bucket_times(times, timeframe, calendar)
    trading_days = {d: calendar.is_trading_day(d) for d in dict.fromkeys(days.tolist())}
    trading = np.array([trading_days[d] for d in days], dtype=bool)
    out: NDArray[np.bool_] = in_session & trading
    return out


def flag_candles(
    candles: pd.DataFrame,
    config: CandleCheckConfig | None = None,
    calendar: SessionCalendar = NSE,
    *,
    instrument_token: int | None = None,
    timeframe: Timeframe = Timeframe.M1,
) -> pd.DataFrame:
    """Flags of one instrument's candles (columns ``time, open, high, low, close, volume``), one row per
    (bar, check) that fired, with :data:`FLAG_COLUMNS`. Rows are sorted by time first; every flag
    depends only on the bar and earlier bars of ``candles`` (see the module doc)."""
    config = config or CandleCheckConfig()
    if candles.empty:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    data = candles.sort_values("time", kind="stable").reset_index(drop=True)
    token = instrument_token if instrument_token is not None else int(data["instrument_token"].iloc[0])
    o, h, low, c, v = (data[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close", "volume"))
    cols = _Columns(o, h, low, c, v, days=np.asarray(ist_days(data["time"])).astype(object))
    n = len(data)
    now = np.vstack([o, h, low, c, v])
    prev = np.concatenate((np.full((5, 1), np.nan), now[:, :-1]), axis=1)
    has_prev = np.arange(n) > 0
    bars = BarArrays(o, h, low, c, v, prev, has_prev, has_prev & cols.new_session)
    in_hours = (
        None if timeframe is Timeframe.D1 else in_market_hours(data["time"], cols.days, timeframe, calendar)
    )
    x, stats = _features(cols, config)
    scores = _anomaly_scores(x, cols.days, config) if config.anomaly else None
    fired = fired_checks(bars, stats, config, in_hours, scores)
    flags = flag_rows(np.full(n, token, dtype=np.int64), data["time"], fired, timeframe)
    return flags.sort_values(["time", "check"], kind="stable").reset_index(drop=True)


def with_actions(flags: pd.DataFrame, config: CandleCheckConfig) -> pd.DataFrame:
    """``flags`` plus the ``action`` column the policy gives each check (``excluded`` or ``kept``)."""
    out = flags.copy()
    out["action"] = [config.action(str(c)) for c in out["check"]] if len(out) else pd.Series(dtype=object)
    return out


def exclude_flagged(frame: pd.DataFrame, flags: pd.DataFrame, *, time_column: str = "time") -> pd.DataFrame:
    """``frame`` without the rows whose time has a flag with action ``excluded`` (the labels and
    training filter of the data-quality policy)."""
    if frame.empty or flags.empty:
        return frame
    excluded = flags.loc[flags["action"] == "excluded", "time"]
    if excluded.empty:
        return frame
    drop = utc_nanoseconds(frame[time_column])
    keep = ~np.isin(drop, utc_nanoseconds(excluded))
    return frame[keep]


def exclude_labels(labels: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """``labels`` without the events whose window ``[time, t1]`` holds an excluded bar: a bad print
    inside the barrier window would decide the label as surely as one at the entry."""
    if labels.empty or flags.empty:
        return labels
    excluded = np.sort(utc_nanoseconds(flags.loc[flags["action"] == "excluded", "time"]))
    if not len(excluded):
        return labels
    t0 = utc_nanoseconds(labels["time"])
    t1 = utc_nanoseconds(labels["t1"]) if "t1" in labels else t0
    inside = np.searchsorted(excluded, t1, side="right") - np.searchsorted(excluded, t0, side="left")
    return labels[inside == 0]
