"""Issue #13, finding 1 and 9/10: the embedded database is closed to other local users, the application
role is no superuser, Grafana's role is bounded, and clusters made by the old (trust) code are upgraded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from tickwise.adapters.timescale.cluster import EmbeddedCluster, find_bindir
from tickwise.adapters.timescale.roles import quote_ident, quote_literal, scram_verifier
from tickwise.bootstrap.database import migrate
from tickwise.domain.errors import StorageError

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(
        bool(os.environ.get("TICKWISE_TEST_DATABASE_URL")),
        reason="checks the embedded cluster's roles and authentication, not an external database's",
    ),
]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runuser to another OS user needs root")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psql_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """psql run by the unprivileged OS user ``nobody``; -w: never prompt for a password."""
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", str(find_bindir() / "psql"), "-X", "-w", *args, "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )


def _port_and_passfile(url: str) -> tuple[int, str]:
    parts = urlsplit(url)
    assert parts.port is not None
    return parts.port, parse_qs(parts.query)["passfile"][0]


@needs_root
@pytest.mark.parametrize("role", ["tickwise", "tickwise_app", "tickwise_grafana", "postgres"])
def test_an_unprivileged_os_user_cannot_connect_over_tcp_without_the_password_file(
    db_url: str, role: str
) -> None:
    port, _ = _port_and_passfile(db_url)
    result = _psql_as_nobody("-h", "127.0.0.1", "-p", str(port), "-U", role, "-d", "tickwise")
    assert result.returncode != 0
    assert "password" in result.stderr or "authentication" in result.stderr


@needs_root
def test_an_unprivileged_os_user_cannot_use_the_dsn_because_it_cannot_read_the_password_file(
    db_url: str,
) -> None:
    _, passfile = _port_and_passfile(db_url)
    assert Path(passfile).stat().st_mode & 0o777 == 0o600
    result = _psql_as_nobody(db_url)
    assert result.returncode != 0


@needs_root
def test_an_unprivileged_os_user_cannot_use_the_unix_socket(db_url: str) -> None:
    port, passfile = _port_and_passfile(db_url)
    socket_dir = EmbeddedCluster(Path(passfile).parent, port).socket_dir
    result = _psql_as_nobody("-h", str(socket_dir), "-p", str(port), "-U", "tickwise", "-d", "tickwise")
    assert result.returncode != 0


def test_the_dsn_works_for_psql_and_carries_no_password(db_url: str) -> None:
    assert urlsplit(db_url).password is None
    result = subprocess.run(
        [str(find_bindir() / "psql"), "-X", "-w", "-A", "-t", db_url, "-c", "SELECT current_user"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tickwise_app"


async def test_the_application_role_is_no_superuser_and_cannot_run_programs(pool: asyncpg.Pool) -> None:
    row = await pool.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    )
    assert row is not None and not any(row.values())
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("COPY (SELECT 1) TO PROGRAM 'id'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.fetchval("SELECT pg_read_file('/etc/passwd')")


async def test_the_application_role_owns_every_table_of_the_schema(pool: asyncpg.Pool) -> None:
    owners = await pool.fetch(
        "SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    )
    assert owners, "the schema has tables"
    assert {row["owner"] for row in owners} == {"tickwise_app"}, owners


async def test_the_grafana_role_has_no_temp_and_bounded_settings(pool: asyncpg.Pool) -> None:
    assert (
        await pool.fetchval("SELECT has_database_privilege('tickwise_grafana', current_database(), 'TEMP')")
        is False
    )
    assert (
        await pool.fetchval("SELECT has_database_privilege('tickwise_app', current_database(), 'TEMP')")
        is True
    )
    config = await pool.fetchval("SELECT rolconfig FROM pg_roles WHERE rolname = 'tickwise_grafana'")
    assert "default_transaction_read_only=on" in config
    assert any(item.startswith("statement_timeout=") for item in config)


async def test_the_grafana_role_cannot_create_temp_tables_even_in_a_read_write_transaction(
    admin_pool: asyncpg.Pool,
) -> None:
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE tickwise_grafana")
            await conn.execute("SET LOCAL transaction_read_only = off")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TEMP TABLE grafana_scratch (x int)")
        finally:
            await transaction.rollback()


async def test_a_scram_verifier_computed_here_is_accepted_by_the_server(admin_pool: asyncpg.Pool) -> None:
    verifier = scram_verifier("not-sent-in-clear")
    assert verifier.startswith("SCRAM-SHA-256$4096:") and "not-sent-in-clear" not in verifier
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(f"CREATE ROLE scram_probe LOGIN PASSWORD {quote_literal(verifier)}")
            stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_probe'")
            assert stored == verifier
        finally:
            await transaction.rollback()


def test_sql_quoting_doubles_embedded_quotes() -> None:
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    with pytest.raises(ValueError):
        quote_ident("a\x00b")


# -- the embedded cluster, from scratch and from the old code's layout --------------------------------


@pytest.fixture
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="tickwise-sectest-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start_old_style_cluster(cluster: EmbeddedCluster) -> None:
    """What the first version did: initdb --auth=trust, start, create the database and a table."""
    cluster._prepare_dirs(cluster._run_user())
    initdb = [str(cluster.bindir / "initdb"), "-D", str(cluster.pgdata), "-U", cluster.user, "--auth=trust"]
    result = cluster._run([*initdb, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
    assert result.returncode == 0, result.stderr
    cluster._start()
    psql = [str(cluster.bindir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
    psql += ["-p", str(cluster.port), "-U", cluster.user]
    for db, sql in (
        ("postgres", f"CREATE DATABASE {quote_ident(cluster.dbname)}"),
        (cluster.dbname, "CREATE EXTENSION timescaledb"),
        (cluster.dbname, "CREATE TABLE old_rows (time timestamptz NOT NULL, v int)"),
        (cluster.dbname, "SELECT create_hypertable('old_rows', 'time')"),
        (cluster.dbname, "INSERT INTO old_rows VALUES (now(), 1)"),
    ):
        done = subprocess.run([*psql, "-d", db, "-c", sql], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
async def test_a_cluster_made_by_the_trust_code_is_upgraded_in_place_by_up(
    scratch: Path, running: bool
) -> None:
    # A database name with quotes also proves the name is never pasted into SQL.
    cluster = EmbeddedCluster(
        scratch / "data", _free_port(), dbname="tick\"wise's", server_options={"fsync": "off"}
    )
    try:
        _start_old_style_cluster(cluster)
        port = str(cluster.port)
        assert (
            _psql_as_nobody("-h", "127.0.0.1", "-p", port, "-U", "tickwise", "-d", "postgres").returncode == 0
        )

        if not running:
            cluster.down()
        url = cluster.up()  # trust: switched over (without a restart when it was running)

        assert "trust" not in (cluster.pgdata / "pg_hba.conf").read_text()
        assert (
            _psql_as_nobody("-h", "127.0.0.1", "-p", port, "-U", "tickwise", "-d", "postgres").returncode != 0
        )
        migrate(cluster.admin_url())
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_user") == "tickwise_app"
            assert await conn.fetchval("SELECT count(*) FROM old_rows") == 1
            await conn.execute("INSERT INTO old_rows VALUES (now() - interval '30 days', 2)")
            owners = await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r'"
            )
            assert {row["owner"] for row in owners} == {"tickwise_app"}
        finally:
            await conn.close()
        # And after a restart the same passwords still work.
        cluster.down()
        assert cluster.up() == url
        conn = await asyncpg.connect(url)
        await conn.close()
    finally:
        cluster.down()


@needs_root
def test_a_planted_socket_directory_owned_by_another_user_is_refused(scratch: Path) -> None:
    deep = scratch / ("d" * 100)
    cluster = EmbeddedCluster(deep, _free_port())
    planted = cluster.socket_dir
    assert str(planted).startswith("/tmp/tickwise-")
    planted.mkdir(mode=0o777)
    try:
        os.chown(planted, 65534, 65534)  # nobody
        with pytest.raises(StorageError, match="socket directory"):
            cluster._prepare_dirs(cluster._run_user())
    finally:
        planted.rmdir()


def test_the_data_directory_and_server_log_are_private(scratch: Path) -> None:
    cluster = EmbeddedCluster(scratch / "data", _free_port())
    cluster._prepare_dirs(cluster._run_user())
    cluster._passwords()
    assert cluster.data_dir.stat().st_mode & 0o007 == 0
    assert cluster.log_file.stat().st_mode & 0o777 == 0o600
    assert cluster.pgpass_file.stat().st_mode & 0o777 == 0o600
    roles = {line.split(":")[3] for line in cluster.pgpass_file.read_text().splitlines()}
    assert roles == {"tickwise", "tickwise_app"}


def test_db_url_prints_the_app_dsn_and_admin_the_superusers_without_passwords(tmp_path: Path) -> None:
    import sys

    tickwise = str(Path(sys.executable).with_name("tickwise"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWISE") and k != "DATABASE_URL"}
    env["TICKWISE__SYSTEM__DATA_DIR"] = str(tmp_path / "data")
    env["TICKWISE__DATABASE__PORT"] = str(_free_port())
    app = subprocess.run(
        [tickwise, "db", "url", "--no-start"], capture_output=True, text=True, env=env, check=False
    )
    admin = subprocess.run(
        [tickwise, "db", "url", "--no-start", "--admin"], capture_output=True, text=True, env=env, check=False
    )
    assert app.returncode == admin.returncode == 0, app.stderr + admin.stderr
    assert app.stdout.startswith("postgresql://tickwise_app@127.0.0.1:")
    assert admin.stdout.startswith("postgresql://tickwise@127.0.0.1:")
    for out in (app.stdout, admin.stdout):
        assert urlsplit(out.strip()).password is None and "passfile=" in out
