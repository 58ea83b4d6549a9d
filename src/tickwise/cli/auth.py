"""`tickwise auth login|status|logout`: the daily Kite login and the stored access token.

``login`` prints the Kite login URL (``<login_url>?v=3&api_key=...``), listens on
``127.0.0.1:<broker.redirect_port>`` for the redirect carrying the request_token, exchanges it (with
the sha256 checksum) for an access token and stores it with mode 0600. ``--request-token`` does the
exchange with a token pasted from a browser on another machine (login on a server). ``--simulator`` runs
the same flow end to end against an in-process simulator (no account needed). ``check`` says whether the
token lasts through the next session, and alerts when it does not. Tokens are never printed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from tickwise.bootstrap import auth as auth_wiring
from tickwise.bootstrap import credentials
from tickwise.bootstrap import login as login_wiring
from tickwise.cli.context import state
from tickwise.config import Settings
from tickwise.domain.time import IST

auth_app = typer.Typer(help="Kite login and access-token state.", no_args_is_help=True)


@auth_app.command("login")
def login(
    simulator: Annotated[
        bool,
        typer.Option("--simulator", help="Log in to an in-process simulator, end to end, automatically."),
    ] = False,
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the login URL in a browser.")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the login redirect.")
    ] = 300.0,
    request_token: Annotated[
        str | None,
        typer.Option(
            "--request-token",
            help="Finish a login done in a browser elsewhere: the request_token of the redirect URL (or the URL).",
        ),
    ] = None,
) -> None:
    """Log in to Kite (or the simulator) and store the access token (mode 0600)."""
    settings = state.settings()
    if request_token is not None:
        stored = asyncio.run(login_wiring.login_with_request_token(settings, request_token))
        typer.echo(
            f"login ok: user {stored.user_id or '?'}, token stored in {credentials.token_store(settings).path}, "
            f"valid until {stored.expires_at:%Y-%m-%d %H:%M} IST"
        )
        return
    if simulator:
        token = asyncio.run(auth_wiring.login_with_simulator(settings))
        path = credentials.token_store(settings, simulated=True).path
        typer.echo(
            f"simulator login ok: user {token.user_id or '?'}, token stored in {path} "
            f"(expires {token.expires_at:%Y-%m-%d %H:%M} IST on the simulated clock)"
        )
        return
    token = asyncio.run(
        auth_wiring.login_interactive(settings, open_browser=browser, timeout_s=timeout, echo=typer.echo)
    )
    path = credentials.token_store(settings).path
    typer.echo(
        f"login ok: user {token.user_id or '?'}, token stored in {path}, valid until "
        f"{token.expires_at:%Y-%m-%d %H:%M} IST"
    )


@auth_app.command("status")
def status(
    simulator: Annotated[
        bool, typer.Option("--simulator", help="Show the simulator's token instead.")
    ] = False,
) -> None:
    """Show whether the stored access token is valid and when it expires (exit 1 when it is not)."""
    settings = state.settings()
    info = credentials.token_status(settings, simulated=simulator)
    if info.source == "environment":
        typer.echo("access token from KITE_ACCESS_TOKEN (expiry unknown: Kite tokens expire at 06:00 IST)")
        return
    if info.token is None:
        hint = "tickwise auth login --simulator" if simulator else "tickwise auth login"
        if not simulator and credentials.uses_simulator(settings):
            typer.echo(f"no Kite credentials or token ({info.path}): the simulator will be used")
            return
        typer.echo(f"no access token stored ({info.path}): run `{hint}`")
        raise typer.Exit(1)
    token = info.token
    now = datetime.now(IST)
    if info.valid:
        left = token.expires_at - now
        hours, rem = divmod(int(left.total_seconds()), 3600)
        typer.echo(
            f"valid: user {token.user_id or '?'}, api_key {token.api_key}, logged in "
            f"{token.login_time:%Y-%m-%d %H:%M} IST, expires {token.expires_at:%Y-%m-%d %H:%M} IST "
            f"(in {hours}h{rem // 60:02d}m)"
        )
        if not simulator:
            from tickwise.bootstrap.calendar import calendar_of

            typer.echo(login_wiring.token_check(token, calendar_of(settings), now).message)
        return
    typer.echo(
        f"expired: the token from {token.login_time:%Y-%m-%d %H:%M} IST expired at "
        f"{token.expires_at:%Y-%m-%d %H:%M} IST: run `tickwise auth login`"
    )
    raise typer.Exit(1)


@auth_app.command("check")
def check(
    alert: Annotated[
        bool, typer.Option("--alert/--no-alert", help="Also send the alert through the configured channels.")
    ] = True,
) -> None:
    """Will the Kite token last through the next session? Exit 1 (and alert) when a login is needed."""
    from tickwise.bootstrap.calendar import calendar_of

    settings = state.settings()
    result = login_wiring.check_token(settings, calendar_of(settings))
    typer.echo(result.message)
    if not result.needs_login:
        return
    if alert:
        asyncio.run(_send_token_alert(settings, result))
    raise typer.Exit(1)


async def _send_token_alert(settings: Settings, result: login_wiring.TokenCheck) -> None:
    from tickwise.bootstrap.alerts import make_alerts

    alerts = make_alerts(settings)
    if login_wiring.alert_token_expiry(result, alerts):
        await alerts.drain()
    await alerts.close()


@auth_app.command("logout")
def logout(
    simulator: Annotated[
        bool, typer.Option("--simulator", help="Forget the simulator's token instead.")
    ] = False,
) -> None:
    """Forget the stored access token (it stays valid at Kite until 06:00 IST)."""
    store = credentials.token_store(state.settings(), simulated=simulator)
    typer.echo(f"removed {store.path}" if store.clear() else f"no token stored ({store.path})")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.add_typer(auth_app, name="auth")
