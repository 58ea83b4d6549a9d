"""`tickwise simulate`: run the Kite-compatible simulator (REST + WebSocket) until Ctrl-C."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from tickwise.cli.context import state


def simulate(
    host: Annotated[str | None, typer.Option("--host", help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="REST port (default 8765; 0 = any free port).")
    ] = None,
    ws_port: Annotated[
        int | None, typer.Option("--ws-port", help="WebSocket port (default 8766; 0 = any free port).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Market seed (same seed, same market).")] = None,
    speed: Annotated[
        float | None, typer.Option("--speed", help="Simulated seconds per real second (default 1).")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="Simulated IST start: 'YYYY-MM-DD HH:MM[:SS]' or YYYY-MM-DD (09:14:50). "
            "Default: now if a session is running, else just before the next session.",
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="Fault script, e.g. '10:05 abort; 10:20 stall 8s; 11:00 reject 3 403', or @file "
            "(see tickwise.adapters.kite.simulator.faults for the syntax).",
        ),
    ] = None,
    instruments: Annotated[
        int | None, typer.Option("--instruments", min=1, max=9000, help="NSE equities to simulate.")
    ] = None,
    redirect_url: Annotated[
        str | None,
        typer.Option("--redirect-url", help="Where /connect/login redirects with the request_token."),
    ] = None,
) -> None:
    """Run the Kite-compatible simulator: REST on --port, ticker WebSocket on --ws-port, until Ctrl-C."""
    from tickwise.adapters.kite.simulator import SimulatorConfig, parse_faults
    from tickwise.adapters.kite.simulator.clock import parse_start
    from tickwise.domain.errors import ConfigError

    settings = state.settings()
    sim = settings.broker.simulator
    script = faults or ""
    if script.startswith("@"):
        script = Path(script[1:]).read_text()
    try:
        parsed_faults = parse_faults(script)
        start_at = parse_start(start) if start else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    config = SimulatorConfig(
        host=host or sim.host,
        rest_port=sim.port if port is None else port,
        ws_port=sim.ws_port if ws_port is None else ws_port,
        seed=sim.seed if seed is None else seed,
        speed=1.0 if speed is None else speed,
        start=start_at,
        n_instruments=instruments or sim.instruments,
        api_key=sim.api_key,
        api_secret=sim.api_secret.get_secret_value(),
        redirect_url=redirect_url or f"http://127.0.0.1:{settings.broker.redirect_port}/",
        faults=parsed_faults,
    )
    if config.speed < 0:
        raise ConfigError(f"--speed must be >= 0, got {config.speed}")
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        typer.echo("simulator stopped")


async def _serve(config: object) -> None:
    from tickwise.adapters.kite.simulator import SimulatorConfig, run_simulator

    assert isinstance(config, SimulatorConfig)
    async with run_simulator(config) as sim:
        typer.echo(f"Kite simulator REST      {sim.rest_url}")
        typer.echo(f"Kite simulator WebSocket {sim.ws_url}")
        typer.echo(f"api_key {sim.api_key}  (login: {sim.rest_url}/connect/login?v=3&api_key={sim.api_key})")
        typer.echo(
            f"simulated clock {sim.clock.now():%Y-%m-%d %H:%M:%S} IST at {config.speed:g}x, seed {config.seed}, "
            f"{len(sim.universe.members)} instruments, {len(sim.faults.pending)} scripted faults. Ctrl-C to stop."
        )
        await asyncio.Event().wait()


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("simulate")(simulate)
