"""Performance of a list of trades: the series a report draws and the summary a run records.

Definitions (rupees unless stated; "return" = rupees / starting capital):

- ``daily_pnl``: net PnL per IST session day, by the day a trade closed; every session with prices
  counts, with 0 when nothing closed (a day with no trade is a day of zero return, not a missing day).
- ``sharpe`` = mean / standard deviation (ddof 1) of daily returns x sqrt(252); ``sortino`` = mean /
  downside deviation (root mean square of the negative daily returns, zeros included) x sqrt(252).
- ``max_drawdown``: the largest fall of realized equity below its running peak, as a fraction of the
  peak (trade by trade); ``max_drawdown_sessions``: the longest run of sessions whose closing equity
  stayed below an earlier peak.
- ``hit_rate``: share of trades with net > 0; ``avg_win``/``avg_loss``: mean net of winners / losers;
  ``profit_factor`` = sum of winning nets / |sum of losing nets|.
- ``turnover``: bought + sold value (fills); ``costs_share_of_gross`` = (charges + slippage) / gross
  when gross > 0.
- ``exposure``: share of session minutes (375 per session) with at least one position open.
- ``by_confidence_decile``: trades split into ten equal-count groups by the signal's confidence; per
  group the mean confidence, the hit rate (net > 0) and the profit-target rate (exit ``pt``), which is
  what the confidence claims to predict (calibration).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tickwise.core.trading.trade import EXIT_REASONS, EquityPoint, Trade
from tickwise.domain.trade_record import TRADE_RECORD_COLUMNS

SESSIONS_PER_YEAR = 252
SESSION_MINUTES = 375

TRADE_COLUMNS = (*TRADE_RECORD_COLUMNS, "buy_value", "sell_value")
MONEY_COLUMNS = (
    "gross",
    "brokerage",
    "stt",
    "exchange",
    "sebi",
    "stamp",
    "gst",
    "slippage",
    "net",
    "buy_value",
    "sell_value",
)


def trades_frame(trades: Sequence[Trade]) -> pd.DataFrame:
    """Trades as a frame (money as float rupees), one row per trade, in the order given."""
    rows = {col: [getattr(t, col) for t in trades] for col in TRADE_COLUMNS}
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    for col in MONEY_COLUMNS:
        frame[col] = frame[col].astype(np.float64)
    return frame


def equity_frame(points: Sequence[EquityPoint]) -> pd.DataFrame:
    """The equity curve (``time``, ``equity``, ``drawdown``), sorted by time."""
    frame = pd.DataFrame(
        {
            "time": [p.time for p in points],
            "equity": [float(p.equity) for p in points],
            "drawdown": [p.drawdown for p in points],
        }
    )
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def daily_pnl(trades: pd.DataFrame, days: Sequence[date]) -> pd.Series:
    """Net PnL per session day (``days``), by the IST day each trade closed; 0 on days without exits."""
    index = pd.Index(sorted(set(days)), name="day")
    if trades.empty:
        return pd.Series(0.0, index=index, name="net")
    exit_day = pd.to_datetime(trades["exit_time"], utc=True).dt.tz_convert("Asia/Kolkata").dt.date
    sums = trades["net"].groupby(exit_day.to_numpy()).sum()
    return sums.reindex(index.union(pd.Index(sums.index)), fill_value=0.0).rename("net")


def monthly_returns(daily: pd.Series, capital: float) -> pd.DataFrame:
    """Return on capital per calendar month: rows years, columns months 1..12 (NaN without sessions)."""
    if daily.empty:
        return pd.DataFrame(columns=list(range(1, 13)), dtype=np.float64)
    idx = pd.to_datetime(pd.Index(daily.index))
    frame = pd.DataFrame({"year": idx.year, "month": idx.month, "ret": daily.to_numpy() / capital})
    table = frame.groupby(["year", "month"])["ret"].sum().unstack("month")
    return table.reindex(columns=list(range(1, 13)))


def confidence_deciles(trades: pd.DataFrame, groups: int = 10) -> list[dict[str, float]]:
    """Hit rate and profit-target rate per equal-count confidence group (fewer groups on ties/few trades)."""
    if trades.empty:
        return []
    conf = trades["confidence"].to_numpy(dtype=np.float64)
    order = np.argsort(conf, kind="stable")
    out = []
    for i, chunk in enumerate(np.array_split(order, min(groups, len(order)))):
        if len(chunk) == 0:
            continue
        sub = trades.iloc[chunk]
        out.append(
            {
                "decile": float(i + 1),
                "trades": float(len(sub)),
                "confidence_min": float(sub["confidence"].min()),
                "confidence_max": float(sub["confidence"].max()),
                "confidence_mean": float(sub["confidence"].mean()),
                "hit_rate": float((sub["net"] > 0).mean()),
                "pt_rate": float((sub["exit_reason"] == "pt").mean()),
                "net": float(sub["net"].sum()),
            }
        )
    return out


def max_drawdown(equity: pd.DataFrame) -> float:
    """Largest fall below the running peak, as a fraction of the peak (0 when equity never fell)."""
    if equity.empty:
        return 0.0
    values = equity["equity"].to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(values)
    return float(-(values / peak - 1.0).min())


def drawdown_sessions(daily: pd.Series, capital: float) -> int:
    """The longest run of sessions whose closing equity stayed below an earlier peak."""
    closing = capital + daily.cumsum().to_numpy(dtype=np.float64)
    peak = capital
    run = longest = 0
    for value in closing:
        if value < peak:
            run += 1
            longest = max(longest, run)
        else:
            peak, run = value, 0
    return longest


def exposure(trades: pd.DataFrame, sessions: int) -> float:
    """Share of session minutes with at least one position open (union of trade intervals)."""
    if trades.empty or sessions == 0:
        return 0.0
    spans = sorted(zip(trades["entry_time"], trades["exit_time"], strict=True))
    covered = timedelta(0)
    start, end = spans[0]
    for s, e in spans[1:]:
        if s > end:
            covered += end - start
            start, end = s, e
        else:
            end = max(end, e)
    covered += end - start
    return min(1.0, float(covered / timedelta(minutes=SESSION_MINUTES * sessions)))


def summarize(
    trades: Sequence[Trade], equity: Sequence[EquityPoint], days: Sequence[date], capital: float
) -> dict[str, Any]:
    """The run's summary metrics (JSON-ready: floats, ints, None for undefined, lists of dicts)."""
    frame = trades_frame(trades)
    curve = equity_frame(equity)
    daily = daily_pnl(frame, days)
    returns = daily.to_numpy(dtype=np.float64) / capital
    net = frame["net"].to_numpy(dtype=np.float64)
    gross = float(frame["gross"].sum())
    charges = float(frame[["brokerage", "stt", "exchange", "sebi", "stamp", "gst"]].to_numpy().sum())
    slippage = float(frame["slippage"].sum())
    wins, losses = net[net > 0], net[net <= 0]
    sessions = len(daily)
    std = float(returns.std(ddof=1)) if sessions > 1 else float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if sessions else float("nan")
    mean = float(returns.mean()) if sessions else float("nan")
    annual = math.sqrt(SESSIONS_PER_YEAR)
    result: dict[str, Any] = {
        "capital": capital,
        "trades": len(frame),
        "sessions": sessions,
        "net_pnl": float(net.sum()),
        "gross_pnl": gross,
        "charges": charges,
        "slippage": slippage,
        "return_on_capital": float(net.sum()) / capital,
        "sharpe": mean / std * annual if std > 0 else None,
        "sortino": mean / downside * annual if downside > 0 else None,
        "max_drawdown": max_drawdown(curve),
        "max_drawdown_sessions": drawdown_sessions(daily, capital),
        "hit_rate": float((net > 0).mean()) if len(net) else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) and losses.sum() < 0 else None,
        "turnover": float(frame["buy_value"].sum() + frame["sell_value"].sum()),
        "costs_share_of_gross": (charges + slippage) / gross if gross > 0 else None,
        "exposure": exposure(frame, sessions),
        "trades_per_day": len(frame) / sessions if sessions else 0.0,
        "exit_reasons": {r: int((frame["exit_reason"] == r).sum()) for r in EXIT_REASONS},
        "by_confidence_decile": confidence_deciles(frame),
    }
    return {k: _finite(v) for k, v in result.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
