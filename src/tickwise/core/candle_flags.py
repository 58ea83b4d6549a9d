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

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from tickwise.core.aggregation import bucket_times, ist_days, utc_nanoseconds
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe

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


def _trailing(values: FloatArray, window: int) -> FloatArray:
    """Row ``t`` holds ``values[t - window .. t - 1]`` (NaN before the start): the strict past of ``t``."""
    padded = np.concatenate((np.full(window, np.nan), values))
    view: FloatArray = sliding_window_view(padded[:-1], window)
    return view


def _robust_z(values: FloatArray, window: int, min_history: int, floor: float) -> FloatArray:
    past = _trailing(values, window)
    enough = np.isfinite(past).sum(axis=1) >= min_history
    z = np.full(len(values), np.nan)
    if not enough.any():
        return z
    rows = past[enough]
    med = np.nanmedian(rows, axis=1)
    mad = np.nanmedian(np.abs(rows - med[:, None]), axis=1)
    z[enough] = np.abs(values[enough] - med) / np.maximum(_MAD_SCALE * mad, floor)
    return z


def _iqr_score(values: FloatArray, window: int, min_history: int, floor: float) -> FloatArray:
    past = _trailing(values, window)
    enough = np.isfinite(past).sum(axis=1) >= min_history
    score = np.full(len(values), np.nan)
    if not enough.any():
        return score
    q1, q3 = np.nanpercentile(past[enough], [25, 75], axis=1)
    score[enough] = (values[enough] - q3) / np.maximum(q3 - q1, floor)
    return score


@dataclass(frozen=True, slots=True)
class _Columns:
    o: FloatArray
    h: FloatArray
    low: FloatArray
    c: FloatArray
    v: FloatArray
    days: NDArray[np.object_]


def _features(cols: _Columns, config: CandleCheckConfig) -> tuple[FloatArray, dict[str, FloatArray]]:
    """The per-bar statistics of the robust checks and the anomaly model's inputs (n x 5)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_c = np.log(cols.c)
        r = np.concatenate(([np.nan], np.diff(log_c)))
        new_session = np.concatenate(([True], cols.days[1:] != cols.days[:-1]))
        r[new_session] = np.nan
        rng = np.log(cols.h / cols.low)
        wick = np.maximum(
            np.log(cols.h / np.maximum(cols.o, cols.c)), np.log(np.minimum(cols.o, cols.c) / cols.low)
        )
        logv = np.log1p(np.maximum(cols.v, 0.0))
        body = np.abs(cols.c - cols.o) / np.where(cols.h > cols.low, cols.h - cols.low, np.nan)
    w, m = config.window, config.min_history
    stats = {
        "return_zscore": _robust_z(r, w, m, _MIN_RETURN_SCALE),
        "range_iqr": _iqr_score(rng, w, m, _MIN_RANGE_IQR),
        "wick_iqr": _iqr_score(wick, w, m, _MIN_RANGE_IQR),
        "volume_spike": _signed_robust_z(logv, w, m, _MIN_VOLUME_SCALE),
    }
    past_v = _trailing(cols.v.astype(np.float64), w)
    enough = np.isfinite(past_v).sum(axis=1) >= m
    median_volume = np.full(len(cols.v), np.nan)
    if enough.any():
        median_volume[enough] = np.nanmedian(past_v[enough], axis=1)
    stats["_median_volume"] = median_volume
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


def _signed_robust_z(values: FloatArray, window: int, min_history: int, floor: float) -> FloatArray:
    """Like :func:`_robust_z` but keeps the sign (a volume *spike* is only an upward move)."""
    past = _trailing(values, window)
    enough = np.isfinite(past).sum(axis=1) >= min_history
    z = np.full(len(values), np.nan)
    if not enough.any():
        return z
    rows = past[enough]
    med = np.nanmedian(rows, axis=1)
    mad = np.nanmedian(np.abs(rows - med[:, None]), axis=1)
    z[enough] = (values[enough] - med) / np.maximum(_MAD_SCALE * mad, floor)
    return z


def _anomaly_scores(x: FloatArray, days: NDArray[np.object_], config: CandleCheckConfig) -> FloatArray:
    """IsolationForest score per bar; one model per ISO week, fitted on the sessions before the week.

    The week comes from the calendar, not from where the frame starts, so live (a trailing buffer that
    holds the previous sessions) and batch (the whole history) fit the same model for the same week.
    """
    scores = np.full(len(x), np.nan)
    seen: set[tuple[int, int]] = set()
    for day in dict.fromkeys(days.tolist()):
        week = _iso_week(day)
        if week in seen:
            continue
        seen.add(week)
        model = fit_week_model(x, days, day, config)
        if model is None:
            continue
        mask = np.array([_iso_week(d) == week for d in days], dtype=bool)
        scores[mask] = -model.score_samples(x[mask])
    return scores


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
    session_days: list[date] = list(dict.fromkeys(days.tolist()))
    week = _iso_week(day)
    first = next((k for k, d in enumerate(session_days) if _iso_week(d) == week), None)
    if first is None or first < config.anomaly_fit_sessions:
        return None
    fit_days = np.array(session_days[first - config.anomaly_fit_sessions : first], dtype=object)
    train = np.isin(days, fit_days)
    if train.sum() < config.anomaly_min_bars:
        return None
    return _fit_forest(x[train], config, session_days[first])


def _fit_forest(train: FloatArray, config: CandleCheckConfig, day: date) -> IsolationForest:
    # Seeded per session so a session's model is the same whether it is fitted in batch or live.
    model = IsolationForest(
        n_estimators=config.anomaly_trees,
        max_samples=min(256, len(train)),
        random_state=(config.seed * 1_000_003 + day.toordinal()) % (2**31),
    )
    model.fit(train)
    return model


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
    fired: dict[str, tuple[NDArray[np.bool_], FloatArray]] = {}
    with np.errstate(invalid="ignore"):
        prices = np.vstack([cols.o, cols.h, cols.low, cols.c])
        bad = ~np.isfinite(prices).all(axis=0) | (prices <= 0).any(axis=0) | (cols.h < cols.low)
        bad |= (cols.o < cols.low) | (cols.o > cols.h) | (cols.c < cols.low) | (cols.c > cols.h)
        bad |= ~np.isfinite(cols.v) | (cols.v < 0)
    fired["ohlc_inconsistent"] = (bad, np.ones(n))
    if timeframe is not Timeframe.D1:
        _, in_session = bucket_times(data["time"], timeframe, calendar)
        trading = np.array([calendar.is_trading_day(d) for d in cols.days], dtype=bool)
        fired["market_hours"] = (~(in_session & trading), np.ones(n))
    x, stats = _features(cols, config)
    with np.errstate(invalid="ignore"):
        fired["return_zscore"] = (stats["return_zscore"] > config.return_z, stats["return_zscore"])
        fired["range_iqr"] = (stats["range_iqr"] > config.range_iqr, stats["range_iqr"])
        fired["wick_iqr"] = (stats["wick_iqr"] > config.wick_iqr, stats["wick_iqr"])
        fired["volume_spike"] = (stats["volume_spike"] > config.volume_z, stats["volume_spike"])
        fired["zero_volume"] = ((cols.v == 0) & (stats["_median_volume"] > 0), np.ones(n))
    same = np.zeros(n, dtype=bool)
    if n > 1:
        now = np.vstack([cols.o, cols.h, cols.low, cols.c, cols.v])
        same[1:] = (now[:, 1:] == now[:, :-1]).all(axis=0) & (cols.v[1:] > 0)
    fired["stale"] = (same, np.ones(n))
    gap = np.full(n, np.nan)
    first_of_session = np.concatenate(([False], cols.days[1:] != cols.days[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap[first_of_session] = np.abs(
            np.log(cols.o[first_of_session] / np.roll(cols.c, 1)[first_of_session])
        )
        fired["session_gap"] = (gap > config.session_gap, gap)
    if config.anomaly:
        scores = _anomaly_scores(x, cols.days, config)
        with np.errstate(invalid="ignore"):
            fired["anomaly"] = (scores > config.anomaly_threshold, scores)
    parts = []
    for check in CHECKS:
        if check not in fired:
            continue
        mask, score = fired[check]
        idx = np.flatnonzero(mask)
        if len(idx):
            parts.append(
                pd.DataFrame(
                    {
                        "instrument_token": token,
                        "timeframe": timeframe.value,
                        "time": data["time"].iloc[idx].to_numpy(),
                        "check": check,
                        "score": np.round(np.nan_to_num(score[idx], nan=1.0, posinf=1e9, neginf=-1e9), 6),
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=FLAG_COLUMNS)
    flags = pd.concat(parts, ignore_index=True)
    flags["time"] = pd.to_datetime(flags["time"], utc=True)
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
