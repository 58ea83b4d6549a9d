"""TimescaleDB's own lifecycle: compression, retention, continuous aggregates and the jobs that run them.

Everything here is idempotent and re-checked on every ``tickwise db migrate`` / ``db up``
(:func:`ensure_lifecycle`), not only once in a migration: a database migrated under the Apache license
and later moved to a TSL build gets its compression, policies and continuous aggregates the next time
it is migrated. On the Apache build the TSL-only parts are skipped and :func:`lifecycle_status` says
which features are off and why; retention then runs by hand (:func:`apply_retention`, ``tickwise db
retention --policy``), which also does what TimescaleDB cannot: keep each *timeframe* of the bar tables
for its own age (a retention policy drops whole chunks, whose rows mix timeframes).

Background jobs: on PostgreSQL 15.19+ (and the matching 16/17 minors) every TimescaleDB job run by its
scheduler ends with ``cannot drop portal "" while it is being set up``. TimescaleDB's job entry point
(``job_execute`` in ``tsl/src/bgw_policy/job.c``, still so in 2.29) creates an empty placeholder portal
when none is active (a background worker) and drops it while it is still in the NEW state, which the
hardened ``PortalDrop`` of those minors refuses. The job's work has committed by then, but the run is
recorded Failed and retried. ``CALL run_job(id)`` from a client session has an active portal, so no
placeholder is made and the run succeeds: with ``run_jobs = "tickwise"`` (the default) tickwise takes
its jobs off TimescaleDB's scheduler and :func:`run_due_jobs` (``tickwise db maintain``) runs each one
when its schedule interval has passed, recording the outcome in ``lifecycle_job_runs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from tickwise.adapters.timescale.roles import APP_ROLE, GRAFANA_ROLE, quote_ident

#: tables whose rows carry a ``timeframe`` (kept per timeframe) and ticks (kept as a whole)
BAR_TABLES = ("candles", "features", "labels", "signals")
LIFECYCLE_TABLES = ("ticks", *BAR_TABLES)
#: the built-in job that trims TimescaleDB's own job history (job 3 in a fresh database)
JOB_HISTORY_PROC = "policy_job_stat_history_retention"


@dataclass(frozen=True)
class CompressionLayout:
    """How a hypertable's compressed chunks are laid out: one segment per ``segmentby`` value set."""

    segmentby: tuple[str, ...]
    orderby: tuple[str, ...]

    def sql(self) -> tuple[str, str]:
        return ", ".join(self.segmentby), ", ".join(self.orderby)


#: Every column of a table's unique key is a segmentby or orderby column, so an ``ON CONFLICT`` upsert
#: into a compressed chunk finds the one segment it can conflict with (TimescaleDB warns otherwise);
#: ticks order by ``received_at`` too, the third column of their key.
COMPRESSION: dict[str, CompressionLayout] = {
    "ticks": CompressionLayout(("instrument_token",), ("time DESC", "received_at DESC")),
    "candles": CompressionLayout(("instrument_token", "timeframe"), ("time DESC",)),
    "features": CompressionLayout(("instrument_token", "timeframe", "feature_set"), ("time DESC",)),
    "labels": CompressionLayout(("instrument_token", "timeframe"), ("time DESC", "side")),
    "signals": CompressionLayout(("instrument_token", "timeframe"), ("time DESC", "model_version", "mode")),
}


@dataclass(frozen=True)
class ContinuousAggregate:
    name: str
    source: str
    query: str
    refresh_start: timedelta  # refreshed window: [now - start, now - end); newer rows come real-time
    refresh_end: timedelta
    refresh_every: timedelta


#: Continuous aggregates Grafana reads, all with real-time aggregation (``materialized_only = false``).
#: ``candles_daily`` follows ``core.aggregation`` exactly: 1m bars inside the 09:15-15:30 IST session,
#: stamped at midnight IST, open of the first bar, close and oi of the last, volume summed.
#: ``backtest_daily`` buckets trades by entry day (the hypertable's time column); intraday trades are
#: squared off the day they open, so this is also the exit day ``core.trading.metrics.daily_pnl`` uses.
CONTINUOUS_AGGREGATES: tuple[ContinuousAggregate, ...] = (
    ContinuousAggregate(
        "candles_daily",
        "candles",
        """SELECT instrument_token, time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata') AS time,
       first(open, time) AS open, max(high) AS high, min(low) AS low, last(close, time) AS close,
       sum(volume)::bigint AS volume, last(oi, time) AS oi, count(*) AS bars
FROM candles
WHERE timeframe = '1m'
  AND time - time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata') >= INTERVAL '9 hours 15 minutes'
  AND time - time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata') < INTERVAL '15 hours 30 minutes'
GROUP BY instrument_token, time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata')""",
        timedelta(days=7),
        timedelta(hours=1),
        timedelta(hours=1),
    ),
    ContinuousAggregate(
        "signals_daily",
        "signals",
        """SELECT time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata') AS day, instrument_token, timeframe, model_version, mode,
       count(*) AS signals,
       count(*) FILTER (WHERE direction = 1) AS longs,
       count(*) FILTER (WHERE direction = -1) AS shorts,
       avg(confidence) AS mean_confidence, max(confidence) AS max_confidence
FROM signals
GROUP BY time_bucket(INTERVAL '1 day', time, 'Asia/Kolkata'), instrument_token, timeframe, model_version, mode""",
        timedelta(days=7),
        timedelta(hours=1),
        timedelta(hours=1),
    ),
    ContinuousAggregate(
        "backtest_daily",
        "backtest_trades",
        """SELECT run_id, time_bucket(INTERVAL '1 day', entry_time, 'Asia/Kolkata') AS day,
       count(*) AS trades, count(*) FILTER (WHERE net > 0) AS wins,
       sum(gross) AS gross, sum(net) AS net
FROM backtest_trades
GROUP BY run_id, time_bucket(INTERVAL '1 day', entry_time, 'Asia/Kolkata')""",
        timedelta(days=3650),
        timedelta(hours=1),
        timedelta(hours=6),
    ),
)


@dataclass(frozen=True)
class LifecyclePolicy:
    """What :func:`ensure_lifecycle` sets up; built from ``database.lifecycle`` by the bootstrap layer."""

    compress_after: Mapping[str, timedelta]
    ticks_retention: timedelta
    timeframe_retention: Mapping[str, timedelta]
    continuous_aggregates: bool = True
    run_jobs: Literal["tickwise", "timescaledb"] = "tickwise"

    @property
    def bar_retention(self) -> timedelta:
        """The longest timeframe age: what a whole-chunk retention policy on a bar table may drop."""
        return max(self.timeframe_retention.values())


DEFAULT_POLICY = LifecyclePolicy(
    compress_after={"ticks": timedelta(days=2), **{t: timedelta(days=30) for t in BAR_TABLES}},
    ticks_retention=timedelta(weeks=4),
    timeframe_retention={
        "1m": timedelta(days=365),
        "5m": timedelta(days=730),
        "15m": timedelta(days=730),
        "60m": timedelta(days=3650),
        "1d": timedelta(days=3650),
    },
)


@dataclass(frozen=True)
class Feature:
    name: str
    active: bool
    detail: str


@dataclass(frozen=True)
class TableCompression:
    table: str
    chunks: int
    compressed_chunks: int
    bytes_before: int | None
    bytes_after: int | None

    @property
    def saved_bytes(self) -> int | None:
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return self.bytes_before - self.bytes_after


@dataclass(frozen=True)
class JobState:
    job_id: int
    name: str
    scheduled: bool
    runs: int
    failures: int
    last_status: str | None
    last_error: str | None
    runner: Literal["timescaledb", "tickwise"]

    @property
    def failing(self) -> bool:
        return self.last_status == "Failed"


@dataclass(frozen=True)
class LifecycleStatus:
    license: str | None
    features: tuple[Feature, ...]
    compression: tuple[TableCompression, ...] = ()
    jobs: tuple[JobState, ...] = ()

    @property
    def failing_jobs(self) -> tuple[JobState, ...]:
        return tuple(job for job in self.jobs if job.failing)


@dataclass(frozen=True)
class JobRun:
    job_id: int
    name: str
    succeeded: bool
    error: str | None = None


@dataclass
class EnsureReport:
    license: str | None
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def _license(conn: asyncpg.Connection) -> str | None:
    value = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    return str(value) if value else None


async def _is_superuser(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))


async def _role_exists(conn: asyncpg.Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))


def age_text(age: timedelta) -> str:
    """``30 days``, ``4 weeks``, ``12 hours``: an age as people write it."""
    if age % timedelta(weeks=1) == timedelta(0) and age.days % 365:
        return f"{age.days // 7} weeks"
    if age % timedelta(days=1) == timedelta(0):
        return f"{age.days} days"
    return f"{age / timedelta(hours=1):g} hours"


def _norm(items: Sequence[str] | str | None) -> tuple[str, ...]:
    if items is None:
        return ()
    parts = items.split(",") if isinstance(items, str) else list(items)
    return tuple(" ".join(p.replace('"', "").lower().split()) for p in parts if p.strip())


async def ensure_lifecycle(
    conn: asyncpg.Connection, policy: LifecyclePolicy = DEFAULT_POLICY
) -> EnsureReport:
    """Bring compression, retention policies, continuous aggregates and job scheduling in line with
    ``policy``; a no-op for what is already so. Run it as the migrating superuser (or the tables' owner)."""
    report = EnsureReport(license=await _license(conn))
    if not await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
        report.warnings.append("the timescaledb extension is not installed")
        return report
    if report.license != "timescale":
        await _park_job_history_job(conn, report)
        return report
    for table in LIFECYCLE_TABLES:
        if table in policy.compress_after:
            await _ensure_compression(conn, table, policy.compress_after[table], report)
    await _ensure_retention_policy(conn, "ticks", policy.ticks_retention, report)
    for table in BAR_TABLES:
        await _ensure_retention_policy(conn, table, policy.bar_retention, report)
    if policy.continuous_aggregates:
        for cagg in CONTINUOUS_AGGREGATES:
            await _ensure_cagg(conn, cagg, report)
    await _ensure_scheduling(conn, policy.run_jobs, report)
    return report


async def _park_job_history_job(conn: asyncpg.Connection, report: EnsureReport) -> None:
    """Apache build: TimescaleDB schedules its job-history retention job, which needs the TSL module and
    so fails on every run ("not supported under the current apache license"). Unschedule it (what
    ``alter_job(scheduled => false)`` does, which the Apache build does not offer either)."""
    if not await _is_superuser(conn):
        return
    parked = await conn.fetch(
        "UPDATE _timescaledb_config.bgw_job SET scheduled = false "
        "WHERE proc_name = $1 AND scheduled RETURNING id",
        JOB_HISTORY_PROC,
    )
    for row in parked:
        report.actions.append(f"unscheduled job {row['id']} (job history retention needs the TSL build)")


async def _ensure_compression(
    conn: asyncpg.Connection, table: str, after: timedelta, report: EnsureReport
) -> None:
    layout = COMPRESSION[table]
    current = await conn.fetchrow(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings "
        "WHERE hypertable = $1::regclass",
        table,
    )
    wanted = (_norm(layout.segmentby), _norm(layout.orderby))
    have = (_norm(current["segmentby"]), _norm(current["orderby"])) if current else ((), ())
    if have != wanted:
        compressed = await conn.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = $1 AND is_compressed",
            table,
        )
        if compressed:
            report.warnings.append(
                f"{table}: compressed with segmentby {have[0]} orderby {have[1]}; the layout "
                f"{wanted} applies after its {compressed} compressed chunk(s) are decompressed "
                "(decompress_chunk on each of show_chunks)"
            )
        else:
            segmentby, orderby = layout.sql()
            await conn.execute(
                f"ALTER TABLE {quote_ident(table)} SET (timescaledb.compress, "  # nosec B608: fixed names
                f"timescaledb.compress_segmentby = '{segmentby}', timescaledb.compress_orderby = '{orderby}')"
            )
            report.actions.append(f"{table}: compression segmentby ({segmentby}) orderby ({orderby})")
    job = await conn.fetchrow(
        "SELECT job_id, (config->>'compress_after')::interval AS after FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_compression' AND hypertable_name = $1",
        table,
    )
    if job is not None and job["after"] == after:
        return
    if job is not None:
        await conn.execute("SELECT remove_compression_policy($1::regclass, if_exists => TRUE)", table)
    await conn.execute(
        "SELECT add_compression_policy($1::regclass, compress_after => $2::interval)", table, after
    )
    report.actions.append(f"{table}: compression policy after {age_text(after)}")


async def _ensure_retention_policy(
    conn: asyncpg.Connection, table: str, drop_after: timedelta, report: EnsureReport
) -> None:
    job = await conn.fetchrow(
        "SELECT job_id, (config->>'drop_after')::interval AS after FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = $1",
        table,
    )
    if job is not None and job["after"] == drop_after:
        return
    if job is not None:
        await conn.execute("SELECT remove_retention_policy($1::regclass, if_exists => TRUE)", table)
    await conn.execute(
        "SELECT add_retention_policy($1::regclass, drop_after => $2::interval)", table, drop_after
    )
    report.actions.append(f"{table}: retention policy drops chunks older than {age_text(drop_after)}")


async def _ensure_cagg(conn: asyncpg.Connection, cagg: ContinuousAggregate, report: EnsureReport) -> None:
    exists = await conn.fetchval(
        "SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = $1", cagg.name
    )
    name = quote_ident(cagg.name)
    # Created as the application role, which owns every table after a migration: the hand-over that
    # runs after each migration re-owns plain views with ALTER VIEW, which a continuous aggregate refuses.
    as_app = await _is_superuser(conn) and await _role_exists(conn, APP_ROLE)
    async with conn.transaction():
        if as_app:
            await conn.execute(f"SET LOCAL ROLE {quote_ident(APP_ROLE)}")
        if not exists:
            await conn.execute(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, "
                f"timescaledb.materialized_only = false) AS {cagg.query} WITH NO DATA"
            )
            report.actions.append(f"continuous aggregate {cagg.name} over {cagg.source}")
        else:
            await conn.execute(f"ALTER MATERIALIZED VIEW {name} SET (timescaledb.materialized_only = false)")
        await conn.execute(
            "SELECT add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval, "
            "end_offset => $3::interval, schedule_interval => $4::interval, if_not_exists => TRUE)",
            cagg.name,
            cagg.refresh_start,
            cagg.refresh_end,
            cagg.refresh_every,
        )
        for role in (APP_ROLE, GRAFANA_ROLE):
            if await _role_exists(conn, role):
                await conn.execute(f"GRANT SELECT ON {name} TO {quote_ident(role)}")


async def _managed_jobs(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """tickwise's jobs: policies on its hypertables and continuous aggregates, and the job-history job."""
    caggs = [c.name for c in CONTINUOUS_AGGREGATES]
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT j.job_id, j.application_name, j.scheduled, j.schedule_interval, j.proc_name, j.owner::text AS owner "
        "FROM timescaledb_information.jobs j "
        "LEFT JOIN timescaledb_information.continuous_aggregates c "
        "  ON c.materialization_hypertable_schema = j.hypertable_schema "
        " AND c.materialization_hypertable_name = j.hypertable_name "
        "WHERE j.hypertable_name = ANY($1::text[]) OR c.view_name = ANY($2::text[]) OR j.proc_name = $3 "
        "ORDER BY j.job_id",
        list(LIFECYCLE_TABLES),
        caggs,
        JOB_HISTORY_PROC,
    )
    return rows


async def _ensure_scheduling(
    conn: asyncpg.Connection, run_jobs: Literal["tickwise", "timescaledb"], report: EnsureReport
) -> None:
    scheduled = run_jobs == "timescaledb"
    superuser = await _is_superuser(conn)
    me = await conn.fetchval("SELECT current_user")
    for job in await _managed_jobs(conn):
        if job["scheduled"] != scheduled:
            if not superuser and job["owner"] != me:
                report.warnings.append(
                    f"job {job['job_id']} ({job['application_name']}) belongs to {job['owner']}: "
                    "migrate as the superuser (`tickwise db migrate`) to change its scheduling"
                )
                continue
            await conn.execute("SELECT job_id FROM alter_job($1, scheduled => $2)", job["job_id"], scheduled)
            verb = "scheduled by TimescaleDB" if scheduled else "run by `tickwise db maintain`"
            report.actions.append(f"job {job['job_id']} ({job['application_name']}): {verb}")


async def run_due_jobs(
    conn: asyncpg.Connection, *, force: bool = False, now: datetime | None = None
) -> list[JobRun]:
    """Run (``CALL run_job``) each unscheduled tickwise job whose schedule interval has passed since its
    last run by tickwise (all of them with ``force``); record each outcome in ``lifecycle_job_runs``.

    Needs the TSL build; returns [] on the Apache build. A failing job is recorded and the others run.
    """
    if await _license(conn) != "timescale":
        return []
    clock = now or await conn.fetchval("SELECT now()")
    last = {
        r["job_id"]: r["finished_at"]
        for r in await conn.fetch("SELECT job_id, finished_at FROM lifecycle_job_runs WHERE succeeded")
    }
    runs: list[JobRun] = []
    for job in await _managed_jobs(conn):
        if job["scheduled"]:
            continue  # TimescaleDB's scheduler runs it (run_jobs = "timescaledb")
        done = last.get(job["job_id"])
        if not force and done is not None and done + job["schedule_interval"] > clock:
            continue
        started = await conn.fetchval("SELECT clock_timestamp()")
        error: str | None = None
        try:
            # Simple-protocol CALL outside any transaction block: policies commit per chunk.
            await conn.execute(f"CALL run_job({int(job['job_id'])})")
        except asyncpg.PostgresError as exc:
            error = str(exc).splitlines()[0]
        await conn.execute(
            "INSERT INTO lifecycle_job_runs (job_id, application_name, started_at, finished_at, succeeded, error) "
            "VALUES ($1, $2, $3, clock_timestamp(), $4, $5) ON CONFLICT (job_id) DO UPDATE SET "
            "application_name = excluded.application_name, started_at = excluded.started_at, "
            "finished_at = excluded.finished_at, succeeded = excluded.succeeded, error = excluded.error",
            job["job_id"],
            job["application_name"],
            started,
            error is None,
            error,
        )
        runs.append(JobRun(job["job_id"], job["application_name"], error is None, error))
    return runs


async def apply_retention(
    conn: asyncpg.Connection, policy: LifecyclePolicy = DEFAULT_POLICY
) -> dict[str, int]:
    """Retention by hand (both builds): drop whole chunks of ticks older than the ticks age and of the bar
    tables older than their longest timeframe age, then delete the rows of each shorter-lived timeframe.

    Returns chunks dropped per table (``"ticks"``) and rows deleted per table and timeframe
    (``"candles/1m"``).
    """
    out: dict[str, int] = {}
    rows = await conn.fetch(
        "SELECT drop_chunks('ticks'::regclass, older_than => now() - $1::interval)", policy.ticks_retention
    )
    out["ticks"] = len(rows)
    longest = policy.bar_retention
    for table in BAR_TABLES:
        rows = await conn.fetch(
            f"SELECT drop_chunks('{table}'::regclass, older_than => now() - $1::interval)",  # nosec B608: fixed names
            longest,
        )
        out[table] = len(rows)
        for timeframe, age in sorted(policy.timeframe_retention.items()):
            if age >= longest:
                continue
            status = await conn.execute(
                f"DELETE FROM {table} WHERE timeframe = $1 AND time < now() - $2::interval",  # nosec B608: fixed names
                timeframe,
                age,
            )
            out[f"{table}/{timeframe}"] = int(status.split()[-1])
    return out


async def lifecycle_status(conn: asyncpg.Connection) -> LifecycleStatus:
    """Which lifecycle features are on (and why not), the space compression saved, and the jobs' state."""
    installed = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    license_ = await _license(conn)
    if not installed:
        off = "the timescaledb extension is not installed"
        return LifecycleStatus(license_, tuple(Feature(n, False, off) for n in _FEATURE_NAMES))
    if license_ != "timescale":
        why = (
            f"needs the TSL build with timescaledb.license = 'timescale' (this server: {license_ or 'unset'}; "
            "see docs/timescaledb.md)"
        )
        features = (
            Feature("compression", False, why),
            Feature("retention policies", False, why + "; use `tickwise db retention --policy`"),
            Feature("continuous aggregates", False, why),
            Feature("background jobs", False, why),
        )
        return LifecycleStatus(license_, features, (), await _jobs(conn, tickwise_runs=False))
    compression = await _compression(conn)
    caggs = await conn.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "WHERE view_name = ANY($1::text[]) ORDER BY view_name",
        [c.name for c in CONTINUOUS_AGGREGATES],
    )
    policies = await conn.fetch(
        "SELECT proc_name, count(*) AS n FROM timescaledb_information.jobs "
        "WHERE hypertable_name = ANY($1::text[]) GROUP BY proc_name",
        list(LIFECYCLE_TABLES),
    )
    counts = {r["proc_name"]: r["n"] for r in policies}
    enabled = [c.table for c in compression if c.table in COMPRESSION]
    jobs = await _jobs(conn)
    features = (
        Feature(
            "compression",
            bool(enabled),
            f"on for {', '.join(enabled)} ({counts.get('policy_compression', 0)} policies)"
            if enabled
            else "not set up: run `tickwise db migrate`",
        ),
        Feature(
            "retention policies",
            bool(counts.get("policy_retention")),
            f"{counts.get('policy_retention', 0)} policies; per-timeframe ages by `tickwise db maintain`",
        ),
        Feature(
            "continuous aggregates",
            bool(caggs),
            ", ".join(f"{r['view_name']}{'' if r['materialized_only'] else ' (real-time)'}" for r in caggs)
            or "not set up: run `tickwise db migrate`",
        ),
        Feature(
            "background jobs",
            True,
            f"{sum(j.runner == 'tickwise' for j in jobs)} run by `tickwise db maintain`, "
            f"{sum(j.runner == 'timescaledb' and j.scheduled for j in jobs)} by TimescaleDB's scheduler",
        ),
    )
    return LifecycleStatus(license_, features, compression, jobs)


_FEATURE_NAMES = ("compression", "retention policies", "continuous aggregates", "background jobs")


async def _compression(conn: asyncpg.Connection) -> tuple[TableCompression, ...]:
    out = []
    for table in LIFECYCLE_TABLES:
        enabled = await conn.fetchval(
            "SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = $1",
            table,
        )
        if not enabled:
            continue
        row = await conn.fetchrow(
            "SELECT total_chunks, number_compressed_chunks, before_compression_total_bytes, "
            "after_compression_total_bytes FROM hypertable_compression_stats($1::regclass)",
            table,
        )
        chunks = await conn.fetchval("SELECT count(*) FROM show_chunks($1::regclass)", table)
        out.append(
            TableCompression(
                table,
                int(chunks or 0),
                int(row["number_compressed_chunks"] or 0) if row else 0,
                row["before_compression_total_bytes"] if row else None,
                row["after_compression_total_bytes"] if row else None,
            )
        )
    return tuple(out)


async def _jobs(conn: asyncpg.Connection, *, tickwise_runs: bool = True) -> tuple[JobState, ...]:
    """Every TimescaleDB job with TimescaleDB's last run status, merged with tickwise's own runs
    (``tickwise_runs``: the TSL build, where `tickwise db maintain` runs the unscheduled ones)."""
    rows = await conn.fetch(
        "SELECT j.job_id, j.application_name, j.scheduled, s.total_runs, s.total_failures, s.last_run_status "
        "FROM timescaledb_information.jobs j LEFT JOIN timescaledb_information.job_stats s USING (job_id) "
        "ORDER BY j.job_id"
    )
    errors: dict[int, str] = {}
    try:
        for r in await conn.fetch(
            "SELECT DISTINCT ON (job_id) job_id, err_message FROM timescaledb_information.job_errors "
            "ORDER BY job_id, start_time DESC"
        ):
            errors[r["job_id"]] = r["err_message"]
    except asyncpg.PostgresError:
        pass  # the job history is readable by its owners only; the status stays without the message
    ours: dict[int, asyncpg.Record] = {}
    if await conn.fetchval("SELECT to_regclass('lifecycle_job_runs') IS NOT NULL"):
        ours = {r["job_id"]: r for r in await conn.fetch("SELECT * FROM lifecycle_job_runs")}
    out = []
    for r in rows:
        mine = ours.get(r["job_id"])
        if not r["scheduled"] and mine is not None:
            out.append(
                JobState(
                    r["job_id"],
                    r["application_name"],
                    False,
                    r["total_runs"] or 0,
                    r["total_failures"] or 0,
                    "Success" if mine["succeeded"] else "Failed",
                    mine["error"],
                    "tickwise",
                )
            )
            continue
        out.append(
            JobState(
                r["job_id"],
                r["application_name"],
                bool(r["scheduled"]),
                r["total_runs"] or 0,
                r["total_failures"] or 0,
                r["last_run_status"] if r["scheduled"] else None,
                errors.get(r["job_id"]) if r["scheduled"] else None,
                "tickwise" if tickwise_runs and not r["scheduled"] else "timescaledb",
            )
        )
    return tuple(out)
