from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from tickwise.adapters.timescale.pool import open_pool
from tickwise.cli.context import state
from tickwise.cli.main import app, report_failure
from tickwise.domain.errors import StorageError

pytestmark = pytest.mark.db


async def test_an_unreachable_database_url_is_a_one_line_storage_error_without_password() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://u:secret@127.0.0.1:{port}/x"
    with pytest.raises(StorageError) as info:
        async with open_pool(url, connect_timeout_s=2):
            pass
    message = str(info.value)
    assert "secret" not in message and f"127.0.0.1:{port}" in message
    assert "tickwise db up" in message and "\n" not in message


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def _tickwise(*args: str, url: str) -> Outcome:
    """Run the CLI in-process (CliRunner) with DATABASE_URL set, mapping errors like ``tickwise.cli.main.run``."""
    state._settings = None
    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": url, "TICKWISE_ENV": "test"})
    state._settings = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        code = report_failure(result.exception, state)  # type: ignore[arg-type]
        return Outcome(code, result.stdout, f"error: {result.exception}")
    return Outcome(result.exit_code, result.stdout, result.stderr)


def _tickwise_process(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": url, "TICKWISE_ENV": "test", "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "tickwise.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_db_url_prints_only_the_configured_dsn(db_url: str) -> None:
    result = _tickwise("db", "url", url=db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == db_url + "\n"


def test_db_up_and_down_do_nothing_with_an_external_database(db_url: str) -> None:
    for command in ("up", "down"):
        result = _tickwise("db", command, url=db_url)
        assert result.returncode == 0, result.stderr
        assert "external database" in result.stdout


def test_db_status_and_migrate_and_retention_work_against_the_external_database(db_url: str) -> None:
    status = _tickwise("db", "status", url=db_url)
    assert status.returncode == 0, status.stderr
    assert "timescaledb: 2." in status.stdout
    migrate = _tickwise("db", "migrate", url=db_url)
    assert migrate.returncode == 0, migrate.stderr
    retention = _tickwise("db", "retention", "--older-than", "7d", url=db_url)
    assert retention.returncode == 0, retention.stderr
    assert "ticks: dropped" in retention.stdout


def test_db_commands_fail_with_one_line_when_the_database_is_unreachable() -> None:
    result = _tickwise_process("db", "status", url="postgresql://u:pw@127.0.0.1:1/x")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot connect" in result.stderr and "pw" not in result.stderr


def test_a_malformed_retention_duration_is_a_usage_error(db_url: str) -> None:
    result = _tickwise("db", "retention", "--older-than", "soon", url=db_url)
    assert result.returncode == 2
    assert "7d" in result.stderr
