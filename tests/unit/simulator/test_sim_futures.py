"""The simulator's NIFTY/BANKNIFTY futures: contracts, expiries, basis, volume roll, continuous candles."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from tickwise.adapters.kite.simulator.market import CARRY, LISTING_DAYS, Market
from tickwise.adapters.kite.simulator.universe import (
    FUTURE_SPECS,
    NIFTY_50_TOKEN,
    NIFTY_BANK_TOKEN,
    Universe,
    decode_index_future,
    last_tuesday_expiry,
    live_index_futures,
)
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST

DAY = date(2026, 11, 20)  # a Friday; the November expiry Tuesday 2026-11-24 is an NSE holiday
NIFTY, BANKNIFTY = FUTURE_SPECS


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(Universe(3, today=DAY), seed=11)


def test_three_serial_contracts_per_index_are_listed_with_holiday_adjusted_tuesday_expiries() -> None:
    nifty = live_index_futures(NIFTY, DAY)
    assert [c.tradingsymbol for c in nifty] == ["NIFTY26NOVFUT", "NIFTY26DECFUT", "NIFTY27JANFUT"]
    # 2026-11-24 (last Tuesday) is a holiday: the contract expires on the Monday before.
    assert [c.expiry for c in nifty] == [date(2026, 11, 23), date(2026, 12, 29), date(2027, 1, 26)]
    assert all((c.exchange, c.segment, c.instrument_type) == ("NFO", "NFO-FUT", "FUT") for c in nifty)
    assert {c.lot_size for c in nifty} == {NIFTY.lot_size}
    assert all(c.instrument_token & 0xFF == 2 for c in nifty)
    bank = live_index_futures(BANKNIFTY, date(2026, 11, 24))  # the day after the November expiry
    assert bank[0].tradingsymbol == "BANKNIFTY26DECFUT" and len(bank) == 3


@pytest.mark.parametrize("year", [2025, 2026, 2027, 2028])
def test_every_monthly_expiry_is_the_last_tuesday_or_the_trading_day_before_it(year: int) -> None:
    for month in range(1, 13):
        expiry = last_tuesday_expiry(year, month)
        tuesdays = [
            d
            for d in (date(year, month, 1) + timedelta(days=i) for i in range(31))
            if d.month == month and d.weekday() == 1
        ]
        last = tuesdays[-1]
        assert NSE.is_trading_day(expiry)
        assert expiry == last if NSE.is_trading_day(last) else expiry == NSE.previous_trading_day(last)


def test_any_contract_token_decodes_back_to_its_contract_even_when_expired() -> None:
    for spec in FUTURE_SPECS:
        for contract in live_index_futures(spec, date(2019, 5, 2)) + live_index_futures(spec, DAY):
            decoded = decode_index_future(contract.instrument_token)
            assert decoded is not None and decoded[1] == contract and decoded[0] == spec
    assert decode_index_future(408065) is None  # INFY


def test_the_dump_lists_the_live_contracts_and_the_bank_index_but_keeps_existing_tokens() -> None:
    universe = Universe(3, today=DAY)
    assert universe.tokens[:4] == [408065, 738561, 2953217, NIFTY_50_TOKEN]
    assert universe.get(NIFTY_BANK_TOKEN) is not None
    assert universe.members[-1].instrument.exchange == "CDS"  # the currency future stays last
    nfo = [line for line in universe.dump_csv("NFO").splitlines()[1:]]
    assert len(nfo) == 6 and all(",2026-" in line or ",2027-" in line for line in nfo)
    assert Universe(3, today=DAY, futures=False).future(NIFTY_50_TOKEN) is None


def test_futures_track_the_index_with_a_basis_that_shrinks_to_zero_at_expiry(market: Market) -> None:
    near, nxt, _ = live_index_futures(NIFTY, DAY)
    index = market.day_path(NIFTY_50_TOKEN, DAY)  # a snapshot every second

    def ratio_to_index(token: int) -> np.ndarray:
        path = market.day_path(token, DAY)
        at = path.second[1:]  # the future's own trade seconds, compared with the index at that second
        return path.price[1:] / index.price[at + 1]

    ratio_near, ratio_next = ratio_to_index(near.instrument_token), ratio_to_index(nxt.instrument_token)
    assert np.all(ratio_near > 1.0) and ratio_next.min() > ratio_near.max()
    assert np.all(ratio_next <= 1 + CARRY * LISTING_DAYS / 365 + 1e-4)
    expiry_day = near.expiry
    assert expiry_day is not None
    assert (
        market.minute_candles(near.instrument_token, expiry_day).close[-1]
        == market.minute_candles(NIFTY_50_TOKEN, expiry_day).close[-1]
    )


def test_volume_moves_to_the_next_contract_just_before_expiry(market: Market) -> None:
    near, nxt, far = live_index_futures(NIFTY, DAY)
    early = NSE.trading_days(date(2026, 11, 2), date(2026, 11, 6))
    for d in early:
        assert market.minute_candles(near.instrument_token, d).volume.sum() > 3 * (
            market.minute_candles(nxt.instrument_token, d).volume.sum()
        )
        assert market.minute_candles(far.instrument_token, d).volume.sum() < (
            market.minute_candles(nxt.instrument_token, d).volume.sum()
        )
    assert near.expiry is not None
    last = NSE.previous_trading_day(near.expiry)
    assert market.minute_candles(nxt.instrument_token, last).volume.sum() > 3 * (
        market.minute_candles(near.instrument_token, last).volume.sum()
    )


def test_a_contract_has_no_candles_after_its_expiry_and_its_path_refuses_those_days(market: Market) -> None:
    near = live_index_futures(NIFTY, DAY)[0]
    after = datetime(2026, 11, 25, tzinfo=IST)
    now = datetime(2026, 12, 1, tzinfo=IST)
    assert market.candles(near.instrument_token, 1, after, after + timedelta(days=2), now) == []
    with pytest.raises(ValueError, match="does not trade"):
        market.day_path(near.instrument_token, date(2026, 11, 25))


def test_continuous_candles_follow_the_front_contract_through_its_expiry_day(market: Market) -> None:
    near, nxt, _ = live_index_futures(NIFTY, DAY)
    start, end = datetime(2026, 11, 19, tzinfo=IST), datetime(2026, 11, 26, 23, 59, tzinfo=IST)
    now = datetime(2026, 12, 1, tzinfo=IST)
    rows = market.continuous_candles(nxt.instrument_token, 1, start, end, now)
    days = NSE.trading_days(start.date(), end.date())
    assert len(rows) == 375 * len(days)
    for d in days:
        front = near if d <= date(2026, 11, 23) else nxt
        expected = market.candles(
            front.instrument_token, 1, datetime.combine(d, datetime.min.time(), tzinfo=IST),
            datetime.combine(d, datetime.max.time(), tzinfo=IST), now,
        )  # fmt: skip
        assert [r for r in rows if r[0].date() == d] == expected
    with pytest.raises(KeyError):
        market.continuous_candles(408065, 1, start, end, now)


def test_futures_paths_are_deterministic_by_seed() -> None:
    token = live_index_futures(BANKNIFTY, DAY)[0].instrument_token
    a = Market(Universe(3, today=DAY), seed=5).minute_candles(token, DAY)
    b = Market(Universe(3, today=DAY), seed=5).minute_candles(token, DAY)
    c = Market(Universe(3, today=DAY), seed=6).minute_candles(token, DAY)
    assert np.array_equal(a.close, b.close) and np.array_equal(a.volume, b.volume)
    assert not np.array_equal(a.close, c.close)


def test_every_listed_contract_has_a_path_on_any_day_so_quotes_never_fail() -> None:
    market = Market(Universe(1, today=date(2026, 2, 25)), seed=3)  # the day after an expiry: far is MAY
    start = date(2026, 1, 1)
    for offset in range(0, 200, 9):
        day = start + timedelta(days=offset)
        if not NSE.is_trading_day(day):
            continue
        for spec in FUTURE_SPECS:
            for contract in live_index_futures(spec, day):
                assert market.listed_on(contract.instrument_token, day)
                assert len(market.minute_candles(contract.instrument_token, day).close) == 375
