"""`tickwise schedule --systemd [--out DIR]` and the `live --wait` gate: running unattended, every trading day."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from tickwise.config import Settings


def session_today(settings: Settings, today: str | None = None) -> bool:
    """`live --wait`: sleep until the pre-open and return True, or print one line and return False.

    False means there is nothing to run today (weekend, holiday, session over) or SIGINT/SIGTERM
    ended the wait; either way the command exits 0, so a scheduler does not restart it.
    """
    from tickwise.bootstrap.schedule import DayAction, wait_for_session

    async def waited() -> DayAction:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        plan = await wait_for_session(settings, today=today, stop=stop)
        if plan.action is DayAction.WAIT:
            typer.echo("stopped while waiting for the pre-open")
        elif plan.action is not DayAction.RUN:
            typer.echo(plan.message)
        return plan.action

    return asyncio.run(waited()) is DayAction.RUN


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app (the `schedule` command is added in a later step)."""
