"""The volume roll rule (``trading.futures_roll: volume``): earlier than the date rule when the next contract
out-trades the front, never later, never back; and the pure roll gap and price shift both modes use."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.adapters.kite.simulator.universe import FUTURE_SPECS, index_future
from tickwise.core.futures import (
    RollRule,
    eligible_contracts,
    front_contract,
    roll_gap,
    shift_prices,
    volume_candidates,
)
from tickwise.domain.calendar import NSE
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST

NIFTY = FUTURE_SPECS[0]


def contracts_from(year: int, month: int, n: int = 3) -> list[Instrument]:
    out = []
    for k in range(n):
        m = month - 1 + k
        out.append(index_future(NIFTY, year + m // 12, m % 12 + 1))
    return out


days = st.dates(date(2025, 9, 1), date(2026, 12, 20))
volumes = st.lists(st.integers(0, 10_000), min_size=3, max_size=3)


def trading(day: date) -> date:
    return day if NSE.is_trading_day(day) else NSE.next_trading_day(day)


@settings(max_examples=150, deadline=None)
@given(day=days, n=st.integers(0, 3), vols=volumes)
def test_the_volume_rule_never_rolls_later_than_the_date_rule_and_picks_only_an_allowed_contract(
    day: date, n: int, vols: list[int]
) -> None:
    day = trading(day)
    contracts = contracts_from(day.year, day.month)
    by_date = front_contract(contracts, day, RollRule(n))
    previous = {c.instrument_token: v for c, v in zip(contracts, vols, strict=True)}
    by_volume = front_contract(contracts, day, RollRule.of(n, "volume"), previous_volume=previous)
    assert by_volume in eligible_contracts(contracts, day, RollRule(n))
    assert by_volume.expiry is not None and by_date.expiry is not None
    assert by_volume.expiry >= by_date.expiry  # at or after the date rule's contract: never a later roll
    # it leaves the date rule's contract only for one that traded strictly more on the previous session
    if by_volume != by_date:
        assert previous[by_volume.instrument_token] > previous[by_date.instrument_token]


@settings(max_examples=100, deadline=None)
@given(day=days, vols=volumes)
def test_a_volume_roll_never_goes_back_to_a_contract_the_series_already_left(
    day: date, vols: list[int]
) -> None:
    day = trading(day)
    contracts = contracts_from(day.year, day.month)
    allowed = eligible_contracts(contracts, day, RollRule(1))
    held = allowed[-1]
    previous = {c.instrument_token: v for c, v in zip(contracts, vols, strict=True)}
    front = front_contract(contracts, day, RollRule(1, by_volume=True), previous_volume=previous, held=held)
    assert front.expiry is not None and held.expiry is not None and front.expiry >= held.expiry


def test_the_date_rule_asks_for_no_volumes_and_the_volume_rule_for_the_allowed_contracts() -> None:
    contracts = contracts_from(2026, 11)
    assert volume_candidates(contracts, date(2026, 11, 18), RollRule(1)) == []
    assert volume_candidates(contracts, date(2026, 11, 18), RollRule.of(1, "volume")) == contracts
    assert RollRule.of(2, "date") == RollRule(2) and RollRule.of(2, "volume").by_volume


def test_the_roll_gap_is_the_new_close_minus_the_old_at_the_old_contract_s_last_minute() -> None:
    t = datetime(2026, 11, 20, 15, 29, tzinfo=IST)
    old = pd.DataFrame({"time": [t - timedelta(minutes=1), t], "close": [100.0, 101.5]})
    new = pd.DataFrame({"time": [t - timedelta(minutes=1), t], "close": [180.0, 182.25]})
    assert roll_gap(old, new) == 80.75
    # the new contract did not trade that minute: its last close of the day
    assert roll_gap(old, new.iloc[:1]) == 78.5
    assert roll_gap(old, new.iloc[:0]) == 0.0


def test_shifting_moves_prices_to_the_paisa_and_leaves_volume_raw() -> None:
    frame = pd.DataFrame({"open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [7]})
    out = shift_prices(frame, 0.1)
    assert out.iloc[0].to_dict() == {"open": 1.1, "high": 2.1, "low": 0.6, "close": 1.6, "volume": 7}
    assert frame["close"].iloc[0] == 1.5  # the input is left alone
