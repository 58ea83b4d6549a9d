"""`tickwise instruments sync`: download the day's instrument dump into the ``instruments`` table."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tickwise.bootstrap.login import require_kite_login
from tickwise.cli.context import state

instruments_app = typer.Typer(
    help="The instrument master (Kite's daily instrument dump).", no_args_is_help=True
)


@instruments_app.command("sync")
def sync(
    exchange: Annotated[
        list[str] | None,
        typer.Option("--exchange", "-e", help="Only these exchanges (repeatable), e.g. NSE; default: all."),
    ] = None,
) -> None:
    """Upsert today's dump; instruments that vanished or expired are marked inactive."""
    from tickwise.bootstrap.instruments import sync_instruments

    settings = state.settings()
    require_kite_login(settings)  # one line naming the login command, before any work
    result = asyncio.run(sync_instruments(settings, exchanges=exchange or None))
    typer.echo(
        f"instruments: {result.total} active in the dump, {result.inserted} new, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.expired} marked inactive"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(instruments_app, name="instruments")
