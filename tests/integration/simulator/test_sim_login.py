"""`tickwise auth login --simulator`: the real login flow against an in-process simulator, token stored apart."""

from __future__ import annotations

from pathlib import Path

from tickwise.bootstrap.auth import login_with_simulator
from tickwise.bootstrap.credentials import token_status, token_store, uses_simulator
from tickwise.config import BrokerSettings, Settings


async def test_a_simulator_login_stores_a_valid_simulated_token_beside_the_real_one(tmp_path: Path) -> None:
    settings = Settings(broker=BrokerSettings(token_file=tmp_path / "kite_token.json"))
    token = await login_with_simulator(settings)

    assert token.simulated and token.api_key == settings.broker.simulator.api_key
    assert token_store(settings, simulated=True).load() == token
    assert token_status(settings, simulated=True).valid
    # The real token file stays untouched, so the simulator is still what the commands use.
    assert token_store(settings).load() is None and uses_simulator(settings)
