"""The Kite token checks: alert before a session the token will not last, one-line refusal when dead."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from tickwise.adapters.kite.auth import StoredToken, TokenStore, next_expiry
from tickwise.bootstrap.login import (
    LoginRequired,
    alert_token_expiry,
    check_token,
    request_token_from,
    require_kite_login,
    token_check,
)
from tickwise.config import Settings, load_settings
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST

HOLI = date(2026, 3, 4)  # a Wednesday, made a holiday here so the test does not depend on the shipped list
CAL = SessionCalendar(holidays=frozenset({HOLI}))


def ist(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=IST)


def token(login: datetime, *, api_key: str = "key", simulated: bool = False) -> StoredToken:
    return StoredToken(api_key, "acc-tok", login, next_expiry(login), "AB1234", simulated)


class Recorder:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, str]] = []

    def notify(self, priority: str, key: str, message: str) -> bool:
        self.got.append((priority, key, message))
        return True


def test_a_morning_token_is_good_for_the_days_session() -> None:
    check = token_check(token(ist(9, 8, 30)), CAL, ist(9, 10))
    assert check.state == "ok" and not check.needs_login
    assert check.session_open == ist(9, 9, 15)
    assert not alert_token_expiry(check, Recorder())


def test_after_the_close_the_token_will_expire_before_the_next_session_and_an_alert_fires() -> None:
    check = token_check(token(ist(9, 8, 30)), CAL, ist(9, 18))
    assert check.state == "expires_before_session"
    assert check.session_open == ist(10, 9, 15)
    assert "expires at 2026-03-10 06:00 IST" in check.message and "Tue 2026-03-10" in check.message
    alerts = Recorder()
    assert alert_token_expiry(check, alerts)
    assert alerts.got == [("warning", "kite_token", check.message)]


def test_an_evening_login_dies_at_six_before_the_next_morning_session() -> None:
    check = token_check(token(ist(9, 21)), CAL, ist(9, 22))
    assert check.state == "expires_before_session"


def test_an_expired_token_is_critical_and_names_the_server_login_command() -> None:
    check = token_check(token(ist(9, 8, 30)), CAL, ist(10, 7))
    assert check.state == "expired"
    assert "tickwise auth login --request-token TOKEN" in check.message
    alerts = Recorder()
    alert_token_expiry(check, alerts)
    assert alerts.got[0][0] == "critical"


def test_the_next_session_skips_weekends_and_holidays() -> None:
    friday = token_check(token(ist(6, 9)), CAL, ist(6, 16))
    assert friday.session_open == ist(9, 9, 15)  # Monday
    before_holiday = token_check(token(ist(3, 9)), CAL, ist(3, 16))
    assert before_holiday.session_open == ist(5, 9, 15)  # Thursday, after the Wednesday holiday


def test_a_missing_token_needs_a_login() -> None:
    check = token_check(None, CAL, ist(9, 8))
    assert check.state == "missing" and check.needs_login


def kite_settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        environ={
            "KITE_API_KEY": "key",
            "KITE_API_SECRET": "secret",
            "TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "kite_token.json"),
            **env,
        }
    )


def test_commands_refuse_a_dead_token_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    settings = kite_settings(tmp_path)
    with pytest.raises(LoginRequired) as missing:
        require_kite_login(settings, now=ist(10, 8))
    assert missing.value.exit_code == 2 and "\n" not in str(missing.value)
    assert "`tickwise auth login`" in str(missing.value)
    TokenStore(tmp_path / "kite_token.json").save(token(ist(9, 8, 30)))
    require_kite_login(settings, now=ist(9, 12))
    with pytest.raises(LoginRequired, match="expired at 2026-03-10 06:00 IST"):
        require_kite_login(settings, now=ist(10, 8))


def test_a_token_of_another_api_key_is_refused(tmp_path: Path) -> None:
    TokenStore(tmp_path / "kite_token.json").save(token(ist(9, 8, 30), api_key="other"))
    with pytest.raises(LoginRequired, match="another api_key"):
        require_kite_login(kite_settings(tmp_path), now=ist(9, 12))


def test_the_simulator_and_an_environment_token_need_no_check(tmp_path: Path) -> None:
    require_kite_login(
        load_settings(environ={"TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "t.json")}), now=ist(9, 12)
    )
    require_kite_login(kite_settings(tmp_path, KITE_ACCESS_TOKEN="from-env"), now=ist(9, 12))
    assert (
        check_token(kite_settings(tmp_path, KITE_ACCESS_TOKEN="from-env"), CAL, ist(9, 12)).state
        == "environment"
    )


def test_check_token_reads_the_stored_token(tmp_path: Path) -> None:
    TokenStore(tmp_path / "kite_token.json").save(token(ist(9, 8, 30)))
    assert check_token(kite_settings(tmp_path), CAL, ist(9, 12)).state == "ok"
    assert check_token(kite_settings(tmp_path), CAL, ist(9, 19)).state == "expires_before_session"


def test_a_pasted_redirect_url_or_bare_token_gives_the_request_token() -> None:
    assert request_token_from("  abc123 \n") == "abc123"
    url = "http://127.0.0.1:8767/?action=login&type=login&status=success&request_token=XyZ9"
    assert request_token_from(url) == "XyZ9"
    for bad in ("", "two words", "http://127.0.0.1:8767/?request_token="):
        with pytest.raises(ConfigError, match="--request-token"):
            request_token_from(bad)
