"""Database wiring: which URL to use, the asyncpg pool, and Alembic migrations.

``DATABASE_URL`` (``settings.database.url``) wins; then nothing is started. Otherwise the embedded
cluster under ``settings.system.data_dir`` is started on demand (``tickwise db up`` does the same).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg

from tickwise.adapters.timescale import pool as pool_module
from tickwise.adapters.timescale.cluster import EmbeddedCluster
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


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (``alembic upgrade head``); synchronous."""
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
