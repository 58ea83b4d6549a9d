"""`tickwise status [--json]`: is everything in place for today, and what needs action (exit 1)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tickwise.cli.context import state

if TYPE_CHECKING:
    from tickwise.bootstrap.status import StatusReport


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Database, world, token, champion, last data, live session, spill files and disk; exit 1 if action is needed."""
    from tickwise.bootstrap.status import collect_status

    report = asyncio.run(collect_status(state.settings()))
    if as_json:
        typer.echo(json.dumps(report.to_json(), default=str))
    else:
        for line in render(report):
            typer.echo(line)
    raise typer.Exit(0 if report.ok else 1)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _world_line(report: StatusReport) -> str:
    worlds: dict[str, Any] = report.worlds
    if not worlds:
        return report.world
    recorded = worlds.get("recorded")
    line = f"{report.world}: " + (
        recorded["describe"] if recorded else f"{worlds['configured']['describe']}, nothing recorded yet"
    )
    if worlds.get("data_dir"):
        line += f", data in {worlds['data_dir']}"
    others = [
        f"{o['name']} ({o['data_dir']}{'' if o['has_database'] else ', no database'})"
        for o in worlds.get("others", [])
    ]
    if others:
        line += "; other worlds: " + ", ".join(others)
    return line


def render(report: StatusReport) -> list[str]:
    """The text form: one line per topic, then the actions."""
    db = report.database
    lines = [f"tickwise {report.version}", f"world: {_world_line(report)}"]
    where = "external" if db.external else "embedded"
    if db.reachable:
        migrated = (
            f"migrated ({db.revision})"
            if db.migrated
            else f"at revision {db.revision or 'none'}, head {db.head}"
        )
        ts = f"TimescaleDB {db.timescaledb} ({db.edition})" if db.timescaledb else "TimescaleDB not installed"
        lines.append(f"database: {db.url} ({where}), {migrated}, PostgreSQL {db.postgresql}, {ts}")
    else:
        lines.append(f"database: {db.url} ({where}) not reachable: {db.error}")
    cal: dict[str, Any] = report.calendar
    today = (
        f"today {cal['today']} trades {cal['session']}"
        if cal["trading_day"]
        else f"no session today ({cal['today']})"
    )
    lines.append(
        f"calendar: {today}; next session {cal['next_session']}; holidays known through {cal['holidays_known_through']}"
    )
    token = report.token
    lines.append(
        f"token: {token['state']}" + (f", expires {token['expires_at']}" if token.get("expires_at") else "")
    )
    champ = report.champion
    if champ:
        lines.append(
            f"champion: {champ['model_version']} ({champ['age_days']} days old, trained to {champ['trained_to']})"
        )
    else:
        lines.append("champion: none" if db.migrated else "champion: unknown (database not ready)")
    for title, values in (("last candle", report.last_candle), ("last signal", report.last_signal)):
        if values:
            lines.append(f"{title}: " + ", ".join(f"{mode} {t or '-'}" for mode, t in values.items()))
    live = report.live_session
    if live is None:
        lines.append("live session: none recorded")
    elif "error" in live:
        lines.append(f"live session: {live['path']} {live['error']}")
    else:
        state_ = "running" if live["running"] else "not running"
        lines.append(
            f"live session: {state_} (updated {_ago(live['updated_s_ago'])}; feed {live.get('feed_state')}, "
            f"{live.get('bars')} bars, {live.get('signals')} signals, market time {live.get('market_time')})"
        )
    spill = report.spill
    lines.append(
        f"spill: {spill['pending_files']} pending, {spill['rejected_files']} rejected in {spill['dir']}"
    )
    lines.append(f"disk: {_size(report.disk['bytes'])} under {report.disk['data_dir']}")
    features = report.lifecycle.get("features", {})
    if features:
        saved = sum(c["saved_bytes"] or 0 for c in report.lifecycle.get("compression", []))
        on = [name for name, f in features.items() if f["on"]]
        lines.append(
            f"timescaledb lifecycle: {', '.join(on) or 'off (Apache build: see `tickwise db status`)'}"
            + (f"; compression saved {_size(saved)}" if "compression" in on else "")
        )
    if report.actions:
        lines.append("needs action:")
        lines.extend(f"  - {a}" for a in report.actions)
    else:
        lines.append("ok: nothing needs action")
    return lines


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("status")(status)
