"""Every dashboard query runs: SQL panels against a migrated, seeded TimescaleDB as the Grafana role,
PromQL panels only against metric names the app declares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from grafana_macros import (
    Query,
    TimeRange,
    leftovers,
    load_dashboards,
    promql_metric_names,
    queries,
    render_sql,
)
from grafana_seed import BACKTEST_RUN, CHAMPION, FEATURE_SET, INFY, RANGE_END, RANGE_START, seed

from tickwise.observability.metrics import TickwiseMetrics, exposed_metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "config" / "grafana" / "dashboards"
TIME_RANGE = TimeRange(RANGE_START, RANGE_END, timedelta(minutes=5))
VARIABLES: dict[str, str | list[str]] = {
    "instrument": str(INFY),
    "timeframe": "1m",
    "mode": ["live", "historical"],  # multi-value "All"
    "model_version": CHAMPION,
    "feature": "rsi_14",
    "backtest_run": BACKTEST_RUN,
}
GRAFANA_ROLE = "tickwise_grafana"


def all_queries() -> list[Query]:
    found = [q for path, board in load_dashboards(DASHBOARDS).items() for q in queries(board, path.stem)]
    assert found, f"no dashboards under {DASHBOARDS}"
    return found


SQL = [q for q in all_queries() if q.kind == "sql"]
PROMQL = [q for q in all_queries() if q.kind == "promql"]


def ids(query: Query) -> str:
    return f"{query.dashboard}: {query.where}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(admin_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """One connection holding an open transaction with the seed; everything is rolled back at the end."""
    # The superuser: only it may SET ROLE to the Grafana role (the app role is not a member).
    async with admin_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await seed(conn)
            yield conn
        finally:
            await transaction.rollback()


def test_dashboards_have_sql_and_prometheus_panels() -> None:
    boards = {q.dashboard for q in SQL} | {q.dashboard for q in PROMQL}
    assert boards == {"signals", "market-data", "pipeline-health", "model", "backtest"}
    assert len(SQL) >= 15
    assert len(PROMQL) >= 15


@pytest.mark.db
@pytest.mark.parametrize("query", SQL, ids=ids)
async def test_panel_sql_runs_as_the_grafana_role_and_returns_rows(
    seeded: asyncpg.Connection, query: Query
) -> None:
    sql = render_sql(query.text, VARIABLES, TIME_RANGE, timescaledb=True)
    assert not leftovers(sql), f"unexpanded templating {leftovers(sql)} in:\n{sql}"
    license_ = await seeded.fetchval("SELECT current_setting('timescaledb.license')")
    if license_ == "apache":
        assert "time_bucket_gapfill" not in sql.lower() and "locf(" not in sql.lower()

    savepoint = seeded.transaction()
    await savepoint.start()
    try:
        await seeded.execute(f"SET LOCAL ROLE {GRAFANA_ROLE}")
        rows = await seeded.fetch(sql)
    finally:
        await savepoint.rollback()

    assert rows, f"no rows from the seeded database for:\n{sql}"
    columns = list(rows[0].keys())
    if query.format == "time_series":
        assert "time" in columns, f"time-series query has no 'time' column: {columns}"
        times = [r["time"] for r in rows]
        assert all(isinstance(t, datetime) for t in times)
        assert times == sorted(times), "time-series rows must be sorted by time ascending"
    if query.where == "variable instrument":
        assert columns == ["__value", "__text"]


@pytest.mark.db
async def test_feature_drift_compares_the_training_window_with_the_selected_range(
    seeded: asyncpg.Connection,
) -> None:
    (drift,) = [q for q in SQL if q.dashboard == "model" and "Feature drift" in q.where]
    rows = await seeded.fetch(render_sql(drift.text, VARIABLES, TIME_RANGE))
    by_feature = {r["feature"]: r for r in rows}
    assert set(by_feature) == {"rsi_14", "atr_14"}
    for row in by_feature.values():
        assert row["train_rows"] > 0 and row["live_rows"] > 0
        assert row["mean_shift_sd"] is not None
    # The seed's training ATR is 2.5/1.8 of the live ATR: the live spread is clearly smaller.
    assert by_feature["atr_14"]["std_ratio"] < 0.9
    assert FEATURE_SET  # the drift panel only reads the model's own feature set


@pytest.mark.parametrize("query", PROMQL, ids=ids)
def test_prometheus_panels_only_use_metrics_the_app_declares(query: Query) -> None:
    declared = exposed_metric_names(TickwiseMetrics().registry)
    names = promql_metric_names(query.text)
    assert any(n.startswith("tickwise_") for n in names), f"no tickwise metric in {query.text}"
    unknown = names - declared
    assert not unknown, f"{ids(query)} uses metrics the app does not declare: {unknown}"
