"""Broker wiring: a Kite REST client and ticker factory, for real Kite or the simulator.

    async with open_broker(settings) as broker:
        instruments = await broker.rest.instruments("NSE")
        async with broker.ticker() as ticker:
            await ticker.subscribe([408065])

* With Kite credentials (``KITE_API_KEY`` + ``KITE_API_SECRET``), a ``KITE_ACCESS_TOKEN`` or a token
  file from ``tickwise auth login``: talk to Kite with the api_key and access token. A missing or
  expired token is a BrokerError telling the user to run ``tickwise auth login``
  (:mod:`tickwise.bootstrap.credentials`).
* With none of those: start the simulator on loopback and log in to it through the real flow
  (:mod:`tickwise.bootstrap.simulator`). The commands run it in a child process
  (``open_simulated_broker(..., process=True)``), so that it streams on time however busy the
  pipeline keeps this process, as the real Kite would; tests run it in-process to reach into its state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Unpack

from loguru import logger

from tickwise.adapters.kite.auth import TokenStore
from tickwise.adapters.kite.rest import KiteRestClient
from tickwise.adapters.kite.ticker import KiteTicker, TickerOptions
from tickwise.bootstrap.credentials import (
    RELOGIN_HINT,
    log_session_expired,
    real_credentials,
    token_store,
    uses_simulator,
)
from tickwise.bootstrap.simulator import start_simulator
from tickwise.config import Settings
from tickwise.domain.time import IST

if TYPE_CHECKING:
    from tickwise.adapters.kite.simulator import RunningSimulator
    from tickwise.adapters.kite.simulator.process import SimulatorProcess
    from tickwise.adapters.kite.simulator.state import SimulatorOverrides

# Importable from here as before the split (callers wire brokers and ask about the simulator together).
__all__ = [
    "RELOGIN_HINT",
    "Broker",
    "open_broker",
    "open_simulated_broker",
    "token_store",
    "uses_simulator",
]


@dataclass
class Broker:
    """An authenticated broker connection: REST client, ticker factory, clock."""

    rest: KiteRestClient
    api_key: str
    access_token: str
    ws_url: str
    simulated: bool
    simulator: RunningSimulator | SimulatorProcess | None = None  # simulated brokers only
    now: Callable[[], datetime] = lambda: datetime.now(IST)  # market clock (the simulator's when simulated)
    watchdog_s: float = 5.0
    tick_queue_size: int = 100_000
    token_store: TokenStore | None = None  # real Kite: where a renewed token appears
    relogin: Callable[[], Awaitable[str]] | None = None  # the simulator: log in again

    def ticker(self, **overrides: Unpack[TickerOptions]) -> KiteTicker:
        """A new (not started) KiteTicker bound to this broker; keyword arguments override defaults."""
        options: TickerOptions = {
            "root": self.ws_url,
            "now": self.now,
            "watchdog_s": self.watchdog_s,
            "queue_size": self.tick_queue_size,
            "token_reloader": self._reload_token,
        }
        options.update(overrides)
        return KiteTicker(self.api_key, self.access_token, **options)

    @property
    def ticker_factory(self) -> Callable[..., KiteTicker]:
        return self.ticker

    async def _reload_token(self) -> str | None:
        """After a 403: a renewed token (a simulator re-login, or a newer token file), if any."""
        token: str | None = None
        if self.relogin is not None:
            try:
                token = await self.relogin()
            except Exception as exc:  # a failed re-login leaves the 403 to the caller
                logger.warning("simulator re-login failed: {}: {}", type(exc).__name__, exc)
        elif self.token_store is not None:
            stored = self.token_store.load()
            if stored and stored.api_key == self.api_key and stored.is_valid():
                token = stored.access_token
        if token and token != self.access_token:
            self.access_token = token
            self.rest.set_access_token(token)
            return token
        return None

    def __repr__(self) -> str:
        return f"Broker(simulated={self.simulated}, api_key={self.api_key!r}, ws_url={self.ws_url!r})"


@contextlib.asynccontextmanager
async def open_broker(settings: Settings, *, simulator: bool | None = None) -> AsyncIterator[Broker]:
    """``async with open_broker(settings) as broker``: real Kite or the simulator (see module doc)."""
    use_sim = uses_simulator(settings) if simulator is None else simulator
    if use_sim:
        async with open_simulated_broker(settings, process=True) as broker:
            yield broker
        return
    api_key, access_token, store = real_credentials(settings)
    async with KiteRestClient(
        api_key, access_token, root=settings.broker.rest_root, on_session_expired=log_session_expired
    ) as rest:
        await rest.profile()  # cheap validity check; a dead token raises KiteTokenError with the hint
        yield Broker(
            rest=rest,
            api_key=api_key,
            access_token=access_token,
            ws_url=settings.broker.ws_root,
            simulated=False,
            watchdog_s=settings.live.watchdog_s,
            tick_queue_size=settings.live.tick_queue_size,
            token_store=store,
        )


@contextlib.asynccontextmanager
async def open_simulated_broker(
    settings: Settings, *, process: bool = False, **simulator_overrides: Unpack[SimulatorOverrides]
) -> AsyncIterator[Broker]:
    """A broker on the simulator (:func:`tickwise.bootstrap.simulator.start_simulator`).

    ``process=True`` runs it in a child process, as the commands do. Otherwise it runs in this event
    loop and ``broker.simulator`` is the :class:`RunningSimulator` (tests reach into its state).
    ``simulator_overrides`` are SimulatorConfig fields (``start``, ``speed``, ``faults``, ports...).
    """
    async with start_simulator(settings, process=process, **simulator_overrides) as logged_in:
        sim = logged_in.simulator
        yield Broker(
            rest=logged_in.rest,
            api_key=settings.broker.simulator.api_key,
            access_token=logged_in.session.access_token,
            ws_url=sim.ws_url,
            simulated=True,
            simulator=sim,
            now=sim.clock.now,
            watchdog_s=settings.live.watchdog_s,
            tick_queue_size=settings.live.tick_queue_size,
            relogin=logged_in.relogin,
        )
