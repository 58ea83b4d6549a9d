"""The embedded PostgreSQL + TimescaleDB cluster behind ``tickwise db up`` (and the test suite).

The cluster is plain PostgreSQL: ``initdb`` into ``<data_dir>/pg``, then ``pg_ctl start`` with
``shared_preload_libraries=timescaledb``, listening on ``127.0.0.1:<port>`` with ``trust`` auth for the
``tickwise`` role (loopback only), a unix socket in a short directory, and the server log in
``<data_dir>/pg.log``.

Running as root: PostgreSQL refuses to start as root, and our machines run everything as root. When
``os.geteuid() == 0`` the cluster therefore runs as an unprivileged OS user: ``postgres`` (created by
Debian's PostgreSQL packages) when it exists, otherwise a ``tickwise`` system user created with
``useradd --system``. ``initdb``/``pg_ctl`` run through ``runuser -u <user> --`` and the cluster
directory, socket directory and log file are chowned to that user. Every parent directory of the data
directory must be traversable (``o+x``) by that user; this is checked up front with a clear error
instead of an obscure ``initdb`` failure. As a non-root user the cluster simply runs as that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tickwise.domain.errors import StorageError

_BIN_CANDIDATES = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
_SETUP_HINT = "run `make setup` (scripts/install_timescaledb.sh) to install PostgreSQL and TimescaleDB"
# A unix socket path (dir + "/.s.PGSQL.<port>") must fit in sockaddr_un.sun_path (108 bytes).
_MAX_SOCKET_DIR = 90


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """What ``tickwise db status`` reports about the embedded cluster."""

    running: bool
    pid: int | None
    port: int
    data_dir: Path
    version: str | None
    timescaledb_version: str | None
    timescaledb_license: str | None
    url: str


def find_bindir() -> Path:
    """Return the PostgreSQL server bin directory (newest of 17/16/15, else ``pg_config --bindir``)."""
    for candidate in _BIN_CANDIDATES:
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        path = Path(out.stdout.strip())
        if out.returncode == 0 and (path / "initdb").is_file():
            return path
    raise StorageError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {_SETUP_HINT}")


def _timescaledb_installed(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return (Path(out.stdout.strip()) / "timescaledb.so").is_file()
    # Debian layout without pg_config in the server bin dir: lib is a sibling of bin.
    return (bindir.parent / "lib" / "timescaledb.so").is_file()


class EmbeddedCluster:
    """A local TimescaleDB cluster under ``data_dir`` on ``127.0.0.1:port``.

    >>> cluster = EmbeddedCluster(Path(".data"))
    >>> url = cluster.up()          # idempotent: a second call finds it running and returns the URL
    >>> cluster.down()

    ``server_options`` are extra ``-c name=value`` settings (the test cluster turns fsync off).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 55432,
        user: str = "tickwise",
        dbname: str = "tickwise",
        *,
        server_options: dict[str, str] | None = None,
        os_user: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.user = user
        self.dbname = dbname
        self.server_options = dict(server_options or {})
        self._os_user = os_user
        self._bindir: Path | None = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "pg.log"

    @property
    def socket_dir(self) -> Path:
        """Unix socket directory: ``<data_dir>/run``, or a short ``/tmp`` path when that is too long."""
        preferred = self.data_dir / "run"
        if len(str(preferred)) <= _MAX_SOCKET_DIR:
            return preferred
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:10]
        return Path("/tmp") / f"tickwise-{digest}"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def url(self) -> str:
        """The DSN of this cluster (trust auth on loopback, so no password)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.dbname}"

    # -- lifecycle ----------------------------------------------------------------------------
    def up(self) -> str:
        """Initialise (first time), start (if not running) and create the database; return the URL."""
        bindir = self.bindir
        if not _timescaledb_installed(bindir):
            raise StorageError(f"the TimescaleDB extension is not installed for {bindir}; {_SETUP_HINT}")
        if self.running_pid() is None:
            os_user = self._run_user()
            self._prepare_dirs(os_user)
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            self._remove_stale_pid()
            self._start()
        self._ensure_database()
        return self.url()

    def down(self, *, timeout_s: float = 30.0) -> bool:
        """Stop the cluster (fast shutdown); return False when it was not running."""
        if self.running_pid() is None:
            self._remove_stale_pid()
            return False
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.pgdata),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(timeout_s)),
            ],
        )
        if result.returncode != 0:
            raise StorageError(
                f"pg_ctl stop failed for {self.pgdata}: {result.stderr.strip() or result.stdout}"
            )
        return True

    def status(self) -> ClusterStatus:
        """Report whether the cluster runs, its pid, versions and the TimescaleDB license."""
        pid = self.running_pid()
        version = ts_version = license_ = None
        if pid is not None:
            row = self._psql(
                "SELECT current_setting('server_version'), "
                "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), "
                "current_setting('timescaledb.license', true)",
                dbname=self.dbname,
                check=False,
            )
            if row:
                parts = ([*row.split("|"), "", "", ""])[:3]
                version, ts_version, license_ = (p or None for p in parts)
        return ClusterStatus(
            running=pid is not None,
            pid=pid,
            port=self.port,
            data_dir=self.pgdata,
            version=version,
            timescaledb_version=ts_version,
            timescaledb_license=license_,
            url=self.url(),
        )

    def running_pid(self) -> int | None:
        """The postmaster pid when this cluster's server process is alive, else None."""
        pid = self._pidfile_pid()
        if pid is None or not _alive(pid):
            return None
        # A recycled pid (after a crash and reboot) may belong to another program.
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return pid
        return pid if comm in {"postgres", "postmaster"} else None

    # -- internals ----------------------------------------------------------------------------
    def _pidfile_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, IndexError, ValueError):
            return None

    def _remove_stale_pid(self) -> None:
        """After a crash postmaster.pid (and the socket lock) may name a dead process: remove them."""
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and self.running_pid() is None:
            pidfile.unlink(missing_ok=True)
            lock = self.socket_dir / f".s.PGSQL.{self.port}.lock"
            lock.unlink(missing_ok=True)
            (self.socket_dir / f".s.PGSQL.{self.port}").unlink(missing_ok=True)

    def _run_user(self) -> str | None:
        """The OS user the server runs as (None: the current, non-root user)."""
        if os.geteuid() != 0:
            return None
        if self._os_user:
            _ensure_os_user(self._os_user)
            return self._os_user
        try:
            pwd.getpwnam("postgres")
            return "postgres"
        except KeyError:
            _ensure_os_user("tickwise")
            return "tickwise"

    def _prepare_dirs(self, os_user: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if os_user is None:
            return
        entry = pwd.getpwnam(os_user)
        for path in (self.pgdata, socket_dir, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if (self.pgdata / "PG_VERSION").is_file():
            # A cluster initialised by another user (or restored by root) must belong to the server user.
            for root, dirs, files in os.walk(self.pgdata):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        os.chmod(self.pgdata, 0o700)
        for parent in [*self.data_dir.parents, self.data_dir][::-1]:
            mode = parent.stat().st_mode
            owner = parent.stat().st_uid
            if owner != entry.pw_uid and not mode & 0o001:
                raise StorageError(
                    f"{parent} is not traversable by the database user {os_user!r} (mode {oct(mode & 0o777)}); "
                    f"run `chmod o+x {parent}` or choose another data directory (TICKWISE_DATA_DIR)"
                )

    def _initdb(self) -> None:
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        if result.returncode != 0:
            raise StorageError(f"initdb failed for {self.pgdata}: {_tail(result.stderr or result.stdout)}")

    def _start(self) -> None:
        options = {
            "shared_preload_libraries": "timescaledb",
            "listen_addresses": "127.0.0.1",
            "timescaledb.telemetry_level": "off",
            **self.server_options,
        }
        opts = f"-p {self.port} -k {self.socket_dir} " + " ".join(
            f"-c {key}={value}" for key, value in options.items()
        )
        result = self._run(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                opts,
            ],
        )
        if result.returncode != 0 or self.running_pid() is None:
            log_tail = _tail(_read(self.log_file))
            raise StorageError(
                f"could not start PostgreSQL on 127.0.0.1:{self.port} (data {self.pgdata}): {log_tail} "
                f"-- is the port in use? set TICKWISE__DATABASE__PORT or see {self.log_file}"
            )

    def _ensure_database(self) -> None:
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.dbname}'", dbname="postgres")
        if exists != "1":
            self._psql(f'CREATE DATABASE "{self.dbname}"', dbname="postgres")
        self._psql("CREATE EXTENSION IF NOT EXISTS timescaledb", dbname=self.dbname)

    def _psql(self, sql: str, *, dbname: str, check: bool = True) -> str:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGOPTIONS": "-c client_min_messages=warning"}
        env.pop("PGPASSWORD", None)
        deadline = time.monotonic() + 10
        while True:
            result = subprocess.run(
                [
                    str(self.bindir / "psql"),
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    "-d",
                    dbname,
                    "-c",
                    sql,
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if result.returncode == 0:
                return result.stdout.strip()
            # Right after start the server may still refuse connections ("starting up").
            if "starting up" in result.stderr and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            if not check:
                return ""
            raise StorageError(f"{sql.split()[0]} on {self.url()} failed: {_tail(result.stderr)}")

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        os_user = self._run_user()
        if os_user is not None:
            argv = ["runuser", "-u", os_user, "--", *argv]
        # pg_ctl's children inherit our stdout otherwise; keep them off captured pipes.
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, cwd="/"
        )


def _ensure_os_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise StorageError(
                f"PostgreSQL cannot run as root and creating the system user {name!r} failed: "
                f"{result.stderr.strip()}"
            ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def kill_postmaster(pid: int) -> None:
    """Kill a postmaster abruptly (tests use it to simulate a crash that leaves postmaster.pid behind)."""
    os.kill(pid, signal.SIGKILL)
