"""TimescaleDB's lifecycle on a TSL build: compression, upserts into compressed chunks, continuous
aggregates equal to the Python roll-ups, retention and the jobs tickwise runs itself (issue #15)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import numpy as np
import pandas as pd
import pytest
from tsl_cluster import TslCluster
from typer.testing import CliRunner

from tickwise.adapters.timescale import lifecycle
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.bootstrap.status import collect_status
from tickwise.cli.context import state
from tickwise.cli.main import app
from tickwise.config import Settings
from tickwise.core.aggregation import aggregate_candles
from tickwise.core.trading.metrics import daily_pnl
from tickwise.domain.timeframe import Timeframe

pytestmark = [pytest.mark.tsl, pytest.mark.db]

T0 = pd.Timestamp("2024-03-04 09:15", tz="Asia/Kolkata")  # a Monday, far older than compress_after


@pytest.fixture
async def tsl_db(tsl_pool: asyncpg.Pool, tsl_admin: asyncpg.Pool) -> asyncpg.Pool:
    """The TSL database emptied (compressed chunks included) before the test."""
    async with tsl_admin.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
        for cagg in lifecycle.CONTINUOUS_AGGREGATES:
            await conn.execute(f"CALL refresh_continuous_aggregate('{cagg.name}', NULL, NULL)")
    return tsl_pool


def minute_candles(days: int = 3, tokens: tuple[int, ...] = (257, 513), *, seed: int = 7) -> pd.DataFrame:
    """Full sessions of 1m candles plus a few bars outside the session (which no roll-up counts)."""
    rng = np.random.default_rng(seed)
    frames = []
    for token in tokens:
        for day in range(days):
            start = T0 + pd.Timedelta(days=day)
            minutes = [*range(375), -5, 380]  # 09:15-15:29, then 09:10 and 15:35
            times = start + pd.to_timedelta(minutes, unit="min")
            close = 100 + rng.standard_normal(len(times)).cumsum() * 0.1
            frames.append(
                pd.DataFrame(
                    {
                        "instrument_token": token,
                        "timeframe": "1m",
                        "time": times,
                        "open": close - 0.05,
                        "high": close + 0.2,
                        "low": close - 0.2,
                        "close": close,
                        "volume": rng.integers(1, 1_000, len(times)),
                        "oi": pd.array(rng.integers(0, 50, len(times)), dtype="Int64"),
                        "source": "historical",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


async def run_policy(admin: asyncpg.Pool, proc: str, table: str) -> None:
    async with admin.acquire() as conn:
        job_id = await conn.fetchval(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2",
            proc,
            table,
        )
        assert job_id is not None, f"no {proc} job on {table}"
        await conn.execute(f"CALL run_job({int(job_id)})")


async def refresh_cagg(admin: asyncpg.Pool, view: str) -> None:
    """Run the refresh policy of continuous aggregate ``view`` as `tickwise db maintain` does."""
    job_id = await admin.fetchval(
        "SELECT j.job_id FROM timescaledb_information.jobs j JOIN timescaledb_information.continuous_aggregates c "
        "ON c.materialization_hypertable_name = j.hypertable_name WHERE c.view_name = $1",
        view,
    )
    assert job_id is not None, f"no refresh policy on {view}"
    await admin.execute(f"CALL run_job({int(job_id)})")


async def compressed_chunks(pool: asyncpg.Pool, table: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = $1 AND is_compressed",
            table,
        )
    )


async def test_a_database_migrated_under_apache_gets_the_lifecycle_once_it_moves_to_tsl(
    tsl_cluster: TslCluster, tsl_admin: asyncpg.Pool
) -> None:
    assert tsl_cluster.compressed_tables_under_apache == 0
    assert tsl_cluster.caggs_under_apache == 0
    rows = await tsl_admin.fetch(
        "SELECT hypertable::text AS t, segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
    )
    layout = {r["t"]: (r["segmentby"], r["orderby"]) for r in rows}
    assert layout["candles"] == ("instrument_token,timeframe", '"time" DESC')
    assert layout["ticks"] == ("instrument_token", '"time" DESC,received_at DESC')
    jobs = await tsl_admin.fetch(
        "SELECT proc_name, hypertable_name, scheduled FROM timescaledb_information.jobs "
        "WHERE hypertable_name = ANY($1::text[])",
        list(lifecycle.LIFECYCLE_TABLES),
    )
    assert {(r["proc_name"], r["hypertable_name"]) for r in jobs} == {
        (proc, table)
        for table in lifecycle.LIFECYCLE_TABLES
        for proc in ("policy_compression", "policy_retention")
    }
    assert not any(r["scheduled"] for r in jobs)  # tickwise runs them (run_jobs = "tickwise")
    caggs = await tsl_admin.fetch(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
    )
    assert {r["view_name"]: r["materialized_only"] for r in caggs} == {
        "candles_daily": False,
        "signals_daily": False,
        "backtest_daily": False,
    }


async def test_checking_the_lifecycle_again_changes_nothing(tsl_admin: asyncpg.Pool) -> None:
    async with tsl_admin.acquire() as conn:
        report = await lifecycle.ensure_lifecycle(conn)
    assert report.license == "timescale"
    assert report.actions == []
    assert report.warnings == []


async def test_upserts_into_compressed_candle_chunks_keep_or_overwrite_rows(
    tsl_db: asyncpg.Pool, tsl_admin: asyncpg.Pool
) -> None:
    repo = TimescaleCandleRepository(tsl_db)
    frame = minute_candles(days=2)
    assert await repo.add_frame(frame) == len(frame)
    await run_policy(tsl_admin, "policy_compression", "candles")
    assert await compressed_chunks(tsl_db, "candles") >= 1

    assert await repo.add_frame(frame, on_conflict="nothing") == 0
    revised = frame.iloc[:10].copy()
    revised["close"] = revised["close"] + 1.0
    revised["high"] = revised["high"] + 1.0
    assert await repo.add_frame(revised, on_conflict="update") == 10
    assert await repo.count() == len(frame)
    stored = await repo.read_frame(
        257, Timeframe.M1, frame["time"].min(), frame["time"].max() + pd.Timedelta(days=1)
    )
    assert len(stored) == len(frame) // 2
    merged = revised.merge(stored, on="time", suffixes=("_sent", "_stored"))
    assert len(merged) == 10
    np.testing.assert_allclose(merged["close_stored"].to_numpy(), merged["close_sent"].to_numpy())


async def test_upserts_into_compressed_signal_and_label_chunks_work(
    tsl_db: asyncpg.Pool, tsl_admin: asyncpg.Pool
) -> None:
    times = T0 + pd.to_timedelta(np.arange(20) * 5, unit="min")
    signals = pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "5m",
            "time": times,
            "available_at": times + pd.Timedelta(minutes=5),
            "model_version": "v1",
            "direction": np.tile([1, -1, 0, 1], 5),
            "confidence": np.linspace(0.5, 0.9, 20),
            "mode": "historical",
            "feature_set": "fs1",
        }
    )
    labels = pd.DataFrame(
        {
            "instrument_token": 257,
            "timeframe": "5m",
            "time": times,
            "side": 1,
            "label": 1,
            "t1": times + pd.Timedelta(minutes=10),
            "t1_max": times + pd.Timedelta(minutes=50),
            "ret": 0.01,
            "exit_price": 101.0,
            "barrier": "pt",
        }
    )
    signal_repo, label_repo = TimescaleSignalRepository(tsl_db), TimescaleLabelRepository(tsl_db)
    await signal_repo.add_frame(signals)
    await label_repo.add_frame(labels)
    await run_policy(tsl_admin, "policy_compression", "signals")
    await run_policy(tsl_admin, "policy_compression", "labels")
    assert await compressed_chunks(tsl_db, "signals") >= 1
    assert await compressed_chunks(tsl_db, "labels") >= 1

    signals["confidence"] = 0.99
    labels["label"] = -1
    labels["barrier"] = "sl"
    await signal_repo.add_frame(signals, on_conflict="update")
    await label_repo.add_frame(labels, on_conflict="update")
    assert await tsl_db.fetchval("SELECT count(*) FROM signals") == 20
    assert await tsl_db.fetchval("SELECT min(confidence) FROM signals") == pytest.approx(0.99)
    assert await tsl_db.fetchval("SELECT count(*) FROM labels WHERE label = -1 AND barrier = 'sl'") == 20


async def test_db_status_reports_the_space_compression_saved(
    tsl_db: asyncpg.Pool, tsl_admin: asyncpg.Pool
) -> None:
    await TimescaleCandleRepository(tsl_db).add_frame(minute_candles(days=3))
    await run_policy(tsl_admin, "policy_compression", "candles")
    async with tsl_admin.acquire() as conn:
        status = await lifecycle.lifecycle_status(conn)
    assert all(f.active for f in status.features), status.features
    candles = next(c for c in status.compression if c.table == "candles")
    assert candles.compressed_chunks >= 1
    assert candles.bytes_before is not None and candles.bytes_after is not None
    assert candles.saved_bytes is not None and candles.saved_bytes > 0


async def test_daily_candles_aggregate_equals_the_python_rollup_before_and_after_refresh(
    tsl_db: asyncpg.Pool, tsl_admin: asyncpg.Pool
) -> None:
    frame = minute_candles(days=3)
    await TimescaleCandleRepository(tsl_db).add_frame(frame)

    async def from_cagg() -> pd.DataFrame:
        rows = await tsl_db.fetch(
            "SELECT instrument_token, time, open, high, low, close, volume, oi FROM candles_daily "
            "ORDER BY instrument_token, time"
        )
        out = pd.DataFrame([dict(r) for r in rows])
        out["time"] = pd.to_datetime(out["time"], utc=True)
        return out

    expected = aggregate_candles(frame, Timeframe.D1).sort_values(["instrument_token", "time"])
    expected["time"] = pd.to_datetime(expected["time"]).dt.tz_convert("UTC")
    columns = ["instrument_token", "time", "open", "high", "low", "close", "volume", "oi"]

    def same(actual: pd.DataFrame) -> None:
        pd.testing.assert_frame_equal(
            actual[columns].reset_index(drop=True),
            expected[columns].reset_index(drop=True),
            check_dtype=False,
            check_exact=False,
            rtol=1e-12,
        )

    same(await from_cagg())  # real-time: nothing materialised yet
    await refresh_cagg(tsl_admin, "candles_daily")
    same(await from_cagg())
    assert await tsl_db.fetchval("SELECT count(*) FROM candles_daily") == 2 * 3


async def test_signal_and_backtest_daily_aggregates_equal_the_python_rollups(tsl_db: asyncpg.Pool) -> None:
    rng = np.random.default_rng(3)
    times = (
        T0
        + pd.to_timedelta(np.arange(150) * 5, unit="min")
        + pd.to_timedelta(np.repeat([0, 1, 2], 50), unit="D")
    )
    signals = pd.DataFrame(
        {
            "instrument_token": rng.choice([257, 513], 150),
            "timeframe": "5m",
            "time": times,
            "available_at": times + pd.Timedelta(minutes=5),
            "model_version": "v1",
            "direction": rng.choice([-1, 0, 1], 150),
            "confidence": rng.uniform(0.3, 0.9, 150),
            "mode": "historical",
            "feature_set": "fs1",
        }
    ).drop_duplicates(["instrument_token", "time"])
    await TimescaleSignalRepository(tsl_db).add_frame(signals)
    rows = await tsl_db.fetch(
        "SELECT day, instrument_token, signals, longs, shorts, mean_confidence FROM signals_daily "
        "ORDER BY day, instrument_token"
    )
    day = pd.to_datetime(signals["time"]).dt.tz_convert("Asia/Kolkata").dt.date
    grouped = signals.assign(day=day).groupby(["day", "instrument_token"])
    expected = pd.DataFrame(
        {
            "signals": grouped.size(),
            "longs": grouped["direction"].apply(lambda d: int((d == 1).sum())),
            "shorts": grouped["direction"].apply(lambda d: int((d == -1).sum())),
            "mean_confidence": grouped["confidence"].mean(),
        }
    ).reset_index()
    actual = pd.DataFrame([dict(r) for r in rows])
    actual["day"] = pd.to_datetime(actual["day"], utc=True).dt.tz_convert("Asia/Kolkata").dt.date
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_exact=False, rtol=1e-12)

    entries = T0 + pd.to_timedelta([10, 60, 200, 1440 + 30, 1440 + 100, 2 * 1440 + 5], unit="min")
    nets = [120.5, -40.25, 10.0, -5.75, 300.0, -12.0]
    trades = pd.DataFrame(
        {"entry_time": entries, "exit_time": entries + pd.Timedelta(minutes=30), "net": nets}
    )
    async with tsl_db.acquire() as conn:
        await conn.executemany(
            "INSERT INTO backtest_trades (run_id, instrument_token, side, quantity, entry_time, entry_price, "
            "exit_time, exit_price, exit_reason, gross, brokerage, stt, exchange, sebi, stamp, gst, slippage, "
            "net, signal_time, model_version, confidence) VALUES ('r1', 257, 1, 1, $1, 100, $2, 101, 'pt', "
            "$3, 0, 0, 0, 0, 0, 0, 0, $3, $1, 'v1', 0.7)",
            [
                (e.to_pydatetime(), x.to_pydatetime(), n)
                for e, x, n in zip(entries, trades["exit_time"], nets, strict=True)
            ],
        )
    days = sorted(set(pd.to_datetime(trades["exit_time"]).dt.tz_convert("Asia/Kolkata").dt.date))
    expected_pnl = daily_pnl(trades, days)
    rows = await tsl_db.fetch(
        "SELECT day, trades, wins, net FROM backtest_daily WHERE run_id = 'r1' ORDER BY day"
    )
    assert [r["day"].astimezone(T0.tz).date() for r in rows] == list(expected_pnl.index)
    assert [float(r["net"]) for r in rows] == pytest.approx(expected_pnl.to_list())
    assert [r["trades"] for r in rows] == [3, 2, 1]
    assert [r["wins"] for r in rows] == [2, 1, 0]


async def test_tickwise_runs_its_jobs_when_due_and_records_them(tsl_admin: asyncpg.Pool) -> None:
    async with tsl_admin.acquire() as conn:
        forced = await lifecycle.run_due_jobs(conn, force=True)
        again = await lifecycle.run_due_jobs(conn)
        status = await lifecycle.lifecycle_status(conn)
    assert forced and all(run.succeeded for run in forced), [r for r in forced if not r.succeeded]
    assert {r.name.split(" [")[0] for r in forced} >= {
        "Compression Policy",
        "Retention Policy",
        "Refresh Continuous Aggregate Policy",
        "Job History Log Retention Policy",
    }
    assert again == []  # nothing is due again before its schedule interval has passed
    ours = [j for j in status.jobs if j.runner == "tickwise"]
    assert {j.job_id for j in ours} == {r.job_id for r in forced}
    assert all(j.last_status == "Success" for j in ours)


async def test_a_job_failing_under_timescaledbs_scheduler_is_reported_with_its_error(
    tsl_cluster: TslCluster, tsl_admin: asyncpg.Pool
) -> None:
    async with tsl_admin.acquire() as conn:
        job_id = await conn.fetchval(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1", lifecycle.JOB_HISTORY_PROC
        )
        runs_sql = (
            "SELECT coalesce(max(total_runs), 0) FROM timescaledb_information.job_stats WHERE job_id = $1"
        )
        runs_before = await conn.fetchval(runs_sql, job_id)
        await conn.execute("SELECT job_id FROM alter_job($1, scheduled => true, next_start => now())", job_id)
        try:
            for _ in range(150):
                if await conn.fetchval(runs_sql, job_id) > runs_before:
                    break
                await asyncio.sleep(0.2)
            status = await lifecycle.lifecycle_status(conn)
            version = int(await conn.fetchval("SHOW server_version_num"))
            report = await collect_status(Settings.model_validate({"database": {"url": tsl_cluster.url}}))
        finally:
            await conn.execute("SELECT job_id FROM alter_job($1, scheduled => false)", job_id)
    job = next(j for j in status.jobs if j.job_id == job_id)
    assert job.runner == "timescaledb"
    if 150019 <= version < 160000:  # the PostgreSQL 15 minors whose PortalDrop TimescaleDB trips over
        assert job.last_status == "Failed"
        assert "cannot drop portal" in (job.last_error or "")
    if job.last_status == "Failed":
        # PostgreSQL 15.19+: TimescaleDB drops a portal that was never set up (docs/timescaledb.md).
        assert job in status.failing_jobs
        assert job.last_error
        # `tickwise status` turns it into an action, with the error and where to read about it.
        assert any(
            a.startswith(f"TimescaleDB job {job_id} ") and "cannot drop portal" in a for a in report.actions
        )
        assert report.lifecycle["failing_jobs"][0]["job_id"] == job_id
    else:
        assert job not in status.failing_jobs


async def test_retention_keeps_each_timeframe_for_its_own_age(tsl_db: asyncpg.Pool) -> None:
    old = minute_candles(days=1, tokens=(257,))
    old["time"] = old["time"] - pd.Timedelta(days=800)
    hourly = aggregate_candles(old, Timeframe.M60)
    repo = TimescaleCandleRepository(tsl_db)
    await repo.add_frame(old)
    await repo.add_frame(hourly)
    policy = lifecycle.DEFAULT_POLICY
    async with tsl_db.acquire() as conn:
        trimmed = await lifecycle.apply_retention(conn, policy)
    assert trimmed["candles/1m"] == len(old)
    assert await repo.count(257, Timeframe.M1) == 0
    assert await repo.count(257, Timeframe.M60) == len(hourly)
    assert policy.bar_retention == timedelta(days=3650)


def test_db_status_shows_the_features_on_and_the_space_saved_per_table(tsl_cluster: TslCluster) -> None:
    state._settings = None
    result = CliRunner().invoke(
        app, ["db", "status"], env={"DATABASE_URL": tsl_cluster.admin_url, "TICKWISE_ENV": "test"}
    )
    state._settings = None
    assert result.exit_code == 0, result.stdout
    assert "(license timescale)" in result.stdout
    for feature in ("compression", "retention policies", "continuous aggregates", "background jobs"):
        assert f"{feature}: on" in result.stdout
    assert "compression candles: " in result.stdout
    assert "Compression Policy" in result.stdout
