"""Roll stored 1-minute candles up to the higher timeframes (session-aligned, ``core.aggregation``).

Idempotent: rolled-up candles are upserted, so a re-run rewrites identical rows and a session that was
incomplete before (killed backfill) is corrected once its 1-minute candles are complete.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from tickwise.core.aggregation import aggregate_candles
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import CandleRepository


async def roll_up(
    candles_1m: pd.DataFrame,
    timeframes: Sequence[Timeframe],
    repo: CandleRepository,
    calendar: SessionCalendar = NSE,
) -> dict[str, int]:
    """Aggregate ``candles_1m`` (one or many instruments) to each timeframe and upsert; rows per timeframe."""
    written: dict[str, int] = {}
    for tf in timeframes:
        if tf is Timeframe.M1:
            continue
        if candles_1m.empty:
            written[str(tf)] = 0
            continue
        frame = aggregate_candles(candles_1m, tf, calendar)
        frame = frame.copy()
        frame["timeframe"] = str(tf)
        frame["source"] = "historical"
        if "obi_5" in frame.columns:
            frame = frame.drop(columns=["obi_5"])
        written[str(tf)] = await repo.add_frame(frame, on_conflict="update")
    return written
