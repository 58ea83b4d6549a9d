"""Shared fixtures: one dedicated TimescaleDB test cluster per pytest session (started lazily).

``db_url`` starts a private embedded cluster in a fresh /tmp directory on a free port (never the
development cluster's 55432 or ``.data``), migrates it to head and stops it at session end. It is the
application role's DSN (a non-superuser, as in production); ``admin_db_url`` is the superuser's, for
the few tests that exercise migrations and roles. Set ``TICKWISE_TEST_DATABASE_URL`` to run against an
existing database instead (it is migrated, not started, and serves as both).
If PostgreSQL/TimescaleDB is missing the fixture fails with the reason (DB tests are not skipped).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tickwise.adapters.timescale.cluster import EmbeddedCluster
from tickwise.adapters.timescale.pool import open_pool
from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.bootstrap.database import migrate
from tickwise.domain.errors import StorageError

# Durability is irrelevant for a throw-away cluster; these keep start-up and writes quick.
TEST_SERVER_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def db_urls() -> Iterator[tuple[str, str]]:
    """(application DSN, superuser DSN) of the migrated test database."""
    external = os.environ.get("TICKWISE_TEST_DATABASE_URL")
    if external:
        try:
            migrate(external)
        except StorageError as exc:
            pytest.fail(f"TICKWISE_TEST_DATABASE_URL is not usable: {exc}", pytrace=False)
        yield external, external
        return
    base = Path(tempfile.mkdtemp(prefix="tickwise-testdb-", dir="/tmp"))
    base.chmod(0o755)  # the cluster may run as an unprivileged user (see EmbeddedCluster)
    cluster = EmbeddedCluster(base, free_port(), server_options=TEST_SERVER_OPTIONS)
    try:
        url = cluster.up()  # the application role's DSN (a non-superuser, like production)
        migrate(cluster.admin_url())
    except StorageError as exc:
        _stop(cluster, base)
        pytest.fail(f"the TimescaleDB test cluster could not start: {exc}", pytrace=False)
    except BaseException:
        _stop(cluster, base)
        raise
    try:
        yield url, cluster.admin_url()
    finally:
        _stop(cluster, base)


@pytest.fixture(scope="session")
def db_url(db_urls: tuple[str, str]) -> str:
    """DSN of the migrated test database as the application role (a private cluster by default)."""
    return db_urls[0]


@pytest.fixture(scope="session")
def admin_db_url(db_urls: tuple[str, str]) -> str:
    """DSN of the test database as the superuser (migrations, roles)."""
    return db_urls[1]


def _stop(cluster: EmbeddedCluster, base: Path) -> None:
    try:
        cluster.down()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the test database (session event loop)."""
    async with open_pool(db_url, min_size=1, max_size=4) as p:
        yield p


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def admin_pool(admin_db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the test database as the superuser (session event loop)."""
    async with open_pool(admin_db_url, min_size=1, max_size=2) as p:
        yield p


@pytest_asyncio.fixture(loop_scope="session")
async def clean_db(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Empty every application table before the test; returns the pool."""
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
    return pool
