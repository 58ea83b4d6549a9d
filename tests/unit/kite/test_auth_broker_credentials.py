"""Which broker open_broker picks, and the errors for missing or expired Kite tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from tickwise.adapters.kite.auth import StoredToken, next_expiry
from tickwise.bootstrap.broker import open_broker
from tickwise.bootstrap.credentials import token_status, token_store, uses_simulator
from tickwise.config import BrokerSettings, Settings
from tickwise.domain.errors import BrokerError
from tickwise.domain.time import IST


def _settings(tmp_path: Path, **broker: object) -> Settings:
    return Settings(broker=BrokerSettings(token_file=tmp_path / "kite_token.json", **broker))  # type: ignore[arg-type]


def _token(api_key: str, login: datetime, simulated: bool = False) -> StoredToken:
    return StoredToken(api_key, "acc", login, next_expiry(login), simulated=simulated)


def test_no_credentials_and_no_token_file_means_the_simulator(tmp_path: Path) -> None:
    assert uses_simulator(_settings(tmp_path))


def test_a_simulator_token_never_counts_as_real_credentials(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    token_store(settings).save(_token("tickwise-sim", datetime.now(IST), simulated=True))
    assert uses_simulator(settings)
    assert token_store(settings, simulated=True).path.name == "kite_token.simulator.json"


def test_credentials_or_a_real_token_file_mean_real_kite(tmp_path: Path) -> None:
    assert not uses_simulator(_settings(tmp_path, api_key="k", api_secret=SecretStr("s")))
    settings = _settings(tmp_path)
    token_store(settings).save(_token("k", datetime.now(IST)))
    assert not uses_simulator(settings)


async def test_missing_token_tells_the_user_to_log_in(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_key="k", api_secret=SecretStr("s"))
    with pytest.raises(BrokerError, match="tickwise auth login"):
        async with open_broker(settings):
            pass


async def test_expired_token_is_refused_before_any_request(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_key="k", api_secret=SecretStr("s"), rest_root="http://127.0.0.1:9")
    token_store(settings).save(_token("k", datetime.now(IST) - timedelta(days=2)))
    with pytest.raises(BrokerError, match=r"expired at .*tickwise auth login"):
        async with open_broker(settings):
            pass
    status = token_status(settings)
    assert status.source == "file" and not status.valid


def test_token_from_the_environment_is_reported_as_such(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_key="k", access_token=SecretStr("acc"))
    assert token_status(settings).source == "environment"
