"""`tickwise schedule --systemd [--out DIR]` and the `live --wait` gate: running unattended, every trading day."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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


def schedule(
    systemd: Annotated[bool, typer.Option("--systemd", help="Write systemd units and timers.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the units into.")] = Path("systemd"),
    root: Annotated[
        Path | None,
        typer.Option("--root", help="The tickwise checkout on the target machine (default: this one)."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Run the system units as this account (default: you).")
    ] = None,
    retention: Annotated[
        str, typer.Option("--retention", help="Weekly retention: drop tick chunks older than this.")
    ] = "7d",
) -> None:
    """Write timers for live each trading day (08:45 IST), historical nightly and retention weekly."""
    import getpass
    import sys

    from tickwise.bootstrap.systemd_units import UnitPlan, write_units
    from tickwise.cli.db import parse_duration
    from tickwise.domain.errors import ConfigError

    if not systemd:
        raise ConfigError("choose a scheduler: `tickwise schedule --systemd [--out DIR]`")
    parse_duration(retention)  # fail now, not in a week
    checkout = (root or _checkout()).resolve() if root is None else root
    script = (
        Path(sys.executable).with_name("tickwise") if root is None else root / ".venv" / "bin" / "tickwise"
    )
    plan = UnitPlan(root=checkout, tickwise=script, user=user or getpass.getuser(), retention=retention)
    for path in write_units(plan, out):
        typer.echo(f"wrote {path}")
    typer.echo(
        f"install: sudo cp {out}/tickwise-* /etc/systemd/system/ && sudo systemctl daemon-reload && "
        "sudo systemctl enable --now tickwise-live.timer tickwise-historical.timer tickwise-retention.timer tickwise-maintain.timer"
    )


def _checkout() -> Path:
    from tickwise.config import default_config_dir

    return default_config_dir().parent


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("schedule")(schedule)
