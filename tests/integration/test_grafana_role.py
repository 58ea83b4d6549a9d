"""The tickwise_grafana role (migration 0003_grafana_role) can read the dashboard tables and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from alembic import command

from tickwise.bootstrap.database import alembic_config, migrate

ROLE = "tickwise_grafana"
READABLE = ("instruments", "candles", "features", "labels", "models", "signals", "ticks")
WRITES = {
    "insert": "INSERT INTO {table} SELECT * FROM {table} LIMIT 0",
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}
KEY_COLUMN = {
    "instruments": "tradingsymbol",
    "candles": "close",
    "features": "feature_set",
    "labels": "ret",
    "models": "status",
    "signals": "confidence",
    "ticks": "last_price",
}

pytestmark = pytest.mark.db


@pytest_asyncio.fixture(loop_scope="session")
async def as_grafana(admin_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose transaction runs as the Grafana role (rolled back afterwards)."""
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(f"SET LOCAL ROLE {ROLE}")
            yield conn
        finally:
            await transaction.rollback()


async def attempt(conn: asyncpg.Connection, sql: str) -> Exception | None:
    savepoint = conn.transaction()
    await savepoint.start()
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        error: Exception = exc
        return error
    finally:
        await savepoint.rollback()
    return None


async def test_role_exists_without_login_or_superpowers_by_default(pool: asyncpg.Pool) -> None:
    row = await pool.fetchrow(
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit FROM pg_roles WHERE rolname = $1",
        ROLE,
    )
    assert row is not None
    assert dict(row) == {
        "rolcanlogin": False,
        "rolsuper": False,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolinherit": False,
    }


@pytest.mark.parametrize("table", READABLE)
async def test_grafana_role_can_select_every_dashboard_table(
    as_grafana: asyncpg.Connection, table: str
) -> None:
    assert await attempt(as_grafana, f"SELECT * FROM {table} LIMIT 1") is None


@pytest.mark.parametrize("table", READABLE)
@pytest.mark.parametrize("operation", sorted(WRITES))
async def test_grafana_role_cannot_write(as_grafana: asyncpg.Connection, table: str, operation: str) -> None:
    error = await attempt(as_grafana, WRITES[operation].format(table=table, column=KEY_COLUMN[table]))
    assert isinstance(error, asyncpg.InsufficientPrivilegeError), f"{operation} on {table}: {error!r}"


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE grafana_was_here (x int)",
        "SELECT * FROM backfill_log",
        "SELECT * FROM alembic_version",
        "ALTER TABLE signals ADD COLUMN x int",
        "DROP TABLE signals",
    ],
)
async def test_grafana_role_can_do_nothing_else(as_grafana: asyncpg.Connection, sql: str) -> None:
    error = await attempt(as_grafana, sql)
    assert isinstance(error, asyncpg.InsufficientPrivilegeError), f"{sql}: {error!r}"


def _as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def test_migration_is_idempotent_and_grants_login_when_a_password_is_given(
    admin_db_url: str, admin_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url, pool = admin_db_url, admin_pool  # roles are created and dropped: the superuser's job
    config = alembic_config(db_url)
    command.downgrade(config, "0002")  # type: ignore[arg-type]
    try:
        assert await pool.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", ROLE) == 0
        # A role left behind by another database of the cluster is reused, not an error.
        await pool.execute(f"CREATE ROLE {ROLE} NOLOGIN")
        monkeypatch.setenv("TICKWISE_GRAFANA_PASSWORD", "it's-a:secret%pass")
        migrate(db_url)
        assert await pool.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", ROLE) is True
        conn = await asyncpg.connect(_as_user(db_url, ROLE, "it's-a:secret%pass"))
        try:
            assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
            assert await conn.fetchval("SELECT count(*) FROM signals") >= 0
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute("DELETE FROM signals")
        finally:
            await conn.close()
    finally:
        monkeypatch.delenv("TICKWISE_GRAFANA_PASSWORD", raising=False)
        migrate(db_url)
        await pool.execute(f"ALTER ROLE {ROLE} NOLOGIN PASSWORD NULL")
    assert await pool.fetchval("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", ROLE) is False
