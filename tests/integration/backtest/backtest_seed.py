"""A small, hand-checkable market for backtest tests: one instrument, two flat sessions, three signals.

Every candle is O = C = 100, H = 100.5, L = 99.5, so TA-Lib ATR(14) is exactly 1.0 until the first
disturbed bar: a long signal on day 1 at 10:00 (PT 102, SL 98.5) meets the 10:05 bar's high of 102.5;
a short signal on day 2 at 11:00 (PT 98, SL ~101.5) meets the 11:03 bar's high of 101.6; a signal at
15:16 on day 2 is after the entry cut-off. A challenger's signal at 12:00 must be ignored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pandas as pd

from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.domain.instrument import Instrument
from tickwise.domain.signal import Signal
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import ModelRecord

TOKEN = 408065
DAY1, DAY2 = date(2026, 11, 2), date(2026, 11, 3)
CHAMPION, CHALLENGER = "m-champ", "m-chall"
LABEL_SPEC = {"k_pt": 2.0, "k_sl": 1.5, "horizon": 10, "atr_period": 14}


class FixedClock:
    """ports.Clock at a fixed instant (run ids and created_at are then reproducible)."""

    def now(self) -> datetime:
        return datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)


def candles() -> pd.DataFrame:
    rows = []
    for day in (DAY1, DAY2):
        for m in range(375):
            t = at(day, 9, 15) + timedelta(minutes=m)
            high = {at(DAY1, 10, 5): 102.5, at(DAY2, 11, 3): 101.6}.get(t, 100.5)
            rows.append((TOKEN, "1m", t, 100.0, high, 99.5, 100.0, 1000, None, "historical"))
    return pd.DataFrame(
        rows,
        columns=[
            "instrument_token",
            "timeframe",
            "time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "oi",
            "source",
        ],
    )


def signal(t: datetime, direction: int, model: str = CHAMPION, confidence: float = 0.6) -> Signal:
    return Signal(
        instrument_token=TOKEN,
        timeframe=Timeframe.M1,
        time=t,
        available_at=t + timedelta(minutes=1),
        model_version=model,
        direction=direction,
        confidence=confidence,
        mode="historical",
        feature_set="fs-test",
        size=0.1,
    )


SIGNALS = (
    signal(at(DAY1, 10, 0), 1, confidence=0.7),
    signal(at(DAY1, 13, 0), 0),  # no direction: never read
    signal(at(DAY2, 11, 0), -1, confidence=0.6),
    signal(at(DAY2, 15, 16), 1),  # after the 15:15 cut-off
    signal(at(DAY2, 12, 0), 1, model=CHALLENGER),
)


async def seed(pool: asyncpg.Pool) -> None:
    await TimescaleInstrumentRepository(pool).upsert_many(
        [Instrument(TOKEN, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1)]
    )
    await TimescaleCandleRepository(pool).add_frame(candles())
    models = TimescaleModelRepository(pool)
    for version, status in ((CHAMPION, "champion"), (CHALLENGER, "challenger")):
        await models.insert(
            ModelRecord(
                model_version=version,
                feature_set="fs-test",
                feature_names=("rsi_14",),
                status=status,  # type: ignore[arg-type]
                label_spec=LABEL_SPEC,
                trained_from=at(DAY1, 9, 15) - timedelta(days=30),
                trained_to=at(DAY1, 9, 15) - timedelta(days=1),
            )
        )
    await TimescaleSignalRepository(pool).add_many(list(SIGNALS))
