"""`tickwise db up|down|status|url|migrate|retention|maintain`: the database the platform uses.

With ``DATABASE_URL`` (``database.url``) set, that database is used and ``up``/``down`` do nothing;
otherwise the embedded TimescaleDB cluster under ``<data_dir>/pg`` (port ``database.port``) is managed.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated

import typer

from tickwise.bootstrap import database
from tickwise.bootstrap.database import EnsureReport
from tickwise.cli.context import state
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError, StorageError

db_app = typer.Typer(
    help="Manage the TimescaleDB database (embedded cluster or DATABASE_URL).", no_args_is_help=True
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``2w``, ``30m``, ``45s`` -> timedelta (ConfigError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"--older-than {text!r}: expected a duration such as 7d, 12h, 2w or 30m")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _external_notice(action: str) -> None:
    url = state.settings().database.url
    typer.echo(
        f"DATABASE_URL is set: using the external database {database.redact_url(url.get_secret_value())}; nothing to {action}"
    )


@db_app.command("up")
def up(
    migrate: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Also apply migrations.")] = True,
) -> None:
    """Start the embedded TimescaleDB cluster (idempotent) and apply migrations."""
    settings = state.settings()
    if database.uses_external_database(settings):
        _external_notice("start")
        return
    cluster = database.embedded_cluster(settings)
    was_running = cluster.running_pid() is not None
    url = cluster.up()
    report = (
        database.migrate(cluster.admin_url(), policy=database.lifecycle_policy(settings)) if migrate else None
    )
    typer.echo(f"{'already running' if was_running else 'started'}: {url} (data {cluster.pgdata})")
    _echo_lifecycle(report)
    if was_running:
        for name, value in asyncio.run(database.unapplied_server_settings(settings)).items():
            typer.echo(
                f"note: the running cluster has {name} = {value!r}, not the configured "
                f"{settings.database.server_settings[name]!r}: restart it (`tickwise db down && tickwise db up`)"
            )


def _echo_lifecycle(report: EnsureReport | None) -> None:
    """What the lifecycle re-check after a migration changed, and what it could not."""
    if report is None:
        return
    for action in report.actions:
        typer.echo(f"timescaledb lifecycle: {action}")
    for warning in report.warnings:
        typer.echo(f"timescaledb lifecycle WARNING: {warning}", err=True)


@db_app.command("down")
def down() -> None:
    """Stop the embedded cluster."""
    settings = state.settings()
    if database.uses_external_database(settings):
        _external_notice("stop")
        return
    cluster = database.embedded_cluster(settings)
    stopped = cluster.down()
    typer.echo(f"stopped ({cluster.pgdata})" if stopped else f"not running ({cluster.pgdata})")


@db_app.command("status")
def status() -> None:
    """Report whether the database runs, where, and its PostgreSQL/TimescaleDB versions and license."""
    settings = state.settings()
    if database.uses_external_database(settings):
        info = asyncio.run(database.external_server_info(settings))
        typer.echo(f"external database: {database.redact_url(settings.database.url.get_secret_value())}")
        typer.echo(f"postgresql: {info['version']}")
        typer.echo(
            f"timescaledb: {info['timescaledb_version'] or 'not installed'} (license {info['timescaledb_license']})"
        )
        _echo_lifecycle_status(settings)
        return
    st = database.embedded_cluster(settings).status()
    typer.echo(
        f"embedded cluster: {'running' if st.running else 'stopped'}" + (f" (pid {st.pid})" if st.pid else "")
    )
    typer.echo(f"data: {st.data_dir}")
    typer.echo(f"port: {st.port}")
    typer.echo(f"url: {st.url}")
    if st.running:
        typer.echo(f"postgresql: {st.version}")
        typer.echo(
            f"timescaledb: {st.timescaledb_version or 'not installed'} (license {st.timescaledb_license})"
        )
        _echo_lifecycle_status(settings)


def _echo_lifecycle_status(settings: Settings) -> None:
    """Which TimescaleDB lifecycle features are on (and why not), space saved, jobs and their failures."""
    try:
        status = asyncio.run(database.lifecycle_status(settings))
    except StorageError as exc:
        typer.echo(f"lifecycle: unknown ({exc})")
        return
    for feature in status.features:
        typer.echo(f"{feature.name}: {'on' if feature.active else 'off'} - {feature.detail}")
    for c in status.compression:
        saved = (
            f", {_mb(c.bytes_before)} -> {_mb(c.bytes_after)} ({_mb(c.saved_bytes)} saved)"
            if c.saved_bytes is not None
            else ""
        )
        typer.echo(f"compression {c.table}: {c.compressed_chunks}/{c.chunks} chunks compressed{saved}")
    for job in status.jobs:
        state_ = job.last_status or "not run yet"
        typer.echo(
            f"job {job.job_id} {job.name}: run by {job.runner}"
            + ("" if job.scheduled or job.runner == "tickwise" else " (unscheduled)")
            + f", last {state_}"
            + (f": {job.last_error}" if job.failing and job.last_error else "")
        )
    if status.failing_jobs:
        typer.echo(
            f"failing jobs: {', '.join(str(j.job_id) for j in status.failing_jobs)} (see docs/timescaledb.md)"
        )


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1_048_576:.2f} MB"


@db_app.command("url")
def url(
    start: Annotated[
        bool, typer.Option("--start/--no-start", help="Start the embedded cluster if needed.")
    ] = True,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="The superuser's DSN (migrations, maintenance) instead of the app role's."
        ),
    ] = False,
) -> None:
    """Print the DSN in use (only the DSN, so `psql "$(tickwise db url)"` works).

    The embedded cluster's DSN names its password file (``?passfile=``); it holds no password itself.
    """
    settings = state.settings()
    if admin:
        typer.echo(database.migration_url(settings, start=start))
    else:
        typer.echo(database.database_url(settings, start=start))


@db_app.command("migrate")
def migrate(
    revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
) -> None:
    """Apply Alembic migrations (`alembic upgrade head`)."""
    settings = state.settings()
    dsn = database.migration_url(settings)
    report = database.migrate(dsn, revision, policy=database.lifecycle_policy(settings))
    typer.echo(f"migrated {database.redact_url(dsn)} to {database.current_revision(dsn)}")
    _echo_lifecycle(report)


@db_app.command("retention")
def retention(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Drop chunks older than this (7d, 12h, 2w).")
    ] = "7d",
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Hypertable(s) to trim (repeatable; default ticks).")
    ] = None,
    policy: Annotated[
        bool,
        typer.Option(
            "--policy",
            help="Apply database.lifecycle.retention instead: ticks by age, bar tables per timeframe.",
        ),
    ] = False,
) -> None:
    """Drop whole chunks older than --older-than (ticks by default) with drop_chunks.

    With --policy: the configured retention (what the TSL build's policies and `tickwise db maintain`
    do), by hand on any build.
    """
    if policy:
        _echo_trimmed(asyncio.run(database.apply_retention_policy(state.settings())))
        return
    delta = parse_duration(older_than)
    tables = table or ["ticks"]
    dropped = asyncio.run(database.apply_retention(state.settings(), tables, delta))
    for name, count in dropped.items():
        typer.echo(f"{name}: dropped {count} chunk(s) older than {older_than}")


def _echo_trimmed(trimmed: dict[str, int]) -> None:
    for key, count in trimmed.items():
        unit = "row(s) deleted" if "/" in key else "chunk(s) dropped"
        typer.echo(f"{key}: {count} {unit}")


@db_app.command("maintain")
def maintain(
    force: Annotated[bool, typer.Option("--all", help="Run every job now, due or not.")] = False,
) -> None:
    """Run TimescaleDB's lifecycle jobs that are due (TSL build) and the per-timeframe retention.

    TimescaleDB's own scheduler fails its runs on PostgreSQL 15.19+ (docs/timescaledb.md), so tickwise
    runs them with `CALL run_job`; run this hourly from a timer (docs/timescaledb.md).
    Exits 1 when a job failed.
    """
    runs, trimmed = asyncio.run(database.maintain(state.settings(), force=force))
    if not runs:
        typer.echo("jobs: none due (or the Apache build, which has no job runner)")
    for run in runs:
        typer.echo(
            f"job {run.job_id} {run.name}: {'ok' if run.succeeded else 'FAILED: ' + (run.error or '')}"
        )
    _echo_trimmed(trimmed)
    if any(not run.succeeded for run in runs):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the `db` command group to the root app."""
    app.add_typer(db_app, name="db")
