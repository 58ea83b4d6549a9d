"""The front-month roll rule: never an expired contract, rolls exactly N sessions before expiry, holidays."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.adapters.kite.simulator.universe import FUTURE_SPECS, index_future
from tickwise.core.futures import (
    NoLiveContract,
    RollRule,
    continuous_symbol,
    continuous_token,
    front_contract,
    futures_of,
    sessions_left,
)
from tickwise.domain.calendar import NSE
from tickwise.domain.instrument import Instrument

NIFTY = FUTURE_SPECS[0]


def contracts_from(year: int, month: int, n: int = 4) -> list[Instrument]:
    out = []
    for k in range(n):
        m = month - 1 + k
        out.append(index_future(NIFTY, year + m // 12, m % 12 + 1))
    return out


days = st.dates(date(2025, 9, 1), date(2026, 12, 20))


@settings(max_examples=150, deadline=None)
@given(day=days, n=st.integers(0, 3))
def test_the_front_contract_is_never_expired_and_has_the_rule_s_sessions_left(day: date, n: int) -> None:
    if not NSE.is_trading_day(day):
        day = NSE.next_trading_day(day)
    contracts = contracts_from(day.year, day.month)
    front = front_contract(contracts, day, RollRule(n))
    assert front.expiry is not None and front.expiry >= day
    assert sessions_left(day, front.expiry) >= n
    earlier = [c for c in contracts if c.expiry is not None and c.expiry < front.expiry]
    # every earlier-expiring contract is either expired or inside its roll window
    assert all(c.expiry is not None and (c.expiry < day or sessions_left(day, c.expiry) < n) for c in earlier)


@settings(max_examples=60, deadline=None)
@given(year=st.integers(2025, 2026), month=st.integers(1, 12), n=st.integers(0, 3))
def test_the_series_rolls_exactly_n_sessions_before_expiry(year: int, month: int, n: int) -> None:
    # The last session the series holds a contract is the one with exactly n sessions left after it.
    contracts = contracts_from(year, month)
    near = contracts[0]
    assert near.expiry is not None
    last_held = near.expiry
    for _ in range(n):
        last_held = NSE.previous_trading_day(last_held)
    assert sessions_left(last_held, near.expiry) == n
    assert front_contract(contracts, last_held, RollRule(n)) == near
    assert front_contract(contracts, NSE.next_trading_day(last_held), RollRule(n)) == contracts[1]


def test_a_holiday_on_the_expiry_tuesday_moves_the_roll_day_back_with_it() -> None:
    # 2026-11-24 (last Tuesday) is an NSE holiday: expiry Monday 2026-11-23, so with the default
    # one-session rule the series rolls on Friday 2026-11-20 (the weekend and holiday do not count).
    contracts = contracts_from(2026, 11)
    assert contracts[0].expiry == date(2026, 11, 23)
    assert front_contract(contracts, date(2026, 11, 19)) == contracts[0]
    assert front_contract(contracts, date(2026, 11, 20)) == contracts[0]  # one session (the 23rd) left
    assert front_contract(contracts, date(2026, 11, 23)) == contracts[1]
    # March 2026: the 31st (last Tuesday) is a holiday, expiry moves to Monday the 30th.
    march = contracts_from(2026, 3)
    assert march[0].expiry == date(2026, 3, 30)
    assert front_contract(march, date(2026, 3, 27)) == march[0]
    assert front_contract(march, date(2026, 3, 30)) == march[1]


def test_the_volume_rule_switches_early_when_the_next_contract_trades_more() -> None:
    contracts = contracts_from(2026, 6)
    near, nxt = contracts[0], contracts[1]
    assert near.expiry is not None
    day = near.expiry - timedelta(days=7)
    rule = RollRule(1, by_volume=True)
    assert front_contract(contracts, day, rule, previous_volume={near.instrument_token: 900}) == near
    volumes = {near.instrument_token: 100, nxt.instrument_token: 900}
    assert front_contract(contracts, day, rule, previous_volume=volumes) == nxt
    assert front_contract(contracts, day, RollRule(1), previous_volume=volumes) == near


def test_no_live_contract_is_a_clear_error_and_bad_rules_are_refused() -> None:
    with pytest.raises(NoLiveContract):
        front_contract(contracts_from(2026, 1, n=1), date(2026, 6, 1))
    with pytest.raises(ValueError):
        RollRule(-1)


def test_futures_of_picks_one_underlying_by_expiry_and_the_synthetic_token_is_stable_and_foreign() -> None:
    bank = index_future(FUTURE_SPECS[1], 2026, 12)
    mixed = [*reversed(contracts_from(2026, 10)), bank]
    assert [c.expiry for c in futures_of(mixed, "NIFTY")] == sorted(
        c.expiry for c in contracts_from(2026, 10)
    )  # type: ignore[type-var]
    assert continuous_token("NIFTY") == continuous_token("nifty") != continuous_token("BANKNIFTY")
    assert continuous_token("NIFTY") & 0xFF == 0xFE and continuous_symbol("nifty") == "NIFTY-FUT-CONT"


def test_the_session_subscribes_each_underlying_s_front_contract_and_names_a_missing_one() -> None:
    from tickwise.core.futures import session_contracts

    bank = [index_future(FUTURE_SPECS[1], 2026, m) for m in (11, 12)]
    master = [*contracts_from(2026, 11), *bank]
    chosen = session_contracts(master, ["nifty", "BANKNIFTY"], date(2026, 11, 23))
    assert (
        chosen["NIFTY"].tradingsymbol == "NIFTY26DECFUT"
        and chosen["BANKNIFTY"].tradingsymbol == "BANKNIFTY26DECFUT"
    )
    assert session_contracts(master, ["NIFTY"], date(2026, 11, 20))["NIFTY"].tradingsymbol == "NIFTY26NOVFUT"
    with pytest.raises(NoLiveContract, match="FINNIFTY"):
        session_contracts(master, ["FINNIFTY"], date(2026, 11, 20))
