"""`tickwise db status | retention --policy | maintain` on the Apache build (the Debian package)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tickwise.cli.context import state
from tickwise.cli.main import app

pytestmark = pytest.mark.db


def tickwise(*args: str, url: str) -> tuple[int, str]:
    state._settings = None
    result = CliRunner().invoke(app, list(args), env={"DATABASE_URL": url, "TICKWISE_ENV": "test"})
    state._settings = None
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout


def test_db_status_says_which_timescaledb_features_are_off_and_why(db_url: str) -> None:
    code, out = tickwise("db", "status", url=db_url)
    assert code == 0
    if "(license timescale)" in out:
        pytest.skip("the test database runs the TSL build; tests/tsl covers it")
    for feature in ("compression", "retention policies", "continuous aggregates", "background jobs"):
        assert f"{feature}: off - needs the TSL build with timescaledb.license = 'timescale'" in out


def test_db_retention_policy_trims_per_table_and_timeframe_and_maintain_runs_without_jobs(
    db_url: str,
) -> None:
    code, out = tickwise("db", "retention", "--policy", url=db_url)
    assert code == 0
    assert "ticks: 0 chunk(s) dropped" in out
    assert "candles/1m: 0 row(s) deleted" in out
    assert "candles/60m" not in out  # kept as long as whole chunks are: nothing to delete row by row
    code, out = tickwise("db", "maintain", url=db_url)
    assert code == 0
    assert "signals/5m: 0 row(s) deleted" in out
