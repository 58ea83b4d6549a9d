"""`tickwise simulate`: run the Kite-compatible simulator (REST + WebSocket) until Ctrl-C."""

from __future__ import annotations

import asyncio
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
        float | None,
        typer.Option(
            "--speed", help="Simulated seconds per real second (default: broker.simulator.speed, 60)."
        ),
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
    from tickwise.bootstrap.simulator import SimulateOptions, serve_standalone, standalone_config

    options = SimulateOptions(
        host=host,
        port=port,
        ws_port=ws_port,
        seed=seed,
        speed=speed,
        start=start,
        faults=faults,
        instruments=instruments,
        redirect_url=redirect_url,
    )
    config = standalone_config(state.settings(), options)
    try:
        asyncio.run(serve_standalone(config, typer.echo))
    except KeyboardInterrupt:
        typer.echo("simulator stopped")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("simulate")(simulate)
