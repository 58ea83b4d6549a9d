"""A TimescaleDB cluster running the TSL (Timescale License) module, for the tests marked ``tsl``.

Debian ships TimescaleDB's Apache build only; ``make test-tsl TSL_SOURCE=DIR`` builds the TSL module
from a TimescaleDB source tree (``scripts/install_timescaledb.sh --from-source DIR``) and runs these
tests. Without ``timescaledb-tsl-<version>.so`` next to the installed extension they skip with that
reason, so the default ``make test`` stays on the Debian build.

The cluster is first migrated under the Apache license and only then restarted with
``timescaledb.license = 'timescale'`` and migrated again: the way a real database moves to the TSL
build after Alembic has recorded every revision (issue #15). What the first migration left is kept in
:class:`TslCluster` for the test that checks the move.
"""

from __future__ import annotations

import shutil
import socket
import subprocess  # nosec B404: pg_config, a fixed argv
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from tsl_cluster import TslCluster

from tickwise.adapters.timescale.cluster import EmbeddedCluster, find_bindir
from tickwise.adapters.timescale.pool import open_pool
from tickwise.bootstrap.database import migrate

# As tests/conftest.py: durability is irrelevant for a throw-away cluster.
TEST_SERVER_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
TSL_OPTIONS = {**TEST_SERVER_OPTIONS, "timescaledb.license": "timescale"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tsl_library() -> Path | None:
    """The installed TSL module matching the installed extension's default version, if any."""
    bindir = find_bindir()
    out = subprocess.run(  # nosec B603: a fixed argv of a trusted tool
        [str(bindir / "pg_config"), "--pkglibdir", "--sharedir"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return None
    libdir, sharedir = out.stdout.split()
    control = Path(sharedir) / "extension" / "timescaledb.control"
    if not control.is_file():
        return None
    version = next(
        (
            line.split("=", 1)[1].strip().strip("'")
            for line in control.read_text().splitlines()
            if line.startswith("default_version")
        ),
        None,
    )
    library = Path(libdir) / f"timescaledb-tsl-{version}.so"
    return library if version and library.is_file() else None


@pytest.fixture(scope="session")
def tsl_cluster() -> Iterator[TslCluster]:
    if tsl_library() is None:
        pytest.skip(
            "the TimescaleDB TSL module (timescaledb-tsl-<version>.so) is not installed: Debian ships the "
            "Apache build only; run `make test-tsl TSL_SOURCE=<timescaledb source dir>`"
        )
    base = Path(tempfile.mkdtemp(prefix="tickwise-tsldb-", dir="/tmp"))
    base.chmod(0o755)
    port = free_port()
    apache = EmbeddedCluster(base, port, server_options=TEST_SERVER_OPTIONS)
    try:
        apache.up()
        migrate(apache.admin_url())
        facts = _lifecycle_facts(apache)
        apache.down()
        cluster = EmbeddedCluster(base, port, server_options=TSL_OPTIONS)
        url = cluster.up()
        migrate(cluster.admin_url())
    except BaseException:
        apache.down()
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield TslCluster(url, cluster.admin_url(), *facts)
    finally:
        cluster.down()
        shutil.rmtree(base, ignore_errors=True)


def _lifecycle_facts(cluster: EmbeddedCluster) -> tuple[int, int]:
    out = subprocess.run(  # nosec B603: a fixed argv of a trusted tool
        [
            str(cluster.bindir / "psql"),
            cluster.admin_url(),
            "-XAtc",
            "SELECT (SELECT count(*) FROM timescaledb_information.hypertables WHERE compression_enabled), "
            "(SELECT count(*) FROM timescaledb_information.continuous_aggregates)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    compressed, caggs = out.stdout.strip().split("|")
    return int(compressed), int(caggs)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tsl_pool(tsl_cluster: TslCluster) -> AsyncIterator[asyncpg.Pool]:
    """The application role's pool on the TSL cluster (what the repositories use in production)."""
    async with open_pool(tsl_cluster.url, min_size=1, max_size=4) as pool:
        yield pool


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tsl_admin(tsl_cluster: TslCluster) -> AsyncIterator[asyncpg.Pool]:
    """The superuser's pool (runs jobs, like `tickwise db maintain`)."""
    async with open_pool(tsl_cluster.admin_url, min_size=1, max_size=2) as pool:
        yield pool
