"""Token file, 06:00 IST expiry, login URL and the loopback request_token callback."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tickwise.adapters.kite.auth import (
    LoginCallbackServer,
    StoredToken,
    TokenStore,
    login_flow,
    login_url,
    next_expiry,
)
from tickwise.adapters.kite.rest import KiteRestClient, checksum
from tickwise.domain.errors import BrokerError
from tickwise.domain.time import IST


@pytest.mark.parametrize(
    ("login", "expiry"),
    [
        (datetime(2026, 11, 23, 8, 30, tzinfo=IST), datetime(2026, 11, 24, 6, 0, tzinfo=IST)),
        (datetime(2026, 11, 23, 5, 59, tzinfo=IST), datetime(2026, 11, 23, 6, 0, tzinfo=IST)),
        (datetime(2026, 11, 23, 6, 0, tzinfo=IST), datetime(2026, 11, 24, 6, 0, tzinfo=IST)),
        (datetime(2026, 11, 23, 23, 0, tzinfo=IST), datetime(2026, 11, 24, 6, 0, tzinfo=IST)),
    ],
)
def test_tokens_expire_at_the_next_six_am_ist(login: datetime, expiry: datetime) -> None:
    assert next_expiry(login) == expiry


def test_yesterdays_token_is_known_dead_before_the_session_starts() -> None:
    token = StoredToken(
        "k",
        "secret-token",
        datetime(2026, 11, 23, 8, 30, tzinfo=IST),
        next_expiry(datetime(2026, 11, 23, 8, 30, tzinfo=IST)),
    )
    assert token.is_valid(datetime(2026, 11, 24, 5, 59, tzinfo=IST))
    assert not token.is_valid(datetime(2026, 11, 24, 6, 0, tzinfo=IST))
    assert not token.is_valid(datetime(2026, 11, 24, 9, 0, tzinfo=IST))
    assert "secret-token" not in repr(token)


def test_token_file_round_trips_with_mode_0600(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "sub" / "kite_token.json")
    assert store.load() is None
    login = datetime(2026, 11, 23, 8, 30, tzinfo=IST)
    token = StoredToken("k", "t0k", login, next_expiry(login), user_id="AB1234")
    store.save(token)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.load() == token
    assert store.clear() and store.load() is None


def test_a_corrupt_token_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "kite_token.json"
    path.write_text("{not json")
    with pytest.raises(BrokerError, match="tickwise auth login"):
        TokenStore(path).load()


def test_login_url_carries_version_and_api_key() -> None:
    assert login_url("https://kite.zerodha.com/connect/login", "abc") == (
        "https://kite.zerodha.com/connect/login?v=3&api_key=abc"
    )


async def test_callback_server_captures_the_request_token() -> None:
    async with LoginCallbackServer(0) as callback, httpx.AsyncClient() as browser:
        response = await browser.get(
            callback.redirect_url,
            params={
                "action": "login",
                "status": "success",
                "request_token": "rq1",
                **callback.redirect_params,
            },
        )
        assert response.status_code == 200
        assert await callback.wait(1) == "rq1"


async def test_callback_server_reports_a_failed_login() -> None:
    async with LoginCallbackServer(0) as callback, httpx.AsyncClient() as browser:
        await browser.get(callback.redirect_url, params={"status": "cancelled", **callback.redirect_params})
        with pytest.raises(BrokerError, match="cancelled"):
            await callback.wait(1)


async def test_callback_server_times_out_clearly() -> None:
    async with LoginCallbackServer(0) as callback:
        with pytest.raises(BrokerError, match="no Kite login redirect"):
            await callback.wait(0.05)


async def test_login_flow_exchanges_the_captured_token_with_the_checksum() -> None:
    posted: list[bytes] = []

    def kite(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return httpx.Response(
            200,
            json={
                "status": "success",
                "data": {"access_token": "acc", "user_id": "U", "login_time": "2026-11-23 08:30:00"},
            },
        )

    async with (
        LoginCallbackServer(0) as callback,
        KiteRestClient("key", root="http://kite.test", transport=httpx.MockTransport(kite)) as rest,
    ):

        async def browser(url: str) -> None:
            assert url == login_url("http://login.test/connect/login", "key", callback.redirect_params)
            async with httpx.AsyncClient() as http:
                await http.get(
                    callback.redirect_url,
                    params={"request_token": "rq", "status": "success", **callback.redirect_params},
                )

        session = await asyncio.wait_for(
            login_flow(
                rest,
                "sec",
                login_base_url="http://login.test/connect/login",
                callback=callback,
                open_login=browser,
            ),
            5,
        )
    assert session.access_token == "acc" and rest.access_token == "acc"
    assert f"checksum={checksum('key', 'rq', 'sec')}".encode() in posted[0]
    assert StoredToken.from_session(session).expires_at == datetime(2026, 11, 24, 6, 0, tzinfo=IST)
