"""`tickwise db up|down|status|url|migrate|retention`: the database the platform uses.

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
from tickwise.cli.context import state
from tickwise.domain.errors import ConfigError

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
    if migrate:
        database.migrate(cluster.admin_url())
    typer.echo(f"{'already running' if was_running else 'started'}: {url} (data {cluster.pgdata})")


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
    dsn = database.migration_url(state.settings())
    database.migrate(dsn, revision)
    typer.echo(f"migrated {database.redact_url(dsn)} to {database.current_revision(dsn)}")


@db_app.command("retention")
def retention(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Drop chunks older than this (7d, 12h, 2w).")
    ] = "7d",
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Hypertable(s) to trim (repeatable; default ticks).")
    ] = None,
) -> None:
    """Drop whole chunks older than --older-than (ticks by default) with drop_chunks."""
    delta = parse_duration(older_than)
    tables = table or ["ticks"]
    dropped = asyncio.run(database.apply_retention(state.settings(), tables, delta))
    for name, count in dropped.items():
        typer.echo(f"{name}: dropped {count} chunk(s) older than {older_than}")


def register(app: typer.Typer) -> None:
    """Add the `db` command group to the root app."""
    app.add_typer(db_app, name="db")
