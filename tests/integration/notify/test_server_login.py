"""`tickwise auth login --request-token` against the project's Kite simulator (REST session exchange)."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from notify_receivers import http_receiver

from tickwise.adapters.kite.auth import StoredToken, TokenStore, next_expiry
from tickwise.adapters.kite.simulator import RunningSimulator, SimulatorConfig, run_simulator
from tickwise.bootstrap.login import login_with_request_token
from tickwise.config import Settings, load_settings
from tickwise.domain.errors import BrokerError
from tickwise.domain.time import IST

TICKWISE = str(Path(sys.executable).with_name("tickwise"))
API_KEY, API_SECRET = "server-key", "server-secret"


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(rest_port=0, ws_port=0, api_key=API_KEY, api_secret=API_SECRET, n_instruments=2)
    async with run_simulator(config) as running:
        yield running


async def browser_login(sim: RunningSimulator) -> str:
    """What the user does on their laptop: log in, and copy the redirect URL (it is never followed)."""
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        response = await browser.get(f"{sim.rest_url}/connect/login", params={"v": 3, "api_key": API_KEY})
    assert response.status_code == 302
    return response.headers["location"]


def env_for(sim: RunningSimulator, token_file: Path) -> dict[str, str]:
    return {
        "KITE_API_KEY": API_KEY,
        "KITE_API_SECRET": API_SECRET,
        "TICKWISE__BROKER__REST_ROOT": sim.rest_url,
        "TICKWISE__BROKER__TOKEN_FILE": str(token_file),
    }


def settings_for(sim: RunningSimulator, token_file: Path) -> Settings:
    return load_settings(environ=env_for(sim, token_file))


async def test_a_pasted_request_token_is_exchanged_and_stored_0600(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    redirect = await browser_login(sim)
    request_token = httpx.URL(redirect).params["request_token"]
    token_file = tmp_path / "kite_token.json"
    stored = await login_with_request_token(settings_for(sim, token_file), request_token)
    assert stored.api_key == API_KEY and stored.access_token and not stored.simulated
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert TokenStore(token_file).load() == stored
    assert sim.state.sessions.validate(API_KEY, stored.access_token) is not None  # the simulator's token


async def test_the_whole_redirect_url_can_be_pasted(sim: RunningSimulator, tmp_path: Path) -> None:
    redirect = await browser_login(sim)
    stored = await login_with_request_token(settings_for(sim, tmp_path / "t.json"), redirect)
    assert stored.access_token


async def test_a_request_token_works_once(sim: RunningSimulator, tmp_path: Path) -> None:
    redirect = await browser_login(sim)
    settings = settings_for(sim, tmp_path / "t.json")
    await login_with_request_token(settings, redirect)
    with pytest.raises(BrokerError, match=r"refused the request_token \(Token is invalid or has expired.\)"):
        await login_with_request_token(settings, redirect)


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TICKWISE__", "KITE_"))}
    full.update(env)
    proc = await asyncio.create_subprocess_exec(
        TICKWISE, *args, env=full, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_cli_logs_in_with_a_request_token_and_never_prints_the_access_token(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "kite_token.json"
    env = env_for(sim, token_file)
    code, out, err = await run_cli("auth", "login", "--request-token", await browser_login(sim), env=env)
    assert code == 0, err
    stored = TokenStore(token_file).load()
    assert stored is not None
    assert out.startswith("login ok: user SIM001, token stored in ") and stored.access_token not in out + err


@pytest.mark.slow  # three CLI start-ups
async def test_a_kite_command_without_a_token_names_the_login_command_in_one_line(
    sim: RunningSimulator, tmp_path: Path
) -> None:
    env = env_for(sim, tmp_path / "none.json")
    for command in (("instruments", "sync"), ("live",), ("historical",)):
        code, _, err = await run_cli(*command, env=env)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (command, err)
        assert len(lines) == 1, (command, err)
        assert "tickwise auth login --request-token TOKEN" in lines[0]


async def test_auth_check_exits_1_and_alerts_the_ops_channel_when_the_token_is_dead(tmp_path: Path) -> None:
    login = datetime.now(IST) - timedelta(days=2)  # whatever the clock says, this token is dead
    token_file = tmp_path / "kite_token.json"
    TokenStore(token_file).save(StoredToken(API_KEY, "dead-token", login, next_expiry(login), "SIM001"))
    async with http_receiver() as http:
        env = {
            "KITE_API_KEY": API_KEY,
            "KITE_API_SECRET": API_SECRET,
            "TICKWISE__BROKER__TOKEN_FILE": str(token_file),
            "TICKWISE__MONITORING__ALERTS__ENABLED": "true",
            "TICKWISE__MONITORING__ALERTS__WEBHOOK_URL": http.url("/ops"),
        }
        code, out, err = await run_cli("auth", "check", env=env)
        quiet_code, _, _ = await run_cli("auth", "check", "--no-alert", env=env)
        posted = http.got("/ops")
    assert code == 1 and quiet_code == 1, err
    assert out.startswith("the Kite access token expired at ") and "--request-token TOKEN" in out
    assert len(posted) == 1  # --no-alert sent nothing
    assert posted[0]["priority"] == "critical" and posted[0]["key"] == "kite_token"
    assert posted[0]["message"] == out.strip()
