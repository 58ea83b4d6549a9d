"""Run the Kite simulator (REST + WebSocket on loopback) as an async context manager.

Example::

    async with run_simulator(SimulatorConfig(rest_port=0, ws_port=0)) as sim:
        token = sim.issue_access_token()  # skips the login flow (tests)
        rest_root, ws_url = sim.rest_url, sim.ws_url_for(token)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from tickwise.adapters.kite.simulator.clock import SimClock
from tickwise.adapters.kite.simulator.faults import FaultController
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.rest_app import build_rest_app
from tickwise.adapters.kite.simulator.state import SimState, SimulatorConfig
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.adapters.kite.simulator.ws_server import TickerServer

__all__ = ["RunningSimulator", "SimulatorConfig", "run_simulator"]


@dataclass
class RunningSimulator:
    """Handles of a running simulator."""

    state: SimState
    rest_url: str
    ws_url: str
    ticker: TickerServer

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    @property
    def market(self) -> Market:
        return self.state.market

    @property
    def universe(self) -> Universe:
        return self.state.universe

    @property
    def faults(self) -> FaultController:
        return self.state.faults

    @property
    def api_key(self) -> str:
        return self.state.config.api_key

    def issue_access_token(self) -> str:
        """A valid access token for the configured api_key (expires at the next 06:00 IST, simulated)."""
        return self.state.sessions.issue().access_token

    def ws_url_for(self, access_token: str) -> str:
        return f"{self.ws_url}/?api_key={self.api_key}&access_token={access_token}"


@contextlib.asynccontextmanager
async def run_simulator(config: SimulatorConfig | None = None) -> AsyncIterator[RunningSimulator]:
    """Start the REST and WebSocket servers; stop both on exit."""
    config = config or SimulatorConfig()
    state = SimState(config)
    runner = web.AppRunner(build_rest_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    ticker = TickerServer(state)
    try:
        site = web.TCPSite(runner, config.host, config.rest_port)
        await site.start()
        rest_port = int(runner.addresses[0][1])  # the real port when config.rest_port is 0
        ws_port = await ticker.start(config.host, config.ws_port)
        yield RunningSimulator(
            state=state,
            rest_url=f"http://{config.host}:{rest_port}",
            ws_url=f"ws://{config.host}:{ws_port}",
            ticker=ticker,
        )
    finally:
        await ticker.stop()
        await runner.cleanup()
