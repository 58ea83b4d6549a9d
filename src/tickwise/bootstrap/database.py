"""Database wiring: which URL to use, the asyncpg pool, and Alembic migrations.

``DATABASE_URL`` (``settings.database.url``) wins; then nothing is started. Otherwise the embedded
cluster under ``settings.system.data_dir`` is started on demand (``tickwise db up`` does the same).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

from tickwise.adapters.timescale import lifecycle
from tickwise.adapters.timescale import pool as pool_module
from tickwise.adapters.timescale.cluster import EmbeddedCluster
from tickwise.adapters.timescale.lifecycle import EnsureReport as EnsureReport  # re-exported for the CLI
from tickwise.adapters.timescale.pool import redact_url as redact_url  # re-exported for the CLI
from tickwise.config import Settings
from tickwise.domain.errors import StorageError

_ROOT = Path(__file__).resolve().parents[3]


def embedded_cluster(settings: Settings) -> EmbeddedCluster:
    """The embedded cluster described by ``settings`` (not started)."""
    return EmbeddedCluster(
        settings.system.data_dir,
        settings.database.port,
        user=settings.database.user,
        dbname=settings.database.name,
        server_options=settings.database.server_settings,
        bindir=settings.database.bindir,
    )


def uses_external_database(settings: Settings) -> bool:
    """True when DATABASE_URL / database.url points at a database tickwise does not manage."""
    return bool(settings.database.url.get_secret_value())


def database_url(settings: Settings, *, start: bool = True) -> str:
    """The DSN in use: the configured URL, else the embedded cluster's (started when ``start``)."""
    if settings.database.url.get_secret_value():
        return settings.database.url.get_secret_value()
    cluster = embedded_cluster(settings)
    return cluster.up() if start else cluster.url()


def migration_url(settings: Settings, *, start: bool = True) -> str:
    """The DSN migrations run with: the configured URL, else the embedded cluster's superuser."""
    if settings.database.url.get_secret_value():
        return settings.database.url.get_secret_value()
    cluster = embedded_cluster(settings)
    if start:
        cluster.up()
    return cluster.admin_url()


@asynccontextmanager
async def open_pool(settings: Settings, *, url: str | None = None) -> AsyncIterator[asyncpg.Pool]:
    """``async with open_pool(settings) as pool``: an asyncpg pool on the database in use."""
    dsn = url or database_url(settings)
    db = settings.database
    async with pool_module.open_pool(
        dsn,
        min_size=db.pool_min_size,
        max_size=db.pool_max_size,
        command_timeout_s=db.command_timeout_s,
        connect_timeout_s=db.connect_timeout_s,
    ) as pool:
        yield pool


def alembic_config(url: str) -> object:
    """An Alembic Config for this checkout's ``migrations/`` bound to ``url``."""
    from alembic.config import Config

    ini = _ROOT / "alembic.ini"
    script_location = _ROOT / "migrations"
    if not script_location.is_dir():
        raise StorageError(
            f"migrations directory not found at {script_location}; run from a tickwise checkout"
        )
    cfg = Config(str(ini)) if ini.is_file() else Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging_config"] = True
    return cfg


def lifecycle_policy(settings: Settings) -> lifecycle.LifecyclePolicy:
    """``database.lifecycle`` as the adapter's frozen policy."""
    cfg = settings.database.lifecycle
    return lifecycle.LifecyclePolicy(
        compress_after=dict(cfg.compress_after),
        ticks_retention=cfg.retention.ticks,
        timeframe_retention={tf.value: age for tf, age in cfg.retention.timeframes.items()},
        continuous_aggregates=cfg.continuous_aggregates,
        run_jobs=cfg.run_jobs,
    )


def migrate(
    url: str,
    revision: str = "head",
    *,
    policy: lifecycle.LifecyclePolicy | None = lifecycle.DEFAULT_POLICY,
) -> lifecycle.EnsureReport | None:
    """Apply Alembic migrations up to ``revision`` (``alembic upgrade head``); synchronous.

    At head, TimescaleDB's lifecycle (compression, retention policies, continuous aggregates, job
    scheduling) is then re-checked and brought in line with ``policy`` (None: skipped), so a database
    that moved to a TSL build after it was migrated gets them too. Returns what that check did.
    """
    _upgrade(url, revision)
    if revision != "head" or policy is None:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_ensure_lifecycle(url, policy))
    # Called from async code (a test, a use case): the check gets its own loop on a worker thread.
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, _ensure_lifecycle(url, policy)).result()


async def _ensure_lifecycle(url: str, policy: lifecycle.LifecyclePolicy) -> lifecycle.EnsureReport:
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StorageError(f"cannot connect to {pool_module.redact_url(url)}: {exc}") from None
    try:
        return await lifecycle.ensure_lifecycle(conn, policy)
    except asyncpg.PostgresError as exc:
        raise StorageError(
            f"setting up TimescaleDB's lifecycle failed on {pool_module.redact_url(url)}: {exc}"
        ) from None
    finally:
        await conn.close()


def _upgrade(url: str, revision: str) -> None:
    from alembic import command
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    cfg = alembic_config(url)
    try:
        command.upgrade(cfg, revision)  # type: ignore[arg-type]
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StorageError(
            f"cannot migrate the database at {pool_module.redact_url(url)}: {reason} "
            "(start it with `tickwise db up`, or fix DATABASE_URL)"
        ) from None
    except SQLAlchemyError as exc:
        raise StorageError(f"migration failed on {pool_module.redact_url(url)}: {exc}") from None


def current_revision(url: str) -> str | None:
    """The Alembic revision the database is at (None when unmigrated)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    engine = create_engine(_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


async def apply_retention(settings: Settings, tables: list[str], older_than: timedelta) -> dict[str, int]:
    """Drop chunks older than ``older_than`` from each hypertable in ``tables``; chunks dropped per table."""
    from tickwise.adapters.timescale.maintenance import drop_chunks_older_than

    async with open_pool(settings) as pool:
        return {table: await drop_chunks_older_than(pool, table, older_than) for table in tables}


async def external_server_info(settings: Settings) -> dict[str, str | None]:
    """Versions and license of the configured (external) database."""
    from tickwise.adapters.timescale.maintenance import server_info

    async with open_pool(settings) as pool:
        return await server_info(pool)


async def apply_retention_policy(settings: Settings) -> dict[str, int]:
    """The configured retention by hand (both builds): chunks dropped / rows deleted per table (timeframe).

    Runs as the superuser on the embedded cluster (drop_chunks needs the tables' owner or a superuser).
    """
    async with _admin_connection(settings) as conn:
        return await lifecycle.apply_retention(conn, lifecycle_policy(settings))


async def maintain(
    settings: Settings, *, force: bool = False
) -> tuple[list[lifecycle.JobRun], dict[str, int]]:
    """``tickwise db maintain``: run the due TimescaleDB jobs (TSL build), then the per-timeframe retention."""
    async with _admin_connection(settings) as conn:
        runs = await lifecycle.run_due_jobs(conn, force=force)
        trimmed = await lifecycle.apply_retention(conn, lifecycle_policy(settings))
    return runs, trimmed


async def lifecycle_status(settings: Settings, *, start: bool = False) -> lifecycle.LifecycleStatus:
    """Lifecycle features on/off and why, compression savings and jobs of the database in use."""
    async with _admin_connection(settings, start=start) as conn:
        return await lifecycle.lifecycle_status(conn)


@asynccontextmanager
async def _admin_connection(settings: Settings, *, start: bool = True) -> AsyncIterator[asyncpg.Connection]:
    url = migration_url(settings, start=start)
    try:
        conn = await asyncpg.connect(url, timeout=settings.database.connect_timeout_s)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StorageError(f"cannot connect to {pool_module.redact_url(url)}: {exc}") from None
    try:
        yield conn
    finally:
        await conn.close()


async def unapplied_server_settings(settings: Settings) -> dict[str, str | None]:
    """``database.server_settings`` the running embedded cluster does not have yet (name -> its value).

    They are passed when the server starts, so a cluster started before they were configured needs a
    restart (``tickwise db down && tickwise db up``).
    """
    wanted = settings.database.server_settings
    if not wanted:
        return {}
    async with _admin_connection(settings, start=False) as conn:
        have = {name: await conn.fetchval("SELECT current_setting($1, true)", name) for name in wanted}
    return {name: have[name] for name, value in wanted.items() if have[name] != value}
