"""The embedded PostgreSQL + TimescaleDB cluster behind ``tickwise db up`` (and the test suite).

The cluster is plain PostgreSQL: ``initdb`` into ``<data_dir>/pg``, then ``pg_ctl start`` with
``shared_preload_libraries=timescaledb``, listening on ``127.0.0.1:<port>``, a unix socket in a short
directory, and the server log in ``<data_dir>/pg.log``.

Authentication (docs/operations.md, Security): no ``trust`` anywhere. On TCP every role needs its
SCRAM-SHA-256 password; on the unix socket only the OS user the server runs as may connect, by
``peer``, and only as the admin (superuser) role, which is how ``up``/``status`` manage the cluster.
The passwords are generated here and kept in ``<data_dir>/pgpass`` (mode 0600, libpq's pgpass format);
the DSNs name that file with ``?passfile=...`` so psql, asyncpg and psycopg2 find the password without
it ever appearing in a URL, a command line or a log. The application connects as ``tickwise_app``, a
non-superuser that owns the database and its tables; the superuser (``database.user``, the role
``initdb`` created) is for migrations and maintenance only. A cluster made by an older tickwise
(``trust`` auth, everything owned by the superuser) is upgraded in place by the next ``up``.

Running as root: PostgreSQL refuses to start as root, and our machines run everything as root. When
``os.geteuid() == 0`` the cluster therefore runs as an unprivileged OS user: ``postgres`` (created by
Debian's PostgreSQL packages) when it exists, otherwise a ``tickwise`` system user created with
``useradd --system``. ``initdb``/``pg_ctl`` run through ``runuser -u <user> --`` and the cluster
directory, socket directory and log file are chowned to that user. Every parent directory of the data
directory must be traversable (``o+x``) by that user; this is checked up front with a clear error
instead of an obscure ``initdb`` failure. As a non-root user the cluster simply runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from tickwise.adapters.timescale.roles import (
    APP_ROLE,
    create_app_role_sql,
    generate_password,
    hand_over_sql,
    quote_ident,
    quote_literal,
    set_password_sql,
)
from tickwise.domain.errors import StorageError

_BIN_CANDIDATES = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
_SETUP_HINT = "run `make setup` (scripts/install_timescaledb.sh) to install PostgreSQL and TimescaleDB"
# A unix socket path (dir + "/.s.PGSQL.<port>") must fit in sockaddr_un.sun_path (108 bytes).
_MAX_SOCKET_DIR = 90
# The first line of the pg_hba.conf / pg_ident.conf tickwise writes; an hba without it is an older
# cluster's (trust) and is replaced on the next `up`.
_HBA_MARKER = "# tickwise auth v2: peer on the socket (admin only), scram-sha-256 on loopback TCP"
_IDENT_MAP = "tickwise"


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
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)  # nosec B603: a fixed argv of trusted tools, no shell
        path = Path(out.stdout.strip())
        if out.returncode == 0 and (path / "initdb").is_file():
            return path
    raise StorageError(f"PostgreSQL server binaries (initdb, pg_ctl) not found; {_SETUP_HINT}")


def _timescaledb_installed(bindir: Path) -> bool:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False)  # nosec B603: a fixed argv of trusted tools, no shell
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
        app_user: str = APP_ROLE,
        bindir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.user = user  # the superuser: migrations and maintenance only
        self.app_user = app_user  # what the pipelines connect as
        self.dbname = dbname
        self.server_options = dict(server_options or {})
        self._os_user = os_user
        # A configured bin directory (e.g. a PostgreSQL build with TimescaleDB's TSL module); else found.
        self._bindir: Path | None = Path(bindir) if bindir else None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "pg.log"

    @property
    def pgpass_file(self) -> Path:
        """The passwords of the admin and application roles (libpq pgpass format, mode 0600)."""
        return self.data_dir / "pgpass"

    @property
    def socket_dir(self) -> Path:
        """Unix socket directory: ``<data_dir>/run``, or a short ``/tmp`` path when that is too long."""
        preferred = self.data_dir / "run"
        if len(str(preferred)) <= _MAX_SOCKET_DIR:
            return preferred
        digest = hashlib.sha1(str(self.data_dir).encode(), usedforsecurity=False).hexdigest()[:10]
        return Path("/tmp") / f"tickwise-{digest}"  # nosec B108: owner and symlink checked in _check_socket_dir before use

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def url(self) -> str:
        """The application role's DSN; the password is read from ``pgpass_file`` (``?passfile=``)."""
        return self._dsn(self.app_user)

    def admin_url(self) -> str:
        """The superuser's DSN, for migrations and maintenance only."""
        return self._dsn(self.user)

    def _dsn(self, role: str) -> str:
        passfile = quote(str(self.pgpass_file), safe="/")
        return f"postgresql://{quote(role, safe='')}@127.0.0.1:{self.port}/{quote(self.dbname, safe='')}?passfile={passfile}"

    # -- lifecycle ----------------------------------------------------------------------------
    def up(self) -> str:
        """Initialise (first time), start (if not running) and create the database; return the URL."""
        bindir = self.bindir
        if not _timescaledb_installed(bindir):
            raise StorageError(f"the TimescaleDB extension is not installed for {bindir}; {_SETUP_HINT}")
        os_user = self._run_user()
        passwords = self._passwords()
        if self.running_pid() is None:
            self._prepare_dirs(os_user)
            if not (self.pgdata / "PG_VERSION").is_file():
                self._initdb()
            self._write_auth_files(os_user)
            self._remove_stale_pid()
            self._start()
        elif self._write_auth_files(os_user):
            # Started by an older tickwise with trust auth: switch it over without a restart.
            self._reload()
        self._secure_roles(passwords)
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

    def _server_os_user(self, os_user: str | None) -> pwd.struct_passwd:
        return pwd.getpwnam(os_user) if os_user is not None else pwd.getpwuid(os.geteuid())

    def _prepare_dirs(self, os_user: str | None) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        socket_dir = self.socket_dir
        self._check_socket_dir(socket_dir, os_user)
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_file.touch(mode=0o600, exist_ok=True)
        os.chmod(self.log_file, 0o600)
        if os_user is None:
            # Nobody but us needs to enter the data directory (it holds the pgpass file and logs).
            os.chmod(self.data_dir, 0o700)
            return
        entry = pwd.getpwnam(os_user)
        for path in (self.pgdata, socket_dir, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        # The server user must traverse the data directory to reach pg/; nobody else may enter it.
        os.chown(self.data_dir, -1, entry.pw_gid)
        os.chmod(self.data_dir, 0o710)  # nosec B103: 0710: only the database's OS user group may traverse to pg/, nothing is readable
        if (self.pgdata / "PG_VERSION").is_file():
            # A cluster initialised by another user (or restored by root) must belong to the server user.
            for root, dirs, files in os.walk(self.pgdata):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        os.chmod(self.pgdata, 0o700)
        for parent in [*self.data_dir.parents, self.data_dir][::-1]:
            st = parent.stat()
            mode = st.st_mode
            traversable = (
                st.st_uid == entry.pw_uid or mode & 0o001 or (mode & 0o010 and st.st_gid in _groups_of(entry))
            )
            if not traversable:
                raise StorageError(
                    f"{parent} is not traversable by the database user {os_user!r} (mode {oct(mode & 0o777)}); "
                    f"run `chmod o+x {parent}` or choose another data directory (TICKWISE_DATA_DIR)"
                )

    def _check_socket_dir(self, socket_dir: Path, os_user: str | None) -> None:
        """Refuse a socket directory that another user planted (the /tmp fallback is shared)."""
        try:
            st = socket_dir.lstat()
        except FileNotFoundError:
            return
        allowed = {os.geteuid(), self._server_os_user(os_user).pw_uid}
        if not socket_dir.is_dir() or socket_dir.is_symlink() or st.st_uid not in allowed:
            raise StorageError(
                f"the socket directory {socket_dir} exists but is not a directory owned by this user or the "
                "database user; remove it (someone else may have created it) or use a shorter data directory"
            )

    def _initdb(self) -> None:
        # No password exists yet, so TCP is rejected until _write_auth_files and _secure_roles ran;
        # peer on the socket lets the server's own OS user in to set the passwords.
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.user,
                "--auth-local=peer",
                "--auth-host=reject",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        if result.returncode != 0:
            raise StorageError(f"initdb failed for {self.pgdata}: {_tail(result.stderr or result.stdout)}")

    def _write_auth_files(self, os_user: str | None) -> bool:
        """Write tickwise's pg_hba.conf and pg_ident.conf; True when they changed (reload needed)."""
        server_user = self._server_os_user(os_user)
        hba = (
            f"{_HBA_MARKER}\n"
            "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
            f"local   all  {quote_ident(self.user)}  peer map={_IDENT_MAP}\n"
            "host    all  all  127.0.0.1/32  scram-sha-256\n"
            "host    all  all  ::1/128       scram-sha-256\n"
        )
        ident = (
            f"{_HBA_MARKER}\n"
            "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\n"
            f"{_IDENT_MAP}  {server_user.pw_name}  {quote_ident(self.user)}\n"
        )
        changed = False
        for name, text in (("pg_hba.conf", hba), ("pg_ident.conf", ident)):
            path = self.pgdata / name
            if _read(path) == text:
                continue
            _write_private(path, text, owner=server_user)
            changed = True
        return changed

    def _reload(self) -> None:
        result = self._run([str(self.bindir / "pg_ctl"), "reload", "-D", str(self.pgdata)])
        if result.returncode != 0:
            raise StorageError(
                f"pg_ctl reload failed for {self.pgdata}: {_tail(result.stderr or result.stdout)}"
            )
        # The postmaster reloads pg_hba.conf asynchronously after SIGHUP.
        time.sleep(0.5)

    def _passwords(self) -> dict[str, str]:
        """The roles' passwords from ``pgpass_file``, generating (and saving) any that are missing."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        known = read_pgpass(self.pgpass_file)
        missing = [role for role in (self.user, self.app_user) if role not in known]
        if missing or (self.pgpass_file.stat().st_mode & 0o077):
            for role in missing:
                known[role] = generate_password()
            lines = [
                f"127.0.0.1:*:*:{_pgpass_escape(role)}:{_pgpass_escape(pw)}" for role, pw in known.items()
            ]
            _write_private(self.pgpass_file, "\n".join(lines) + "\n", owner=None)
        return known

    def _secure_roles(self, passwords: dict[str, str]) -> None:
        """Passwords for the admin and the app role (created when missing); idempotent."""
        self._psql(create_app_role_sql(self.app_user), dbname="postgres")
        for role in (self.user, self.app_user):
            self._psql(set_password_sql(role, passwords[role]), dbname="postgres")

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
        exists = self._psql(
            f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(self.dbname)}",  # nosec B608: the name is quoted by quote_literal/quote_ident
            dbname="postgres",
        )
        if exists != "1":
            self._psql(
                f"CREATE DATABASE {quote_ident(self.dbname)} OWNER {quote_ident(self.app_user)}",
                dbname="postgres",
            )
        self._psql("CREATE EXTENSION IF NOT EXISTS timescaledb", dbname=self.dbname)
        # A database made by an older tickwise belongs to the superuser: hand it to the app role.
        self._psql(hand_over_sql(self.app_user), dbname=self.dbname)

    def _psql(self, sql: str, *, dbname: str, check: bool = True) -> str:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGOPTIONS": "-c client_min_messages=warning"}
        env.pop("PGPASSWORD", None)
        deadline = time.monotonic() + 10
        while True:
            result = self._run(
                [
                    str(self.bindir / "psql"),
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    str(self.socket_dir),
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    "-d",
                    dbname,
                    "-c",
                    sql,
                ],
                env=env,
            )
            if result.returncode == 0:
                return result.stdout.strip()
            # Right after start the server may still refuse connections ("starting up").
            if "starting up" in result.stderr and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            if not check:
                return ""
            raise StorageError(f"{sql.split()[0]} on {self.admin_url()} failed: {_tail(result.stderr)}")

    def _run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        os_user = self._run_user()
        if os_user is not None:
            argv = ["runuser", "-u", os_user, "--", *argv]
        # pg_ctl's children inherit our stdout otherwise; keep them off captured pipes.
        return subprocess.run(  # nosec B603: fixed argv of PostgreSQL tools, no shell
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, cwd="/", env=env
        )


def _ensure_os_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(  # nosec B603 B607: a fixed argv of trusted tools, no shell; useradd from root's PATH, fixed arguments, no shell
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


def read_pgpass(path: Path) -> dict[str, str]:
    """role -> password from a pgpass file tickwise wrote (empty when the file is missing)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read the database password file {path}: {exc}") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        fields = _pgpass_split(line)
        if len(fields) == 5:
            out.setdefault(fields[3], fields[4])
    return out


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _pgpass_split(line: str) -> list[str]:
    fields, current, escaped = [], "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    return fields


def _write_private(path: Path, text: str, *, owner: pwd.struct_passwd | None) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600 from creation, fsynced, never via a symlink."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if owner is not None:
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _groups_of(entry: pwd.struct_passwd) -> set[int]:
    return {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem}


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
