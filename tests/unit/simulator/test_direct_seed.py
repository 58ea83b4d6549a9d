"""`bench historical --seed direct`: its frames hold exactly the 1m candles the simulator's REST route
serves (Market.candles), over whole days, partial ranges and a session still running."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import pandas as pd
import pytest

from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.bench.historical import DirectSource
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

DAY = date(2026, 11, 20)
INFY = 408065
NIFTY = 256265


def _rest_rows(market: Market, token: int, start: datetime, end: datetime, now: datetime) -> pd.DataFrame:
    rows = market.candles(token, 1, start, end, now)
    return pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])


@pytest.mark.parametrize("token", [INFY, NIFTY])
@pytest.mark.parametrize(
    ("start", "end", "now"),
    [
        (datetime(2026, 11, 16, 9, 15, tzinfo=IST), datetime(2026, 11, 19, 15, 29, 59, tzinfo=IST), None),
        (datetime(2026, 11, 17, 11, 0, tzinfo=IST), datetime(2026, 11, 18, 10, 0, tzinfo=IST), None),
        # the session of ``now`` is still running: only the bars that have ended
        (datetime(2026, 11, 19, 9, 15, tzinfo=IST), datetime(2026, 11, 20, 15, 29, tzinfo=IST), "10:07:30"),
    ],
)
def test_direct_frames_hold_the_rest_routes_candles(
    token: int, start: datetime, end: datetime, now: str | None
) -> None:
    at = datetime(2026, 11, 21, 8, 0, tzinfo=IST)
    if now is not None:
        at = datetime.combine(DAY, datetime.strptime(now, "%H:%M:%S").time(), tzinfo=IST)
    market = Market(Universe(10, today=DAY), seed=42, bad_prints=0.02)
    frame = asyncio.run(DirectSource(market, at).historical_frame(token, Timeframe.M1, start, end))
    expected = _rest_rows(Market(Universe(10, today=DAY), seed=42, bad_prints=0.02), token, start, end, at)
    assert len(frame) == len(expected) > 0
    assert [t.to_pydatetime() for t in frame["time"]] == list(expected["time"])
    for column in ("open", "high", "low", "close", "volume"):
        assert frame[column].tolist() == expected[column].tolist()  # the same floats, not close ones
    assert str(frame["time"].dtype) == "datetime64[ns, Asia/Kolkata]"


def test_direct_seeding_refuses_other_intervals() -> None:
    source = DirectSource(Market(Universe(10, today=DAY), seed=42), datetime(2026, 11, 21, tzinfo=IST))
    with pytest.raises(ValueError, match="1m candles only"):
        asyncio.run(
            source.historical_frame(
                INFY, Timeframe.M5, datetime(2026, 11, 20, tzinfo=IST), datetime(2026, 11, 21, tzinfo=IST)
            )
        )
