"""Broker wiring: a Kite REST client and ticker factory, for real Kite or the in-process simulator.

    async with open_broker(settings) as broker:
        instruments = await broker.rest.instruments("NSE")
        async with broker.ticker() as ticker:
            await ticker.subscribe([408065])

* With Kite credentials (``KITE_API_KEY`` + ``KITE_API_SECRET``), a ``KITE_ACCESS_TOKEN`` or a token
  file from ``tickwise auth login``: talk to Kite with the api_key and access token. A missing or
  expired token is a BrokerError telling the user to run ``tickwise auth login``.
* With none of those: start the simulator on loopback (config ``broker.simulator``; free ports are
  used if the configured ones are busy) and obtain an access token through the real login flow
  (``/connect/login`` redirect -> loopback callback -> ``POST /session/token`` with the checksum).
  The commands run it in a child process (``open_simulated_broker(..., process=True)``), so that it
  streams on time however busy the pipeline keeps this process, as the real Kite would; tests run it
  in-process to reach into its state.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from loguru import logger

from tickwise.adapters.kite.auth import LoginCallbackServer, StoredToken, TokenStore, login_flow
from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.adapters.kite.rest import KiteRestClient, KiteSession
from tickwise.adapters.kite.ticker import KiteTicker
from tickwise.config import Settings
from tickwise.domain.errors import BrokerError, ConfigError
from tickwise.domain.time import IST
from tickwise.pipelines.historical.instruments import InstrumentManager, SyncResult

if TYPE_CHECKING:
    from tickwise.adapters.kite.simulator import SimulatorConfig

RELOGIN_HINT = "run `tickwise auth login`"


@dataclass
class Broker:
    """An authenticated broker connection: REST client, ticker factory, clock."""

    rest: KiteRestClient
    api_key: str
    access_token: str
    ws_url: str
    simulated: bool
    simulator: Any | None = None  # the running simulator (simulated brokers only)
    now: Callable[[], datetime] = lambda: datetime.now(IST)  # market clock (the simulator's when simulated)
    watchdog_s: float = 5.0
    tick_queue_size: int = 100_000
    token_store: TokenStore | None = None
    relogin: Callable[[], Awaitable[str | None]] | None = None  # a simulator in a child process

    def ticker(self, **kwargs: Any) -> KiteTicker:
        """A new (not started) KiteTicker bound to this broker; keyword arguments override defaults."""
        kwargs.setdefault("root", self.ws_url)
        kwargs.setdefault("now", self.now)
        kwargs.setdefault("watchdog_s", self.watchdog_s)
        kwargs.setdefault("queue_size", self.tick_queue_size)
        kwargs.setdefault("token_reloader", self._reload_token)
        return KiteTicker(self.api_key, self.access_token, **kwargs)

    @property
    def ticker_factory(self) -> Callable[..., KiteTicker]:
        return self.ticker

    async def _reload_token(self) -> str | None:
        """After a 403: a newer token from the token file (the user re-ran `auth login`), if any."""
        if self.simulated and self.relogin is not None:
            try:
                token = await self.relogin()
            except Exception as exc:  # a failed re-login leaves the 403 to the caller
                logger.warning("simulator re-login failed: {}: {}", type(exc).__name__, exc)
                token = None
        elif self.simulated:
            issue = getattr(self.simulator, "issue_access_token", None)
            token = issue() if callable(issue) else None
        elif self.token_store is not None:
            stored = self.token_store.load()
            token = (
                stored.access_token
                if stored and stored.api_key == self.api_key and stored.is_valid()
                else None
            )
        else:
            token = None
        if isinstance(token, str) and token and token != self.access_token:
            self.access_token = token
            self.rest.set_access_token(token)
            return token
        return None

    def __repr__(self) -> str:
        return f"Broker(simulated={self.simulated}, api_key={self.api_key!r}, ws_url={self.ws_url!r})"


def token_store(settings: Settings, *, simulated: bool = False) -> TokenStore:
    """The token file (the simulator's lives beside it, so it never shadows a real login)."""
    path = Path(settings.broker.token_file)
    if simulated:
        path = path.with_name(f"{path.stem}.simulator{path.suffix}")
    return TokenStore(path)


def uses_simulator(settings: Settings) -> bool:
    """True when no Kite credentials, access token or real token file exist."""
    broker = settings.broker
    if broker.has_credentials or broker.api_key or broker.access_token.get_secret_value():
        return False
    try:
        stored = token_store(settings).load()
    except BrokerError:
        return False  # a corrupt token file is the user's real-Kite state: report it, don't hide it
    return stored is None or stored.simulated


@contextlib.asynccontextmanager
async def open_broker(settings: Settings, *, simulator: bool | None = None) -> AsyncIterator[Broker]:
    """``async with open_broker(settings) as broker``: real Kite or the simulator (see module doc)."""
    use_sim = uses_simulator(settings) if simulator is None else simulator
    if use_sim:
        async with open_simulated_broker(settings, process=True) as broker:
            yield broker
        return
    api_key, access_token, store = _real_credentials(settings)
    async with KiteRestClient(
        api_key, access_token, root=settings.broker.rest_root, on_session_expired=_log_session_expired
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


def _real_credentials(settings: Settings) -> tuple[str, str, TokenStore]:
    broker = settings.broker
    store = token_store(settings)
    env_token = broker.access_token.get_secret_value()
    stored = store.load()
    if stored is not None and stored.simulated:
        stored = None
    api_key = broker.api_key or (stored.api_key if stored else "")
    if not api_key:
        raise ConfigError(
            "KITE_ACCESS_TOKEN is set but KITE_API_KEY is not: set both (or neither, for the simulator)"
        )
    if env_token:
        return api_key, env_token, store
    if stored is None or stored.api_key != api_key:
        raise BrokerError(f"no Kite access token for api_key {api_key!r}: {RELOGIN_HINT}")
    if not stored.is_valid():
        raise BrokerError(
            f"the Kite access token expired at {stored.expires_at:%Y-%m-%d %H:%M} IST "
            f"(tokens expire at 06:00 IST every day): {RELOGIN_HINT}"
        )
    return api_key, stored.access_token, store


def _log_session_expired(exc: KiteTokenError) -> None:
    logger.error("the Kite session expired or was invalidated ({}): {}", exc.message, RELOGIN_HINT)


# -- the simulator -----------------------------------------------------------------------------------
def _port_or_free(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host``, else 0 (let the OS pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return 0
    return port


def simulator_config(settings: Settings, *, redirect_url: str, **overrides: Any) -> SimulatorConfig:
    """The SimulatorConfig for ``settings.broker.simulator`` (configured ports, or free ones if busy).

    ``overrides`` are SimulatorConfig fields (e.g. ``start``, ``faults``, ``speed``).
    """
    from tickwise.adapters.kite.simulator import SimulatorConfig

    sim = settings.broker.simulator
    values: dict[str, Any] = {
        "host": sim.host,
        "rest_port": _port_or_free(sim.host, sim.port),
        "ws_port": _port_or_free(sim.host, sim.ws_port),
        "seed": sim.seed,
        "n_instruments": sim.instruments,
        "speed": sim.speed,
        "api_key": sim.api_key,
        "api_secret": sim.api_secret.get_secret_value(),
        "redirect_url": redirect_url,
    }
    values.update(overrides)
    return SimulatorConfig(**values)


async def simulator_login(
    rest: KiteRestClient, sim_rest_url: str, api_secret: str, callback: LoginCallbackServer
) -> KiteSession:
    """Drive the simulator's login like a browser: GET /connect/login, follow the redirect to ``callback``."""

    async def browse(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=True, timeout=10.0) as browser:
            response = await browser.get(url)
            if response.status_code >= 400:
                raise BrokerError(
                    f"simulator login page answered HTTP {response.status_code} at {response.url}"
                )

    return await login_flow(
        rest,
        api_secret,
        login_base_url=f"{sim_rest_url.rstrip('/')}/connect/login",
        callback=callback,
        open_login=browse,
        timeout_s=15.0,
    )


@contextlib.asynccontextmanager
async def open_simulated_broker(
    settings: Settings, *, process: bool = False, **simulator_overrides: Any
) -> AsyncIterator[Broker]:
    """Start the simulator on loopback and log in to it through the real flow.

    ``process=True`` runs it in a child process (:func:`spawn_simulator`), as the commands do: it then
    streams on time however busy this process is, like the real Kite. Otherwise it runs in this event
    loop and ``broker.simulator`` is the :class:`RunningSimulator` (tests reach into its state).
    """
    sim_settings = settings.broker.simulator
    api_secret = sim_settings.api_secret.get_secret_value()
    if process:
        async with _simulator_process(settings, simulator_overrides) as broker:
            yield broker
        return
    from tickwise.adapters.kite.simulator import run_simulator

    async with LoginCallbackServer(0, host="127.0.0.1") as callback:
        config = simulator_config(settings, redirect_url=callback.redirect_url, **simulator_overrides)
        async with (
            run_simulator(config) as sim,
            KiteRestClient(
                sim_settings.api_key, root=sim.rest_url, on_session_expired=_log_session_expired
            ) as rest,
        ):
            session = await simulator_login(rest, sim.rest_url, api_secret, callback)
            logger.info("simulator running: REST {} WebSocket {}", sim.rest_url, sim.ws_url)
            yield Broker(
                rest=rest,
                api_key=sim_settings.api_key,
                access_token=session.access_token,
                ws_url=sim.ws_url,
                simulated=True,
                simulator=sim,
                now=sim.clock.now,
                watchdog_s=settings.live.watchdog_s,
                tick_queue_size=settings.live.tick_queue_size,
            )


@contextlib.asynccontextmanager
async def _simulator_process(settings: Settings, overrides: dict[str, Any]) -> AsyncIterator[Broker]:
    from tickwise.adapters.kite.simulator.process import spawn_simulator

    sim_settings = settings.broker.simulator
    api_secret = sim_settings.api_secret.get_secret_value()
    # The login redirect goes to a loopback port fixed in the simulator's config: the callback server
    # is closed after the login, so that a re-login (after a 403) can listen on the same port again.
    async with contextlib.AsyncExitStack() as stack:
        async with LoginCallbackServer(0, host="127.0.0.1") as callback:
            config = simulator_config(settings, redirect_url=callback.redirect_url, **overrides)
            sim = await stack.enter_async_context(spawn_simulator(config))
            rest = await stack.enter_async_context(
                KiteRestClient(
                    sim_settings.api_key, root=sim.rest_url, on_session_expired=_log_session_expired
                )
            )
            session = await simulator_login(rest, sim.rest_url, api_secret, callback)
            callback_port = callback.port

        async def relogin() -> str | None:
            async with LoginCallbackServer(callback_port, host="127.0.0.1") as again:
                return (await simulator_login(rest, sim.rest_url, api_secret, again)).access_token

        logger.info(
            "simulator running in process {}: REST {} WebSocket {}", sim.pid, sim.rest_url, sim.ws_url
        )
        yield Broker(
            rest=rest,
            api_key=sim_settings.api_key,
            access_token=session.access_token,
            ws_url=sim.ws_url,
            simulated=True,
            simulator=sim,
            now=sim.clock.now,
            watchdog_s=settings.live.watchdog_s,
            tick_queue_size=settings.live.tick_queue_size,
            relogin=relogin,
        )


# -- `tickwise auth` ----------------------------------------------------------------------------------
async def login_interactive(
    settings: Settings,
    *,
    open_browser: bool = True,
    timeout_s: float = 300.0,
    echo: Callable[[str], None] = print,
) -> StoredToken:
    """The daily Kite login: print/open the login URL, capture the redirect, store the token (0600)."""
    broker = settings.broker
    if not broker.has_credentials:
        raise ConfigError(
            "Kite login needs KITE_API_KEY and KITE_API_SECRET (or use `tickwise auth login --simulator`)"
        )
    async with (
        LoginCallbackServer(broker.redirect_port) as callback,
        KiteRestClient(broker.api_key, root=broker.rest_root) as rest,
    ):

        def show(url: str) -> None:
            echo(f"Open this URL in a browser and log in to Kite:\n  {url}")
            echo(
                f"Waiting for the redirect on {callback.redirect_url} (the app's registered redirect URL)..."
            )
            if open_browser:
                import webbrowser

                with contextlib.suppress(Exception):
                    webbrowser.open(url)

        session = await login_flow(
            rest,
            broker.api_secret.get_secret_value(),
            login_base_url=broker.login_url,
            callback=callback,
            open_login=show,
            timeout_s=timeout_s,
        )
    token = StoredToken.from_session(session)
    token_store(settings).save(token)
    return token


async def login_with_simulator(settings: Settings) -> StoredToken:
    """Start the simulator, log in to it end to end (as a browser would), store the token beside the real one."""
    from tickwise.adapters.kite.simulator import run_simulator

    sim_settings = settings.broker.simulator
    async with (
        LoginCallbackServer(0, host="127.0.0.1") as callback,
        run_simulator(simulator_config(settings, redirect_url=callback.redirect_url)) as sim,
        KiteRestClient(sim_settings.api_key, root=sim.rest_url) as rest,
    ):
        session = await simulator_login(
            rest, sim.rest_url, sim_settings.api_secret.get_secret_value(), callback
        )
        await rest.profile()
    token = StoredToken.from_session(session, simulated=True)
    token_store(settings, simulated=True).save(token)
    return token


@dataclass(frozen=True, slots=True)
class TokenStatus:
    path: Path
    token: StoredToken | None
    valid: bool
    source: str  # 'file', 'environment' or 'none'


def token_status(settings: Settings, *, simulated: bool = False, now: datetime | None = None) -> TokenStatus:
    """The state of the stored token (expired once 06:00 IST after login has passed)."""
    store = token_store(settings, simulated=simulated)
    if not simulated and settings.broker.access_token.get_secret_value():
        return TokenStatus(store.path, None, True, "environment")
    token = store.load()
    if token is None:
        return TokenStatus(store.path, None, False, "none")
    return TokenStatus(store.path, token, token.is_valid(now), "file")


# -- `tickwise instruments sync` -----------------------------------------------------------------------
async def sync_instruments(settings: Settings, *, exchanges: Sequence[str] | None = None) -> SyncResult:
    """Sync the instrument dump of the configured broker (or the simulator) into the database."""
    from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
    from tickwise.bootstrap.database import open_pool

    async with open_broker(settings) as broker, open_pool(settings) as pool:
        today = broker.now().date()
        manager = InstrumentManager(
            broker.rest, TimescaleInstrumentRepository(pool), exchanges=exchanges, today=lambda: today
        )
        return await manager.sync()
