"""Migration 0006 on the real database: the append-only model_events trail, models.status 'fold', and
the signals.sample column."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleModelRepository, TimescaleSignalRepository
from tickwise.adapters.timescale.model_event_repository import TimescaleModelEventRepository
from tickwise.domain.errors import DataValidationError, ModelError
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.model_events import ModelEvent, StatusChange
from tickwise.ports.repositories import ModelRecord

pytestmark = pytest.mark.db

T = pd.Timestamp("2026-03-02 09:15", tz="Asia/Kolkata").to_pydatetime()


async def _models(pool: asyncpg.Pool, *versions: tuple[str, str]) -> TimescaleModelRepository:
    repo = TimescaleModelRepository(pool)
    for version, status in versions:
        await repo.insert(ModelRecord(version, "fs", ("a",), status=status))  # type: ignore[arg-type]
    return repo


async def test_events_are_appended_and_read_back_newest_first(clean_db: asyncpg.Pool) -> None:
    await _models(clean_db, ("m1", "champion"))
    events = TimescaleModelEventRepository(clean_db)
    await events.append(ModelEvent("m1", "trained", "first model", {"auc": 0.61}, actor="test"))
    await events.append(ModelEvent("m1", "promoted", "no champion yet"))
    got = await events.history("m1")
    assert [e.event for e in got] == ["promoted", "trained"]
    assert got[1].metrics == {"auc": 0.61} and got[1].actor == "test" and got[1].time is not None
    assert [e.event for e in await events.history(limit=1)] == ["promoted"]


async def test_model_events_refuse_update_and_delete(clean_db: asyncpg.Pool) -> None:
    await _models(clean_db, ("m1", "champion"))
    await TimescaleModelEventRepository(clean_db).append(ModelEvent("m1", "trained"))
    async with clean_db.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE model_events SET reason = 'rewritten'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("DELETE FROM model_events")
        assert await conn.fetchval("SELECT count(*) FROM model_events WHERE reason = ''") == 1


async def test_an_event_for_an_unknown_model_or_kind_is_refused(clean_db: asyncpg.Pool) -> None:
    events = TimescaleModelEventRepository(clean_db)
    with pytest.raises(ModelError, match="no model version"):
        await events.append(ModelEvent("nope", "trained"))
    await _models(clean_db, ("m1", "challenger"))
    with pytest.raises(ModelError, match="not one of"):
        await events.append(ModelEvent("m1", "deleted"))  # type: ignore[arg-type]


async def test_status_changes_and_their_events_commit_together_or_not_at_all(clean_db: asyncpg.Pool) -> None:
    models = await _models(clean_db, ("old", "champion"), ("new", "challenger"))
    events = TimescaleModelEventRepository(clean_db)
    with pytest.raises(ModelError, match="no model version 'ghost'"):
        await events.apply(
            [
                StatusChange(ModelEvent("old", "retired", "replaced"), "retired"),
                StatusChange(ModelEvent("ghost", "promoted"), "champion"),
            ]
        )
    assert (await models.champion()) is not None and (await models.champion()).model_version == "old"  # type: ignore[union-attr]
    assert await events.history() == []
    await events.apply(
        [
            StatusChange(ModelEvent("old", "retired", "replaced by new"), "retired"),
            StatusChange(ModelEvent("new", "promoted", "beat old", {"p_value": 0.01}), "champion"),
        ]
    )
    assert (await models.champion()).model_version == "new"  # type: ignore[union-attr]
    assert [(e.model_version, e.event) for e in await events.history()] == [
        ("new", "promoted"),
        ("old", "retired"),
    ]


async def test_fold_is_a_model_status(clean_db: asyncpg.Pool) -> None:
    models = await _models(clean_db, ("f1", "fold"))
    assert [m.model_version for m in await models.list(status="fold")] == ["f1"]


async def test_the_grafana_role_may_read_model_events(clean_db: asyncpg.Pool) -> None:
    async with clean_db.acquire() as conn:
        assert await conn.fetchval("SELECT has_table_privilege('tickwise_grafana', 'model_events', 'SELECT')")
        assert not await conn.fetchval(
            "SELECT has_table_privilege('tickwise_grafana', 'model_events', 'INSERT')"
        )


def _signal(mode: str, version: str = "m1") -> Signal:
    return Signal(257, Timeframe.M1, T, T + timedelta(minutes=1), version, 1, 0.6, mode, "fs", None)


async def test_signals_without_a_sample_are_in_sample_when_historical_and_oos_when_live(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleSignalRepository(clean_db)
    await repo.add_many([_signal("historical"), _signal("live")])
    got = await repo.read_frame(None, None)
    assert dict(zip(got["mode"], got["sample"], strict=True)) == {"historical": "in_sample", "live": "oos"}
    assert len(await repo.read_frame(None, None, sample="oos")) == 1


async def test_a_writer_can_vouch_for_out_of_sample_rows_and_bad_values_are_rejected(
    clean_db: asyncpg.Pool,
) -> None:
    repo = TimescaleSignalRepository(clean_db)
    await repo.add_many([_signal("historical")])
    frame = (await repo.read_frame(None, None)).drop(columns=["created_at"])
    frame["sample"] = "oos"
    await repo.add_frame(frame)
    assert (await repo.read_frame(None, None))["sample"].tolist() == ["oos"]
    frame["sample"] = "maybe"
    with pytest.raises(DataValidationError, match="sample"):
        await repo.add_frame(frame)


async def test_rows_inserted_without_a_sample_default_to_in_sample(clean_db: asyncpg.Pool) -> None:
    # What the migration did to every pre-existing row: ADD COLUMN ... DEFAULT 'in_sample'.
    async with clean_db.acquire() as conn:
        await conn.execute(
            "INSERT INTO signals (instrument_token, timeframe, time, available_at, model_version, direction, "
            "confidence, mode, feature_set) VALUES (1, '1m', $1, $1, 'm', 1, 0.5, 'historical', 'fs')",
            T,
        )
        assert await conn.fetchval("SELECT sample FROM signals") == "in_sample"
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE signals SET sample = 'unknown'")
