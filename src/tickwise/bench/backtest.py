"""Benchmark of the trade engine on demo-sized data (11 instruments x 60 sessions of 1-minute bars).

The data are synthetic and in memory (random walks; 40 % of bars carry a signal, about the share in the
demo data of `tickwise historical`), so the figure is the engine's own cost: candle frame -> price
events -> engine -> trades, plus the summary metrics. The loss limits are off: random signals lose their
costs and would halt most days early, leaving the engine idle. A backtest over the database adds the
reads of signals and candles.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from tickwise.core.trading import EngineConfig, RiskLimits, TradeEngine, TradeSignal, barrier_signal
from tickwise.core.trading.metrics import summarize
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST
from tickwise.pipelines.backtest.inputs import price_events
from tickwise.pipelines.backtest.run import replay

BARS = 375


def synthetic_market(
    instruments: int, sessions: int, signal_share: float, seed: int
) -> tuple[pd.DataFrame, list[TradeSignal]]:
    """1-minute random-walk candles per instrument and signals on ``signal_share`` of the bars."""
    rng = np.random.default_rng(seed)
    days = NSE.trading_days(date(2026, 9, 1), date(2026, 12, 31))[:sessions]
    opens = [datetime(d.year, d.month, d.day, 9, 15, tzinfo=IST) for d in days]
    times = pd.DatetimeIndex([o + timedelta(minutes=m) for o in opens for m in range(BARS)])
    frames, signals = [], []
    for k in range(instruments):
        token = 1000 + k
        n = len(times)
        close = 500.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
        open_ = np.concatenate(([close[0]], close[:-1]))
        wick = np.abs(rng.normal(0.0, 0.0005, n)) * close
        high, low = np.maximum(open_, close) + wick, np.minimum(open_, close) - wick
        frames.append(
            pd.DataFrame(
                {
                    "instrument_token": token,
                    "time": times,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                }
            )
        )
        atr = 0.0015 * close
        for i in np.flatnonzero(rng.random(n) < signal_share):
            t = times[i].to_pydatetime()
            signals.append(
                barrier_signal(
                    instrument_token=token,
                    time=t,
                    available_at=t + timedelta(minutes=1),
                    direction=int(rng.choice((-1, 1))),
                    confidence=float(rng.uniform(0.55, 0.8)),
                    size=0.05,
                    model_version="bench",
                    reference_close=float(close[i]),
                    atr=float(atr[i]),
                    k_pt=2.0,
                    k_sl=1.5,
                    horizon_bars=10,
                )
            )
    return pd.concat(frames, ignore_index=True), signals


def run_backtest_bench(
    instruments: int = 11, sessions: int = 60, signal_share: float = 0.4, seed: int = 7
) -> dict[str, float | int]:
    """Time one engine run over the synthetic market; return bars/s, signals/s and trades/s."""
    bars, signals = synthetic_market(instruments, sessions, signal_share, seed)
    config = EngineConfig(limits=RiskLimits(daily_loss_limit=None, max_drawdown=None))
    engine = TradeEngine(config)
    started = time.perf_counter()
    n_bars = replay(engine, signals, price_events(bars))
    engine_s = time.perf_counter() - started
    summarize(engine.trades, engine.equity, engine.days, config.limits.capital)
    total_s = time.perf_counter() - started
    return {
        "instruments": instruments,
        "sessions": sessions,
        "bars": n_bars,
        "signals": len(signals),
        "trades": len(engine.trades),
        "seconds": round(total_s, 3),
        "engine_seconds": round(engine_s, 3),
        "bars_per_second": round(n_bars / total_s),
        "signals_per_second": round(len(signals) / total_s),
        "trades_per_second": round(len(engine.trades) / total_s),
    }
