"""The live contract map: one mapping for the consumer's ticks, the REST repairs and the subscription."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pandas as pd
from test_tick_consumer import TOKEN, at, consumer, history, one_m_bars, tick

from fakes import InMemoryCandleRepository
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.contracts import ContractMap, MappedCandleSource, adjust_for_roll

CONTRACT, CONT = TOKEN, 0xABCDEF << 8 | 0xFE
DAY = date(2025, 1, 6)


def test_the_consumer_stores_a_contract_s_ticks_and_bars_under_the_continuous_token() -> None:
    c, _, clock, out = consumer()
    c.token_map = ContractMap(DAY, {CONTRACT: CONT}).to_continuous
    c.engine.open_instrument(CONT, history())
    clock.current = at(9, 16, 1)
    c.consume_batch([tick(100.0, at(9, 15, 1), 10), tick(100.2, at(9, 16), 35)])
    assert {t.instrument_token for t in out["ticks"]} == {CONT}  # type: ignore[attr-defined]
    assert [b.instrument_token for b in one_m_bars(out)] == [CONT]


def test_the_map_goes_both_ways_and_leaves_other_tokens_alone() -> None:
    m = ContractMap(DAY, {CONTRACT: CONT})
    assert m and not ContractMap(DAY)
    assert (m.continuous_of(CONTRACT), m.contract_of(CONT), m.contract_of(7), m.continuous_of(7)) == (
        CONT,
        CONTRACT,
        7,
        7,
    )
    assert m.feed_tokens([CONT, 7]) == [CONTRACT, 7]
    t = tick(100.0, at(9, 15), 1)
    assert (
        m.remap(t).instrument_token == CONT
        and m.remap(dataclasses.replace(t, instrument_token=7)).instrument_token == 7
    )


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[int, datetime, datetime]] = []

    async def historical(
        self, token: int, interval: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        self.calls.append((token, start, end))
        return [Candle(token, interval, start, 1.0, 2.0, 0.5, 1.5, 10, None, "historical")]


async def test_rest_repairs_fetch_the_contract_for_the_session_day_only_and_return_the_continuous_token() -> (
    None
):
    source = Recorded()
    mapped = MappedCandleSource(source, ContractMap(DAY, {CONTRACT: CONT}), NSE)
    opened = NSE.session_open(DAY)
    got = await mapped.historical(
        CONT, Timeframe.M1, opened - timedelta(days=3), opened + timedelta(minutes=5)
    )
    assert source.calls == [(CONTRACT, opened, opened + timedelta(minutes=5))]
    assert [c.instrument_token for c in got] == [CONT]
    assert (
        await mapped.historical(CONT, Timeframe.M1, opened - timedelta(days=3), opened - timedelta(days=2))
        == []
    )
    other = await mapped.historical(7, Timeframe.M1, opened - timedelta(days=3), opened)
    assert other[0].instrument_token == 7 and source.calls[-1][0] == 7


def contract(token: int, expiry: date) -> Instrument:
    return Instrument(token, token >> 8, f"C{token}", "NIFTY", "NFO", "NFO-FUT", "FUT", 0.05, 75, expiry)


def minutes(day: date, closes: list[float], token: int = CONT) -> pd.DataFrame:
    start = NSE.session_close(day) - timedelta(minutes=len(closes))
    times = [start + timedelta(minutes=i) for i in range(len(closes))]
    return pd.DataFrame(
        {
            "instrument_token": token,
            "timeframe": "1m",
            "time": times,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": 5,
            "oi": None,
            "source": "historical",
        }
    )


async def test_a_roll_day_shifts_the_stored_history_once_and_refuses_history_it_does_not_recognise() -> None:
    roll_day, previous = date(2026, 11, 23), date(2026, 11, 20)
    old, new = contract(1 << 8 | 2, roll_day), contract(2 << 8 | 2, date(2026, 12, 29))
    raw = {old.instrument_token: [100.0, 101.0], new.instrument_token: [180.0, 181.5]}

    async def fetch(token: int, day: date) -> pd.DataFrame:
        assert day == previous
        return minutes(day, raw[token], token)

    repo = InMemoryCandleRepository()
    await repo.add_frame(minutes(previous, raw[old.instrument_token]))

    async def adjust() -> str:
        done = await adjust_for_roll("NIFTY", CONT, old, new, roll_day, repo, fetch, NSE, [Timeframe.M1])
        assert done.gap == 80.5
        return done.outcome

    assert await adjust() == "shifted"
    stored = await repo.read_frame(CONT, Timeframe.M1)
    assert list(stored["close"]) == [180.5, 181.5]  # == the new contract at the roll minute
    assert await adjust() == "already shifted"  # a restart on the roll day does not shift twice
    assert list((await repo.read_frame(CONT, Timeframe.M1))["close"]) == [180.5, 181.5]

    strange = InMemoryCandleRepository()
    await strange.add_frame(minutes(previous, [50.0, 51.0]))
    done = await adjust_for_roll("NIFTY", CONT, old, new, roll_day, strange, fetch, NSE, [Timeframe.M1])
    assert done.outcome == "mismatch" and list((await strange.read_frame(CONT, Timeframe.M1))["close"]) == [
        50.0,
        51.0,
    ]
    empty = await adjust_for_roll(
        "NIFTY", CONT, old, new, roll_day, InMemoryCandleRepository(), fetch, NSE, [Timeframe.M1]
    )
    assert empty.outcome == "no stored history"
