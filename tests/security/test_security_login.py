"""Issue #13, findings 5 and 6: the login callback takes only its own redirect, once; the token file
cannot be redirected through a planted file or symlink.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tickwise.adapters.kite.auth import NONCE_PARAM, LoginCallbackServer, StoredToken, TokenStore, login_url
from tickwise.domain.errors import BrokerError
from tickwise.domain.time import IST


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return response


def test_the_login_url_sends_the_nonce_through_kites_redirect_params() -> None:
    url = login_url("https://kite.zerodha.com/connect/login", "abc", {NONCE_PARAM: "n0nce"})
    assert (
        url == "https://kite.zerodha.com/connect/login?v=3&api_key=abc&redirect_params=tickwise_state%3Dn0nce"
    )


async def test_a_redirect_without_the_nonce_is_refused_and_the_real_one_still_wins() -> None:
    async with LoginCallbackServer(0) as callback, httpx.AsyncClient() as browser:
        forged = await browser.get(
            callback.redirect_url, params={"request_token": "evil", "status": "success"}
        )
        wrong = await browser.get(
            callback.redirect_url, params={"request_token": "evil", "status": "success", NONCE_PARAM: "guess"}
        )
        assert forged.status_code == wrong.status_code == 403
        real = await browser.get(
            callback.redirect_url,
            params={"request_token": "good", "status": "success", **callback.redirect_params},
        )
        assert real.status_code == 200
        assert await callback.wait(1) == "good"
        assert callback.rejected == 2


async def test_a_forged_cancel_without_the_nonce_does_not_abort_the_login() -> None:
    async with LoginCallbackServer(0) as callback, httpx.AsyncClient() as browser:
        forged = await browser.get(callback.redirect_url, params={"status": "cancelled"})
        assert forged.status_code == 403
        await browser.get(callback.redirect_url, params={"request_token": "rq", **callback.redirect_params})
        assert await callback.wait(1) == "rq"


async def test_the_callback_is_single_use_and_stops_listening_after_the_redirect() -> None:
    async with LoginCallbackServer(0) as callback, httpx.AsyncClient() as browser:
        params = {"request_token": "rq", "status": "success", **callback.redirect_params}
        assert (await browser.get(callback.redirect_url, params=params)).status_code == 200
        assert await callback.wait(1) == "rq"
        with pytest.raises(httpx.ConnectError):
            await browser.get(callback.redirect_url, params={**params, "request_token": "second"})


async def test_an_over_long_request_line_gets_a_4xx_and_the_server_keeps_working() -> None:
    async with LoginCallbackServer(0) as callback:
        response = await _raw(callback.port, b"GET /?" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 414")
        too_many = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 500 + b"\r\n"
        assert (await _raw(callback.port, too_many)).startswith(b"HTTP/1.1 431")
        assert (await _raw(callback.port, b"\x16\x03\x01garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
        target = f"/?request_token=rq&{NONCE_PARAM}={callback.nonce}".encode()
        assert (await _raw(callback.port, b"GET " + target + b" HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 200"
        )
        assert await callback.wait(1) == "rq"


async def test_two_callbacks_have_different_nonces() -> None:
    async with LoginCallbackServer(0) as one, LoginCallbackServer(0) as two:
        assert one.nonce != two.nonce and len(one.nonce) >= 24


def _token() -> StoredToken:
    t = datetime(2026, 1, 5, 9, 0, tzinfo=IST)
    return StoredToken(api_key="k", access_token="acc-token-value", login_time=t, expires_at=t)


def test_a_symlink_planted_at_any_temporary_name_never_receives_the_token(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    store = TokenStore(tmp_path / "kite_token.json")
    # The old code wrote to a predictable .<name>.<pid>.tmp and followed a symlink there.
    os.symlink(victim, tmp_path / f".kite_token.json.{os.getpid()}.tmp")
    store.save(_token())
    assert victim.read_text() == "untouched"
    assert store.load() is not None
    assert (tmp_path / "kite_token.json").stat().st_mode & 0o777 == 0o600


def test_an_unwritable_token_directory_is_a_clear_broker_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(BrokerError, match="cannot write the Kite token file"):
        TokenStore(locked / "t.json").save(_token())
