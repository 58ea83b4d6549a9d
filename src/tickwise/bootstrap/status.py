"""``tickwise status``: one look at everything an operator checks, and what needs action.

:func:`collect_status` reads (never starts or writes) the database, the token file, the live
session's ``live-status.json``, the spill directory and ``data_dir``; every finding that needs the
operator adds one line to ``actions`` (the CLI exits 1 when there is any). An embedded cluster that
is not running is reported, not started: ``status`` must not change what it observes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from tickwise.config import Settings
from tickwise.domain.time import IST

# The live writer's file names (pipelines/live/spill.py SUFFIX, writer.py REJECTED_DIR), spelled here
# so that `tickwise status` does not import the live pipeline; a test keeps them equal.
SPILL_SUFFIX = ".spill"
REJECTED_DIR = "rejected"

# A live-status.json older than this is a finished (or killed) session, not a running one.
LIVE_STATUS_FRESH_S = 120.0
STATUS_QUERY_TIMEOUT_S = 10.0
_EDITIONS = {"apache": "apache", "timescale": "community"}


@dataclass
class DatabaseStatus:
    url: str
    external: bool
    reachable: bool = False
    error: str | None = None
    revision: str | None = None
    head: str | None = None
    postgresql: str | None = None
    timescaledb: str | None = None
    edition: str | None = None  # apache (Apache-2 build) or community (TSL build)

    @property
    def migrated(self) -> bool:
        return self.reachable and self.revision is not None and self.revision == self.head


@dataclass
class StatusReport:
    version: str
    world: str  # "simulator" or "kite": the recorded world of the database, else the configured one
    database: DatabaseStatus
    calendar: dict[str, Any]
    token: dict[str, Any]
    champion: dict[str, Any] | None = None
    last_candle: dict[str, str | None] = field(default_factory=dict)
    last_signal: dict[str, str | None] = field(default_factory=dict)
    live_session: dict[str, Any] | None = None
    spill: dict[str, Any] = field(default_factory=dict)
    disk: dict[str, Any] = field(default_factory=dict)
    lifecycle: dict[str, Any] = field(default_factory=dict)  # TimescaleDB features, space saved, jobs
    actions: list[str] = field(default_factory=list)
    # configured and recorded world, this world's data directory, the other worlds on disk
    worlds: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.actions

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["database"]["migrated"] = self.database.migrated
        data["ok"] = self.ok
        return data


def tickwise_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickwise")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


async def collect_status(settings: Settings, *, now: datetime | None = None) -> StatusReport:
    """Everything ``tickwise status`` shows; ``actions`` lists what needs the operator."""
    from tickwise.bootstrap.broker import uses_simulator

    moment = (now or datetime.now(IST)).astimezone(IST)
    simulated = uses_simulator(settings)
    report = StatusReport(
        version=tickwise_version(),
        world="simulator" if simulated else "kite",
        database=await _database(settings),
        calendar=_calendar(settings, moment),
        token=_token(settings, simulated, moment),
    )
    _token_covers_next_session(report.token, report.calendar)
    actions = report.actions
    db = report.database
    if not db.reachable:
        fix = "fix DATABASE_URL" if db.external else "start it with `tickwise db up`"
        actions.append(f"database not reachable ({db.error}): {fix}")
    elif not db.migrated:
        actions.append(
            f"database at revision {db.revision or 'none'}, code expects {db.head}: run `tickwise db migrate`"
        )
    if db.reachable and db.revision is not None:
        await _market_data(settings, report)
        await _lifecycle(settings, report)
    await _worlds(settings, report)
    if report.calendar.get("warning") and not report.calendar["this_year_covered"]:
        actions.append(str(report.calendar["warning"]))
    if report.token.get("action"):
        actions.append(str(report.token["action"]))
    report.live_session = _live_session(settings)
    live = report.live_session
    if live and live["running"] and not live.get("feed_alive", True):
        actions.append(f"live session running but the feed is {live.get('feed_state')}: see the live log")
    report.spill = _spill(settings)
    if report.spill["pending_files"]:
        actions.append(
            f"{report.spill['pending_files']} write batch(es) wait in {report.spill['dir']}: "
            "the next `tickwise live` writes them first (keep the directory)"
        )
    if report.spill["foreign_files"]:
        actions.append(
            f"{report.spill['foreign_files']} spill file(s) of an older format in {report.spill['dir']}: "
            "the next `tickwise live` moves them to rejected/ unread (see docs/operations.md)"
        )
    if report.spill["rejected_files"]:
        actions.append(
            f"{report.spill['rejected_files']} rejected file(s) in {report.spill['rejected_dir']}: "
            "inspect them (docs/operations.md, Spill files), then delete them"
        )
    report.disk = _disk(Path(settings.system.data_dir))
    return report


async def _database(settings: Settings) -> DatabaseStatus:
    from tickwise.adapters.timescale.pool import redact_url
    from tickwise.bootstrap.database import embedded_cluster, uses_external_database

    external = uses_external_database(settings)
    if external:
        url = settings.database.url.get_secret_value()
    else:
        cluster = embedded_cluster(settings)
        url = cluster.url()
        if cluster.running_pid() is None:
            return DatabaseStatus(
                redact_url(url), False, error=f"the embedded cluster in {cluster.pgdata} is stopped"
            )
    status = DatabaseStatus(redact_url(url), external, head=_head_revision(url))
    try:
        conn = await asyncpg.connect(url, timeout=settings.database.connect_timeout_s)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        status.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return status
    try:
        status.reachable = True
        row = await conn.fetchrow(
            "SELECT current_setting('server_version') AS version, "
            "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS ts, "
            "current_setting('timescaledb.license', true) AS license, "
            "to_regclass('alembic_version') IS NOT NULL AS has_alembic"
        )
        if row is not None:  # a SELECT without FROM always returns its one row
            status.postgresql = row["version"]
            status.timescaledb = row["ts"]
            license_ = row["license"]
            status.edition = _EDITIONS.get(license_, license_) if status.timescaledb else None
            if row["has_alembic"]:
                status.revision = await conn.fetchval("SELECT version_num FROM alembic_version LIMIT 1")
    finally:
        await conn.close()
    return status


def _head_revision(url: str) -> str | None:
    """The Alembic head(s) of this checkout's migrations (None when the directory is missing)."""
    from alembic.script import ScriptDirectory

    from tickwise.bootstrap.database import alembic_config
    from tickwise.domain.errors import StorageError

    try:
        heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()  # type: ignore[arg-type]
    except StorageError:
        return None
    return ",".join(sorted(heads)) or None


async def _market_data(settings: Settings, report: StatusReport) -> None:
    """Champion, last candle per source and last signal per mode (read-only queries)."""
    conn = await asyncpg.connect(settings.database.url.get_secret_value() or _embedded_url(settings))
    try:
        # A status check must answer quickly even on a huge database: a query that runs longer is
        # reported as unknown instead of hanging the check.
        await conn.execute(f"SET statement_timeout = '{int(STATUS_QUERY_TIMEOUT_S * 1000)}ms'")
        champion = await conn.fetchrow(
            "SELECT model_version, created_at, trained_to FROM models WHERE status = 'champion' "
            "ORDER BY created_at DESC LIMIT 1"
        )
        # ORDER BY time DESC LIMIT 1 walks the hypertable's time index from the newest chunk.
        for source in ("historical", "live"):
            report.last_candle[source] = await _newest(conn, "candles", "source", source)
            report.last_signal[source] = await _newest(conn, "signals", "mode", source)
    finally:
        await conn.close()
    if champion is None:
        report.champion = None
        report.actions.append("no champion model: run `tickwise historical` (or `tickwise train`)")
        return
    created: datetime = champion["created_at"]
    report.champion = {
        "model_version": champion["model_version"],
        "created_at": _iso(created),
        "trained_to": _iso(champion["trained_to"]),
        "age_days": round((time.time() - created.timestamp()) / 86400, 1),
    }


async def _worlds(settings: Settings, report: StatusReport) -> None:
    """The world the database holds (read, never recorded here) next to the configured one."""
    from tickwise.bootstrap.world import configured_world, mismatch_message
    from tickwise.domain.world import World

    configured = configured_world(settings)
    recorded: World | None = None
    if report.database.reachable:
        conn = await asyncpg.connect(settings.database.url.get_secret_value() or _embedded_url(settings))
        try:
            if await conn.fetchval("SELECT to_regclass('world') IS NOT NULL"):
                row = await conn.fetchrow("SELECT kind, seed, api_key, user_id FROM world")
                if row is not None:
                    recorded = World(row["kind"], row["seed"], row["api_key"], row["user_id"])
        finally:
            await conn.close()
    external = report.database.external
    here = Path(settings.system.data_dir)
    report.world = (recorded or configured).kind
    report.worlds = {
        "configured": {"name": configured.name, "describe": configured.describe()},
        "recorded": {"name": recorded.name, "describe": recorded.describe()} if recorded else None,
        "data_dir": None if external else str(here),
        "others": [] if external else _other_worlds(settings, here),
    }
    if recorded is not None and not recorded.same_market(configured):
        report.actions.append(mismatch_message(recorded, configured, external=external))


def _other_worlds(settings: Settings, here: Path) -> list[dict[str, Any]]:
    from tickwise.bootstrap.world import worlds_on_disk

    return [
        {"name": w.name, "data_dir": str(w.data_dir), "has_database": w.has_database}
        for w in worlds_on_disk(settings)
        if w.data_dir.resolve() != here.resolve()
    ]


async def _lifecycle(settings: Settings, report: StatusReport) -> None:
    """TimescaleDB's lifecycle features (on/off and why), compression savings, failing jobs as actions."""
    from tickwise.adapters.timescale.lifecycle import lifecycle_status

    conn = await asyncpg.connect(settings.database.url.get_secret_value() or _embedded_url(settings))
    try:
        await conn.execute(f"SET statement_timeout = '{int(STATUS_QUERY_TIMEOUT_S * 1000)}ms'")
        status = await lifecycle_status(conn)
    except asyncpg.PostgresError as exc:
        report.lifecycle = {"error": str(exc).splitlines()[0]}
        return
    finally:
        await conn.close()
    report.lifecycle = {
        "features": {f.name: {"on": f.active, "detail": f.detail} for f in status.features},
        "compression": [
            {
                "table": c.table,
                "chunks": c.chunks,
                "compressed_chunks": c.compressed_chunks,
                "bytes_before": c.bytes_before,
                "bytes_after": c.bytes_after,
                "saved_bytes": c.saved_bytes,
            }
            for c in status.compression
        ],
        "failing_jobs": [
            {"job_id": j.job_id, "name": j.name, "runner": j.runner, "error": j.last_error}
            for j in status.failing_jobs
        ],
    }
    for job in status.failing_jobs:
        fix = (
            "see docs/timescaledb.md (set database.lifecycle.run_jobs: tickwise and run `tickwise db migrate`)"
            if job.runner == "timescaledb"
            else "see `tickwise db maintain`"
        )
        report.actions.append(
            f"TimescaleDB job {job.job_id} ({job.name}) failed: {job.last_error or 'no message'}; {fix}"
        )


async def _newest(conn: asyncpg.Connection, table: str, column: str, value: str) -> str | None:
    # table and column are constants of this module, never input.
    query = f"SELECT time FROM {table} WHERE {column} = $1 ORDER BY time DESC LIMIT 1"  # nosec B608
    try:
        t = await conn.fetchval(query, value)
    except asyncpg.QueryCanceledError:
        return f"unknown (no answer within {STATUS_QUERY_TIMEOUT_S:g} s)"
    return _iso(t)


def _embedded_url(settings: Settings) -> str:
    from tickwise.bootstrap.database import embedded_cluster

    return embedded_cluster(settings).url()


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(IST).isoformat()
    return str(value)


def _calendar(settings: Settings, now: datetime) -> dict[str, Any]:
    from tickwise.bootstrap.calendar import build_calendar, coverage_gap

    cal = build_calendar(settings)
    today = now.date()
    trading = cal.is_trading_day(today)
    # The session the next live run serves: today's until its close, else the next trading day's.
    upcoming = today if trading and now < cal.session_close(today) else cal.next_trading_day(today)
    return {
        "today": today.isoformat(),
        "trading_day": trading,
        "session": (
            f"{cal.session_open(today):%H:%M}-{cal.session_close(today):%H:%M} IST" if trading else None
        ),
        "next_session": cal.next_trading_day(today).isoformat(),
        "upcoming_open": cal.session_open(upcoming).isoformat(),
        "holidays_known_through": cal.known_through.isoformat() if cal.known_through else None,
        "warning": coverage_gap(cal, today),
        # Next year's holidays missing is advance notice; this year's missing makes sessions wrong now.
        "this_year_covered": cal.known_through is None or cal.covers(date(today.year, 12, 31)),
    }


def _token_covers_next_session(token: dict[str, Any], calendar: dict[str, Any]) -> None:
    """Say whether a valid token lasts until the upcoming open (informational: a token logged in
    the evening always expires at 06:00, before the next session; log in each morning)."""
    if token.get("state") == "valid" and token.get("expires_at"):
        expires = datetime.fromisoformat(token["expires_at"])
        token["valid_at_next_open"] = expires > datetime.fromisoformat(calendar["upcoming_open"])


def _token(settings: Settings, simulated: bool, now: datetime) -> dict[str, Any]:
    from tickwise.bootstrap.broker import token_store
    from tickwise.domain.errors import BrokerError

    if simulated:
        return {"state": "not needed (simulator)", "expires_at": None}
    if settings.broker.access_token.get_secret_value():
        return {"state": "from KITE_ACCESS_TOKEN (expiry not recorded)", "expires_at": None}
    store = token_store(settings)
    try:
        stored = store.load()
    except BrokerError as exc:
        return {"state": "unreadable", "expires_at": None, "action": str(exc)}
    if stored is None:
        return {
            "state": "missing",
            "expires_at": None,
            "action": "no Kite login: run `tickwise auth login` (on a server: see docs/going-live.md)",
        }
    expires = stored.expires_at.isoformat()
    if not stored.is_valid(now):
        return {
            "state": "expired",
            "expires_at": expires,
            "action": f"the Kite token expired at {stored.expires_at:%Y-%m-%d %H:%M} IST: run `tickwise auth login`",
        }
    return {"state": "valid", "expires_at": expires}


def _live_session(settings: Settings) -> dict[str, Any] | None:
    path = Path(settings.system.data_dir) / "live-status.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"path": str(path), "running": False, "error": f"unreadable: {exc}"}
    if not isinstance(data, dict):
        return {"path": str(path), "running": False, "error": "unreadable: not a JSON object"}
    at = data.get("at")
    age = time.time() - float(at) if isinstance(at, int | float) else None
    keep = (
        "market_time",
        "feed_alive",
        "feed_state",
        "reconnects",
        "db_reachable",
        "db_spilled_files",
        "model_loaded",
        "bars",
        "signals",
    )
    return {
        "path": str(path),
        "running": age is not None and age < LIVE_STATUS_FRESH_S,
        "updated_s_ago": round(age, 1) if age is not None else None,
        **{k: data.get(k) for k in keep if k in data},
    }


def _spill(settings: Settings) -> dict[str, Any]:
    # The same names the live writer uses (pipelines/live/writer.py, spill.py): pending batches are
    # ``spill-*.spill``; what it set aside is under ``rejected/``; older builds left ``*.pkl`` files.
    spill_dir = Path(settings.live.spill_dir)
    rejected_dir = spill_dir / REJECTED_DIR

    def files(directory: Path, pattern: str) -> int:
        return sum(1 for p in directory.glob(pattern) if p.is_file()) if directory.is_dir() else 0

    return {
        "dir": str(spill_dir),
        "rejected_dir": str(rejected_dir),
        "pending_files": files(spill_dir, f"spill-*{SPILL_SUFFIX}"),
        "foreign_files": files(spill_dir, "spill-*.pkl"),
        "rejected_files": files(rejected_dir, "*")
        + files(spill_dir, "rejected-*.pkl")
        + files(spill_dir, "unreadable-*"),
    }


def _disk(data_dir: Path) -> dict[str, Any]:
    """Bytes used under ``data_dir`` per top-level entry (unreadable entries are skipped, not fatal)."""
    parts: dict[str, int] = {}
    if data_dir.is_dir():
        for entry in sorted(data_dir.iterdir()):
            parts[entry.name] = _size(entry)
    return {"data_dir": str(data_dir), "bytes": sum(parts.values()), "parts": parts}


def _size(path: Path) -> int:
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for root, _dirs, files in os.walk(path, onerror=lambda _e: None):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
