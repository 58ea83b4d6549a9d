"""`tickwise bench checks`: the live candle checks of one closed minute across many instruments.

Figures (one JSON-able dict):

- ``minute_ms_p50/p99/max`` and ``minute_cpu_ms_p50``: one ``LiveCandleChecker.check_minute`` of the
  ``instruments`` bars that closed a minute (robust checks and the anomaly model), over ``minutes``
  consecutive minutes;
- ``baseline_bar_ms_p50``: the previous live path, per bar and instrument, measured here on a sample
  of ``baseline_sample`` instruments (``flag_candles`` on the trailing 122 bars and one
  ``IsolationForest.score_samples`` call per bar), and ``baseline_minute_ms`` = that x ``instruments``
  (an extrapolation: the old path was strictly instrument by instrument);
- ``seed_s`` / ``prepare_s``: seeding the instruments from their history and fitting the week's models
  (before the session, off the hot path), ``checker_mb``: the arrays the checker holds;
- ``flags_equal_batch``: the live flags of ``verify`` instruments equal ``flag_candles`` over their
  whole history, row for row (the bench refuses to report a fast wrong answer).

The data: ``history_sessions`` sessions of synthetic 1m candles per instrument (random walk, volume,
about one bad print per 250 bars: spikes, zero-volume and repeated bars), then the live session, the
first session of the next ISO week, so its models are fitted on the sessions before it.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.candle_flags import (
    CandleCheckConfig,
    anomaly_inputs,
    fit_week_model,
    flag_candles,
    with_actions,
)
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.candle_checks import LiveCandleChecker

SESSION_BARS = 375
# A Monday: the live session starts a new ISO week, as a session after a weekend does.
LIVE_DAY = date(2026, 11, 23)


def session_days(history_sessions: int) -> list[date]:
    days = NSE.trading_days(date(2026, 9, 1), LIVE_DAY)
    return days[-(history_sessions + 1) :]


def synthetic_session_candles(days: list[date], seed: int, bad_every: int = 250) -> pd.DataFrame:
    """1m candles of ``days`` (09:15-15:29 IST) for one instrument, with injected bad prints."""
    rng = np.random.default_rng(seed)
    opens = [pd.Timestamp(datetime.combine(d, NSE.open_time, tzinfo=IST)).value for d in days]
    minute_ns = 60_000_000_000
    t = (np.asarray(opens)[:, None] + np.arange(SESSION_BARS)[None, :] * minute_ns).ravel()
    n = len(t)
    close = 500.0 * np.exp(np.cumsum(rng.normal(0.0, 6e-4, n)))
    opn = np.r_[close[0], close[:-1]]
    high = np.maximum(opn, close) * np.exp(np.abs(rng.normal(0.0, 3e-4, n)))
    low = np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0.0, 3e-4, n)))
    volume = np.round(rng.gamma(2.0, 800.0, n)) + 1.0
    bad = np.flatnonzero(rng.random(n) < 1.0 / bad_every)
    bad = bad[(bad % SESSION_BARS) > 1]
    for k, i in enumerate(bad):
        kind = k % 3
        if kind == 0:
            high[i] *= 1.0 + rng.uniform(0.02, 0.08)
        elif kind == 1:
            opn[i] = high[i] = low[i] = close[i] = close[i - 1]
            volume[i] = 0.0
        else:
            opn[i], high[i], low[i], close[i], volume[i] = (
                opn[i - 1],
                high[i - 1],
                low[i - 1],
                close[i - 1],
                volume[i - 1],
            )
    return pd.DataFrame(
        {
            "time": pd.to_datetime(t, utc=True),
            "open": opn,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def _bar(token: int, row: tuple[Any, ...]) -> Bar:
    return Bar(
        Candle(
            token,
            Timeframe.M1,
            pd.Timestamp(row[0]).to_pydatetime(),
            float(row[1]),
            float(row[2]),
            float(row[3]),
            float(row[4]),
            int(row[5]),
            source="live",
        )
    )


def _baseline_bar_seconds(
    frame: pd.DataFrame, split: int, minutes: int, config: CandleCheckConfig
) -> list[float]:
    """CPU seconds per bar of the previous live path (one instrument, bar by bar)."""
    robust = CandleCheckConfig(**{**_fields(config), "anomaly": False})
    x, days = anomaly_inputs(frame.iloc[:split], config)
    model = fit_week_model(x, days, LIVE_DAY, config)
    out = []
    for k in range(split, split + minutes):
        started = time.process_time()
        tail = frame.iloc[k - config.history_bars : k + 1]
        flag_candles(tail, robust, instrument_token=1)
        if model is not None:
            x_tail, _ = anomaly_inputs(tail, config)
            model.score_samples(x_tail[-1:])
        out.append(time.process_time() - started)
    return out


def _fields(config: CandleCheckConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in config.__dataclass_fields__}


def run_checks_bench(
    instruments: int = 1000,
    minutes: int = 10,
    history_sessions: int = 6,
    baseline_sample: int = 20,
    verify: int = 3,
) -> dict[str, Any]:
    if instruments < 1 or minutes < 1 or history_sessions < 1:
        raise ValueError("instruments, minutes and history_sessions must be >= 1")
    config = CandleCheckConfig()
    days = session_days(history_sessions)
    split = history_sessions * SESSION_BARS
    frames = {token: synthetic_session_candles(days, seed=token) for token in range(1, instruments + 1)}
    checker = LiveCandleChecker(config)
    started = time.perf_counter()
    for token, frame in frames.items():
        checker.seed(token, frame.iloc[:split])
    seed_s = time.perf_counter() - started
    started = time.perf_counter()
    with_model = checker.prepare(LIVE_DAY)
    prepare_s = time.perf_counter() - started
    # One bar per instrument and minute, built before timing (the sink receives built bars).
    columns = ["time", "open", "high", "low", "close", "volume"]
    rows = {
        t: list(f.iloc[split : split + minutes].loc[:, columns].itertuples(index=False))
        for t, f in frames.items()
    }
    minute_bars = [[_bar(t, rows[t][m]) for t in frames] for m in range(minutes)]
    wall, cpu, flagged = [], [], []
    for bars in minute_bars:
        t0, c0 = time.perf_counter(), time.process_time()
        flags = checker.check_minute(bars)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
        flagged.append(flags)
    live = (
        pd.concat([f for f in flagged if len(f)], ignore_index=True) if any(len(f) for f in flagged) else None
    )
    equal = True
    for token in list(frames)[:verify]:
        frame = frames[token].iloc[: split + minutes]
        batch = with_actions(flag_candles(frame, config, instrument_token=token), config)
        want = batch[batch["time"] >= frame["time"].iloc[split]].reset_index(drop=True)
        got = (
            live[live["instrument_token"] == token].reset_index(drop=True)
            if live is not None
            else want.iloc[0:0]
        )
        key = ["time", "check", "action"]
        equal &= got[key].astype(str).equals(want[key].astype(str)) and (
            got["score"].tolist() == want["score"].tolist()
        )
    sample = list(frames)[: min(baseline_sample, instruments)]
    base = [s for t in sample for s in _baseline_bar_seconds(frames[t], split, min(minutes, 3), config)]
    base_ms = float(np.median(base) * 1000.0)
    return {
        "instruments": instruments,
        "minutes": minutes,
        "history_sessions": history_sessions,
        "bars_per_minute": instruments,
        "minute_ms_p50": round(float(np.percentile(wall, 50)), 3),
        "minute_ms_p99": round(float(np.percentile(wall, 99)), 3),
        "minute_ms_max": round(max(wall), 3),
        "minute_cpu_ms_p50": round(float(np.percentile(cpu, 50)), 3),
        "minute_ms_samples": [round(w, 2) for w in wall],
        "flags": int(sum(len(f) for f in flagged)),
        "flags_equal_batch": bool(equal),
        "verified_instruments": min(verify, instruments),
        "baseline_bar_ms_p50": round(base_ms, 3),
        "baseline_sample_instruments": len(sample),
        "baseline_minute_ms": round(base_ms * instruments, 1),
        "speedup": round(base_ms * instruments / float(np.percentile(cpu, 50)), 1),
        "seed_s": round(seed_s, 2),
        "prepare_s": round(prepare_s, 2),
        "instruments_with_model": with_model,
        "checker_mb": round(checker.state.nbytes / 1e6, 1),
    }
