"""signal_members (migration 0012): round trip, a re-run overwrites, bad rows rejected, Grafana may read."""

from __future__ import annotations

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale.signal_member_repository import TimescaleSignalMemberRepository
from tickwise.domain.errors import DataValidationError

pytestmark = pytest.mark.db

T = pd.date_range("2026-10-05 03:45", periods=3, freq="5min", tz="UTC")


def _members(p: float = 0.6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_token": 408065,
            "timeframe": "5m",
            "time": [T[0], T[0], T[1], T[1]],
            "model_version": "e20261005-091500-abcdef",
            "mode": "historical",
            "member_timeframe": ["1m", "5m", "1m", "5m"],
            "member_version": ["f1", "f5", "f1", "f5"],
            "member_time": [T[0] + pd.Timedelta(minutes=4), T[0], T[1] + pd.Timedelta(minutes=4), T[1]],
            "p_long": [p, 0.5, 0.4, 0.3],
            "p_short": [0.2, 0.3, 0.5, 0.6],
        }
    )


async def test_members_round_trip_and_a_rerun_overwrites_instead_of_duplicating(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleSignalMemberRepository(clean_db)
    assert await repo.add_frame(_members()) == 4
    assert await repo.add_frame(_members(p=0.7)) == 4
    got = await repo.read_frame("e20261005-091500-abcdef", mode="historical")
    assert len(got) == 4 and got["member_timeframe"].tolist() == ["1m", "5m", "1m", "5m"]
    assert got["p_long"].iloc[0] == 0.7
    assert got["member_time"].iloc[0] == T[0] + pd.Timedelta(minutes=4)
    assert len(await repo.read_frame("e20261005-091500-abcdef", start=T[1].to_pydatetime())) == 2
    assert (await repo.read_frame("e-other")).empty


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("p_long", 1.5, "p_long"), ("member_timeframe", "7m", "timeframe"), ("mode", "paper", "mode")],
)
async def test_a_member_row_out_of_range_rejects_the_batch(
    clean_db: asyncpg.Pool, column: str, value: object, message: str
) -> None:
    bad = _members()
    bad[column] = bad[column].astype(object)
    bad.loc[1, column] = value
    with pytest.raises(DataValidationError, match=message):
        await TimescaleSignalMemberRepository(clean_db).add_frame(bad)
    assert await clean_db.fetchval("SELECT count(*) FROM signal_members") == 0


async def test_signal_members_is_a_hypertable_the_grafana_role_can_read(
    clean_db: asyncpg.Pool, admin_pool: asyncpg.Pool
) -> None:
    await TimescaleSignalMemberRepository(clean_db).add_frame(_members())
    assert (
        await admin_pool.fetchval(
            "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'signal_members'"
        )
        == 1
    )
    assert await admin_pool.fetchval(
        "SELECT has_table_privilege('tickwise_grafana', 'signal_members', 'SELECT')"
    )
    assert not await admin_pool.fetchval(
        "SELECT has_table_privilege('tickwise_grafana', 'signal_members', 'INSERT')"
    )


async def test_the_live_sinks_write_member_rows_and_5m_feature_rows(clean_db: asyncpg.Pool) -> None:
    import numpy as np

    from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
    from tickwise.core.timeframe_features import calculator_for
    from tickwise.domain.timeframe import Timeframe
    from tickwise.pipelines.live.engine import FeatureRow
    from tickwise.pipelines.live.sinks import feature_sink, signal_member_sink
    from tickwise.pipelines.live.spill import decode_batch, encode_batch
    from tickwise.pipelines.live.timeframes import MemberRow

    rows = [
        MemberRow(
            408065,
            Timeframe.M5,
            T[0].to_pydatetime(),
            "e-live",
            "live",
            tf,
            f"f-{tf}",
            (T[0] + pd.Timedelta(minutes=m)).to_pydatetime(),
            0.6,
            0.3,
        )
        for tf, m in (("1m", 4), ("5m", 0))
    ]
    assert decode_batch(encode_batch("signal_members", list(rows)), "signal_members") == rows  # spillable
    assert await signal_member_sink(TimescaleSignalMemberRepository(clean_db))(rows) == 2
    got = await TimescaleSignalMemberRepository(clean_db).read_frame("e-live", mode="live")
    assert got["member_version"].tolist() == ["f-1m", "f-5m"] and set(got["timeframe"]) == {"5m"}

    calc = calculator_for(Timeframe.M5)
    features = TimescaleFeatureRepository(clean_db)
    write = feature_sink(features, calc.names, calc.feature_set, Timeframe.M5)
    assert (
        await write([FeatureRow(408065, T[1].to_pydatetime(), np.arange(len(calc.names), dtype=float))]) == 1
    )
    stored = await features.read_frame(408065, Timeframe.M5, calc.feature_set, None, None, columns=["rsi_14"])
    assert len(stored) == 1 and stored["rsi_14"].iloc[0] == calc.names.index("rsi_14")
