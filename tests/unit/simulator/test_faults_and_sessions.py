"""Fault scripts, login sessions (checksum, 06:00 expiry) and the sliding-window rate limiter."""

from __future__ import annotations

from datetime import datetime

import pytest

from tickwise.adapters.kite.simulator.clock import SimClock, default_start, parse_start
from tickwise.adapters.kite.simulator.faults import Fault, FaultController, FaultScriptError, parse_faults
from tickwise.adapters.kite.simulator.sessions import RateLimiter, SessionStore, checksum
from tickwise.domain.time import IST

START = datetime(2026, 11, 20, 9, 30, tzinfo=IST)


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_fault_script_parses_text_and_json_forms() -> None:
    faults = parse_faults("10:05 abort; 10:20 stall 8s\n# comment\n11:00 reject 3 403; +90s rest 429 5")
    assert faults == [
        Fault("10:05", "abort"),
        Fault("10:20", "stall", (8.0,)),
        Fault("11:00", "reject", (3.0, 403.0)),
        Fault("+90s", "rest", (429.0, 5.0)),
    ]
    assert parse_faults('["10:05 abort", {"at": "now", "action": "close", "args": [1011]}]') == [
        Fault("10:05", "abort"),
        Fault("now", "close", (1011.0,)),
    ]


@pytest.mark.parametrize("script", ["10:05 explode", "10:05", "25h abort", "10:05 stall", "10:05 stall soon"])
def test_bad_fault_scripts_name_the_entry(script: str) -> None:
    with pytest.raises(FaultScriptError, match="fault"):
        parse_faults(script)


def test_faults_fire_when_the_simulated_clock_reaches_them() -> None:
    ctl = FaultController.from_script(
        "09:00 abort; 10:00 close 1011; +60s reject 2 429; +60s rest 500 1", START
    )
    assert ctl.take_ws_faults(START) == []
    ctl.due(START.replace(minute=31))
    assert list(ctl.handshake_rejects) == [429, 429] and ctl.next_rest_error() == 500
    assert ctl.next_rest_error() is None
    assert [f.action for f in ctl.take_ws_faults(START.replace(hour=10))] == ["close"]
    # 09:00 already passed at the start: it fires at 09:00 of the next day
    assert [f.action for f in ctl.take_ws_faults(START.replace(day=21, hour=9, minute=0))] == ["abort"]


def test_checksum_matches_the_documented_vector() -> None:
    assert checksum("kite_api_key", "req_token_123", "api_secret_xyz") == (
        "4c4f822eb1e862cff7288dd8145690adc6a8788430ab452d2ac666dcd00d94ef"
    )


def test_request_tokens_are_single_use_and_checked() -> None:
    clock = SimClock(START, speed=0)
    store = SessionStore("k", "s", clock)
    rt = store.new_request_token()
    assert store.exchange("k", rt, "bad") == "Invalid checksum."
    assert isinstance(store.exchange("k", rt, checksum("k", rt, "s")), str)  # already used
    rt2 = store.new_request_token()
    session = store.exchange("k", rt2, checksum("k", rt2, "s"))
    assert not isinstance(session, str)
    assert store.validate("k", session.access_token) is not None
    assert store.validate("other", session.access_token) is None


def test_request_tokens_expire_after_their_ttl() -> None:
    mono = FakeMonotonic()
    store = SessionStore("k", "s", SimClock(START, speed=0), request_token_ttl=300, monotonic=mono)
    rt = store.new_request_token()
    mono.t += 301
    assert store.exchange("k", rt, checksum("k", rt, "s")) == "Token is invalid or has expired."


def test_access_tokens_expire_at_the_next_0600_ist_of_the_simulated_clock() -> None:
    clock = SimClock(START, speed=0)
    store = SessionStore("k", "s", clock)
    session = store.issue()
    assert session.expires_at == datetime(2026, 11, 21, 6, 0, tzinfo=IST)
    clock.set(datetime(2026, 11, 21, 5, 59, 59, tzinfo=IST))
    assert store.validate("k", session.access_token) is not None
    clock.set(datetime(2026, 11, 21, 6, 0, tzinfo=IST))
    assert store.validate("k", session.access_token) is None
    assert store.revoke(session.access_token)


def test_rate_limiter_allows_n_per_sliding_second_per_class() -> None:
    mono = FakeMonotonic()
    limiter = RateLimiter(monotonic=mono)
    assert [limiter.allow("k", "historical") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("k", "quote") and not limiter.allow("k", "quote")
    assert limiter.allow("other-key", "quote")
    mono.t += 0.5
    assert not limiter.allow("k", "historical")
    mono.t += 0.51
    assert limiter.allow("k", "historical")


def test_clock_runs_at_speed_and_can_jump() -> None:
    mono = FakeMonotonic()
    clock = SimClock(START, speed=60, monotonic=mono)
    mono.t += 2
    assert clock.now() == START.replace(minute=32)
    clock.set(START)
    assert clock.now() == START
    assert parse_start("2026-11-20 10:00") == datetime(2026, 11, 20, 10, 0, tzinfo=IST)
    assert parse_start("2026-11-20") == datetime(2026, 11, 20, 9, 14, 50, tzinfo=IST)
    assert default_start(datetime(2026, 11, 21, 12, 0, tzinfo=IST)) == datetime(
        2026, 11, 23, 9, 14, 50, tzinfo=IST
    )
    assert default_start(datetime(2026, 11, 20, 11, 0, tzinfo=IST)) == datetime(
        2026, 11, 20, 11, 0, tzinfo=IST
    )
