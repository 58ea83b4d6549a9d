"""Start the Kite simulator and log in to it, the one way every command does it.

    async with start_simulator(settings, process=True) as logged_in:
        profile = await logged_in.rest.profile()

The simulator listens on the configured ports (``broker.simulator``), or on free ones if those are
busy, and the access token is obtained through the real login flow (``/connect/login`` redirect ->
loopback callback -> ``POST /session/token`` with the checksum), so the client's login code is
exercised on every run. ``process=True`` runs the simulator in a child process, as the commands do: it
then streams on time however busy this process is, like the real Kite. In-process, ``simulator`` is the
:class:`RunningSimulator` whose state tests reach into.

``tickwise simulate`` runs a standalone simulator instead (:func:`standalone_config`,
:func:`serve_standalone`): no login, it serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import httpx
from loguru import logger

from tickwise.adapters.kite.auth import LoginCallbackServer, login_flow
from tickwise.adapters.kite.rest import KiteRestClient, KiteSession
from tickwise.bootstrap.credentials import log_session_expired
from tickwise.config import Settings
from tickwise.domain.errors import BrokerError, ConfigError

if TYPE_CHECKING:
    # The simulator (aiohttp, the market model) is imported only when one is started.
    from tickwise.adapters.kite.simulator import RunningSimulator, SimulatorConfig
    from tickwise.adapters.kite.simulator.process import SimulatorProcess
    from tickwise.adapters.kite.simulator.state import SimulatorOverrides


def _port_or_free(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host``, else 0 (let the OS pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return 0
    return port


def simulator_config(
    settings: Settings, *, redirect_url: str, **overrides: Unpack[SimulatorOverrides]
) -> SimulatorConfig:
    """The SimulatorConfig for ``settings.broker.simulator`` (configured ports, or free ones if busy).

    ``overrides`` are SimulatorConfig fields (e.g. ``start``, ``faults``, ``speed``).
    """
    from tickwise.adapters.kite.simulator import SimulatorConfig

    sim = settings.broker.simulator
    config = SimulatorConfig(
        host=sim.host,
        rest_port=_port_or_free(sim.host, sim.port),
        ws_port=_port_or_free(sim.host, sim.ws_port),
        seed=sim.seed,
        n_instruments=sim.instruments,
        speed=sim.speed,
        api_key=sim.api_key,
        api_secret=sim.api_secret.get_secret_value(),
        redirect_url=redirect_url,
        bad_prints=sim.bad_prints,
    )
    return dataclasses.replace(config, **overrides)


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


@dataclass(frozen=True, slots=True)
class SimulatorLogin:
    """A running simulator and a REST client logged in to it."""

    simulator: RunningSimulator | SimulatorProcess
    rest: KiteRestClient
    session: KiteSession  # the login's outcome: access token, user, login time
    relogin: Callable[[], Awaitable[str]]  # the login flow again (after a 403); returns the new token


@contextlib.asynccontextmanager
async def start_simulator(
    settings: Settings, *, process: bool, **simulator_overrides: Unpack[SimulatorOverrides]
) -> AsyncIterator[SimulatorLogin]:
    """Start the simulator (in a child process or in this event loop) and log in to it (see module doc)."""
    sim_settings = settings.broker.simulator
    api_secret = sim_settings.api_secret.get_secret_value()
    # The login redirect goes to a loopback port fixed in the simulator's config: the callback server
    # is closed after the login, so that a re-login (after a 403) can listen on the same port again.
    async with contextlib.AsyncExitStack() as stack:
        async with LoginCallbackServer(0, host="127.0.0.1") as callback:
            config = simulator_config(settings, redirect_url=callback.redirect_url, **simulator_overrides)
            try:
                sim = await stack.enter_async_context(_run(config, process=process))
            except (BrokerError, OSError) as exc:
                if config.rest_port == 0 and config.ws_port == 0:
                    raise
                # Another program took a configured port between the check and the bind (tests and
                # other commands start simulators too): any free port serves as well, once.
                logger.warning("simulator did not start on its configured ports ({}); using free ports", exc)
                config = dataclasses.replace(config, rest_port=0, ws_port=0)
                sim = await stack.enter_async_context(_run(config, process=process))
            rest = await stack.enter_async_context(
                KiteRestClient(
                    sim_settings.api_key, root=sim.rest_url, on_session_expired=log_session_expired
                )
            )
            session = await simulator_login(rest, sim.rest_url, api_secret, callback)
            callback_port = callback.port

        async def relogin() -> str:
            async with LoginCallbackServer(callback_port, host="127.0.0.1") as again:
                return (await simulator_login(rest, sim.rest_url, api_secret, again)).access_token

        pid = getattr(sim, "pid", None)  # only a child process has one
        where = "in this process" if pid is None else f"in process {pid}"
        logger.info("simulator running {}: REST {} WebSocket {}", where, sim.rest_url, sim.ws_url)
        yield SimulatorLogin(simulator=sim, rest=rest, session=session, relogin=relogin)


def _run(
    config: SimulatorConfig, *, process: bool
) -> AbstractAsyncContextManager[RunningSimulator | SimulatorProcess]:
    if process:
        from tickwise.adapters.kite.simulator.process import spawn_simulator

        return spawn_simulator(config)
    from tickwise.adapters.kite.simulator import run_simulator

    return run_simulator(config)


# -- `tickwise simulate` -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """The command-line choices of ``tickwise simulate``; ``None`` means the configured value."""

    host: str | None = None
    port: int | None = None  # REST; 0 = any free port
    ws_port: int | None = None  # 0 = any free port
    seed: int | None = None
    speed: float | None = None  # simulated seconds per real second
    start: str | None = None  # simulated IST start, 'YYYY-MM-DD HH:MM[:SS]' or YYYY-MM-DD
    faults: str | None = None  # a fault script, or @path of a file holding one
    instruments: int | None = None
    redirect_url: str | None = None


def standalone_config(settings: Settings, options: SimulateOptions) -> SimulatorConfig:
    """The SimulatorConfig for ``tickwise simulate``: options over ``broker.simulator``; ConfigError if invalid."""
    from tickwise.adapters.kite.simulator import SimulatorConfig, parse_faults
    from tickwise.adapters.kite.simulator.clock import parse_start

    sim = settings.broker.simulator
    script = options.faults or ""
    if script.startswith("@"):
        try:
            script = Path(script[1:]).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the fault script {script[1:]!r}: {exc.strerror}") from None
    speed = sim.speed if options.speed is None else options.speed
    if speed < 0:
        raise ConfigError(f"--speed must be >= 0, got {speed}")
    try:
        parsed_faults = parse_faults(script)
        start_at = parse_start(options.start) if options.start else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return SimulatorConfig(
        host=options.host or sim.host,
        rest_port=sim.port if options.port is None else options.port,
        ws_port=sim.ws_port if options.ws_port is None else options.ws_port,
        seed=sim.seed if options.seed is None else options.seed,
        speed=speed,
        start=start_at,
        n_instruments=options.instruments or sim.instruments,
        api_key=sim.api_key,
        api_secret=sim.api_secret.get_secret_value(),
        redirect_url=options.redirect_url or f"http://127.0.0.1:{settings.broker.redirect_port}/",
        faults=parsed_faults,
        bad_prints=sim.bad_prints,
    )


async def serve_standalone(config: SimulatorConfig, echo: Callable[[str], None]) -> None:
    """Run the simulator in this process, print where it listens, and serve until cancelled (Ctrl-C)."""
    from tickwise.adapters.kite.simulator import run_simulator

    async with run_simulator(config) as sim:
        echo(f"Kite simulator REST      {sim.rest_url}")
        echo(f"Kite simulator WebSocket {sim.ws_url}")
        echo(f"api_key {sim.api_key}  (login: {sim.rest_url}/connect/login?v=3&api_key={sim.api_key})")
        echo(
            f"simulated clock {sim.clock.now():%Y-%m-%d %H:%M:%S} IST at {config.speed:g}x, seed {config.seed}, "
            f"{len(sim.universe.members)} instruments, {len(sim.faults.pending)} scripted faults. Ctrl-C to stop."
        )
        await asyncio.Event().wait()
