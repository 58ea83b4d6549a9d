from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tickwise.adapters.timescale.cluster import EmbeddedCluster, find_bindir, kill_postmaster

pytestmark = pytest.mark.db


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    base = Path(tempfile.mkdtemp(prefix="tickwise-clustertest-", dir="/tmp"))
    base.chmod(0o755)
    c = EmbeddedCluster(base / "data", _free_port(), server_options={"fsync": "off"})
    try:
        yield c
    finally:
        c.down()
        shutil.rmtree(base, ignore_errors=True)


def test_up_twice_is_a_no_op_and_url_names_the_port(cluster: EmbeddedCluster) -> None:
    url = cluster.up()
    pid = cluster.running_pid()
    assert pid is not None
    passfile = cluster.data_dir / "pgpass"
    assert (
        cluster.up()
        == url
        == f"postgresql://tickwise_app@127.0.0.1:{cluster.port}/tickwise?passfile={passfile}"
    )
    assert cluster.running_pid() == pid
    status = cluster.status()
    assert status.running and status.pid == pid and status.port == cluster.port
    assert status.timescaledb_version and status.timescaledb_license in {"apache", "timescale"}


def test_timescaledb_extension_is_listed_by_psql(cluster: EmbeddedCluster) -> None:
    out = subprocess.run(
        [str(find_bindir() / "psql"), "-X", cluster.url(), "-c", "\\dx"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "timescaledb" in out.stdout


def test_up_after_a_crash_removes_the_stale_pid_file_and_starts(cluster: EmbeddedCluster) -> None:
    cluster.up()
    pid = cluster.running_pid()
    assert pid is not None
    kill_postmaster(pid)
    deadline = time.monotonic() + 10
    while cluster.running_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Wait for orphaned backends to notice the postmaster is gone (they hold shared memory).
    while time.monotonic() < deadline:
        ps = subprocess.run(
            ["pgrep", "-f", f"-D {cluster.pgdata}"], capture_output=True, text=True, check=False
        )
        if not ps.stdout.strip():
            break
        time.sleep(0.1)
    assert (cluster.pgdata / "postmaster.pid").exists()
    assert cluster.running_pid() is None
    cluster.up()
    new_pid = cluster.running_pid()
    assert new_pid is not None and new_pid != pid


def test_down_stops_and_a_second_down_reports_not_running(cluster: EmbeddedCluster) -> None:
    cluster.up()
    assert cluster.down() is True
    assert cluster.status().running is False
    assert cluster.down() is False
