"""The simulator's REST history built from columns equals the per-candle build it replaced, byte for byte.

The oracle below is the code the simulator ran before (one Python step, one ``strftime`` and one slice
reduction per candle); the served JSON and ``Market.candles`` must not move by a bit, since every
backfill, golden test and benchmark reads its history from here.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest

from tickwise.adapters.kite.simulator.market import MINUTES, Market
from tickwise.adapters.kite.simulator.rest_app import _candle_rows, _num
from tickwise.adapters.kite.simulator.universe import NIFTY_50_TOKEN, Universe
from tickwise.domain.time import IST

DAY = date(2026, 11, 20)
INFY = 408065
Row = tuple[datetime, float, float, float, float, int]


def old_candles(
    market: Market, token: int, interval: int | None, start: datetime, end: datetime, now: datetime
) -> list[Row]:
    """``Market.candles`` as it was: one step per candle."""
    out: list[Row] = []
    first = start.astimezone(IST).date()
    last = min(end.astimezone(IST).date(), now.astimezone(IST).date())
    for day in market.calendar.trading_days(first, last):
        if not market.listed_on(token, day):
            continue
        c = market.minute_candles(token, day)
        open_at = datetime.combine(day, time(9, 15), tzinfo=IST)
        if interval is None:
            stamp = datetime.combine(day, time(0, 0), tzinfo=IST)
            if start <= stamp <= end and now >= open_at + timedelta(minutes=MINUTES):
                out.append(
                    (
                        stamp,
                        float(c.open[0]),
                        float(c.high.max()),
                        float(c.low.min()),
                        float(c.close[-1]),
                        int(c.volume.sum()),
                    )
                )
            continue
        for b in range(0, MINUTES, interval):
            stamp = open_at + timedelta(minutes=b)
            e = min(b + interval, MINUTES)
            if stamp < start or stamp > end or open_at + timedelta(minutes=e) > now:
                continue
            out.append(
                (
                    stamp,
                    float(c.open[b]),
                    float(c.high[b:e].max()),
                    float(c.low[b:e].min()),
                    float(c.close[e - 1]),
                    int(c.volume[b:e].sum()),
                )
            )
    return out


def old_rows(rows: list[Row], with_oi: bool) -> list[list[object]]:
    """The REST handler's rows as they were: ``strftime`` per candle."""
    out: list[list[object]] = []
    for stamp, o, h, lo, c, v in rows:
        row: list[object] = [stamp.strftime("%Y-%m-%dT%H:%M:%S+0530"), _num(o), _num(h), _num(lo), _num(c), v]
        if with_oi:
            row.append(0)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def market() -> Market:
    # bad prints change single minutes (spikes, repeated and zero-volume bars): the reductions see them
    return Market(
        Universe(10, today=DAY),
        seed=7,
        bad_prints=0.02,
        scripted_bad_prints=[(datetime(2026, 11, 19, 10, 3, tzinfo=IST), "spike")],
    )


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=IST)


WINDOWS = [
    # whole days, a window cut inside sessions, one that ends mid-bar, "now" inside a session
    (at(date(2026, 11, 2), 0, 0), at(DAY, 23, 59, 59), at(DAY, 23, 0)),
    (at(date(2026, 11, 16), 10, 7, 30), at(date(2026, 11, 18), 14, 2, 59), at(DAY, 23, 0)),
    (at(date(2026, 11, 17), 9, 15), at(DAY, 15, 29), at(DAY, 11, 4, 59)),
    (at(DAY, 9, 0), at(DAY, 23, 59, 59), at(DAY, 15, 30)),
    (at(DAY, 9, 15).astimezone(datetime.now().astimezone().tzinfo), at(DAY, 12, 0), at(DAY, 12, 0, 1)),
]


@pytest.mark.parametrize("interval", [1, 3, 5, 10, 15, 30, 60, None])
@pytest.mark.parametrize("window", range(len(WINDOWS)))
def test_the_column_history_equals_the_per_candle_history_and_its_json_byte_for_byte(
    market: Market, interval: int | None, window: int
) -> None:
    start, end, now = WINDOWS[window]
    for token in (INFY, market.universe.tokens[-1], NIFTY_50_TOKEN):
        expected = old_candles(market, token, interval, start, end, now)
        assert market.candles(token, interval, start, end, now) == expected
        days = market.candle_days(token, interval, start, end, now)
        for with_oi in (False, True):
            assert json.dumps(_candle_rows(days, with_oi)) == json.dumps(old_rows(expected, with_oi))


def test_a_window_with_no_finished_bar_gives_no_day(market: Market) -> None:
    assert market.candle_days(INFY, 15, at(DAY, 9, 15), at(DAY, 15, 29), at(DAY, 9, 29, 59)) == []
    assert market.candles(INFY, None, at(DAY, 0, 0), at(DAY, 23, 0), at(DAY, 15, 29)) == []
