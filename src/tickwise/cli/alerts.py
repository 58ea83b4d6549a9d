"""`tickwise alerts test`: send a test message to each configured alert channel and say what happened."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tickwise.cli.context import state

alerts_app = typer.Typer(help="Alert and signal notification channels.", no_args_is_help=True)


@alerts_app.command("test")
def test_command(
    channel: Annotated[
        str | None,
        typer.Option("--channel", "-c", help="Only this channel (a name under monitoring.alerts)."),
    ] = None,
) -> None:
    """Send a test message to every channel (exit 1 when one fails); shows what each one receives."""
    from tickwise.bootstrap.alerts import probe_channels

    results = asyncio.run(probe_channels(state.settings(), only=channel))
    for r in results:
        receives = ", ".join(r.receives) or "nothing (no route names it)"
        outcome = "delivered" if r.error is None else f"FAILED: {r.error}"
        typer.echo(f"{r.channel}: {outcome}; receives {receives}")
    if any(r.error is not None for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(alerts_app, name="alerts")
