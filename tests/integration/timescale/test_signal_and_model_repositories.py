from __future__ import annotations

import dataclasses
from datetime import timedelta

import asyncpg
import pandas as pd
import pytest

from tickwise.adapters.timescale import TimescaleModelRepository, TimescaleSignalRepository
from tickwise.adapters.timescale.bulk import SMALL_BATCH_ROWS
from tickwise.domain.errors import DataValidationError, ModelError
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import ModelRecord

pytestmark = pytest.mark.db

T = pd.Timestamp("2024-03-01 09:15", tz="Asia/Kolkata").to_pydatetime()


def _signal(direction: int, confidence: float, mode: str = "historical", version: str = "m1") -> Signal:
    return Signal(
        257, Timeframe.M1, T, T + timedelta(minutes=1), version, direction, confidence, mode, "fs_v1", 12.5
    )


async def test_signals_upsert_on_the_contract_key(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleSignalRepository(clean_db)
    assert await repo.add_many([_signal(1, 0.6)]) == 1
    assert await repo.add_many([_signal(-1, 0.8)]) == 1
    await repo.add_many([_signal(1, 0.7, mode="live"), _signal(0, 0.5, version="m2")])
    got = await repo.read_frame(None, None, mode="historical", model_version="m1")
    assert len(got) == 1
    assert got[["direction", "confidence", "latency_ms"]].iloc[0].tolist() == [-1, 0.8, 12.5]
    assert got["available_at"].iloc[0] == pd.Timestamp(T + timedelta(minutes=1))
    assert await repo.count() == 3


async def test_signals_with_confidence_outside_unit_interval_are_rejected(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleSignalRepository(clean_db)
    with pytest.raises(DataValidationError, match="confidence"):
        await repo.add_many([_signal(1, 0.5, version="ok"), _signal(1, 1.5)])
    assert await repo.count() == 0


async def test_small_and_bulk_signal_batches_store_the_same_rows(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleSignalRepository(clean_db)
    n = SMALL_BATCH_ROWS + 1
    minutes = [T + timedelta(minutes=i) for i in range(n)]
    rows = [
        Signal(
            257,
            Timeframe.M1,
            t,
            t + timedelta(minutes=1),
            "m",
            i % 3 - 1,
            0.5,
            "live",
            "fs_v1",
            None if i % 2 else 1.25,
            None if i % 3 else 0.1,
        )
        for i, t in enumerate(minutes)
    ]
    assert await repo.add_many(rows[:-1]) == n - 1  # one INSERT ... unnest statement
    small = await repo.read_frame(None, None, model_version="m")
    assert await repo.add_many([dataclasses.replace(r, model_version="b") for r in rows]) == n  # staged COPY
    bulk = (await repo.read_frame(None, None, model_version="b")).iloc[:-1].reset_index(drop=True)
    cols = [
        "instrument_token",
        "timeframe",
        "time",
        "available_at",
        "direction",
        "confidence",
        "mode",
        "feature_set",
        "latency_ms",
        "size",
    ]
    pd.testing.assert_frame_equal(small[cols], bulk[cols])
    assert small["latency_ms"].isna().sum() == (n - 1) // 2  # None stored as NULL, read back as NaN
    assert small["time"].iloc[1] == pd.Timestamp(minutes[1])
    assert await repo.add_many(rows[:2]) == 2  # the small path upserts on the key too
    assert await repo.count() == 2 * n - 1


def _model(version: str, status: str = "challenger") -> ModelRecord:
    return ModelRecord(
        model_version=version,
        feature_set="fs_v1",
        feature_names=("rsi_14", "ema_20"),
        params={"num_leaves": 31},
        metrics={"auc": 0.55},
        status=status,  # type: ignore[arg-type]
        label_spec={"k_pt": 2.0},
        artifact_path=f"/models/{version}.txt",
    )


async def test_promoting_a_model_retires_the_previous_champion(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleModelRepository(clean_db)
    assert await repo.champion() is None
    await repo.insert(_model("m1", "champion"))
    await repo.insert(_model("m2"))
    champion = await repo.champion()
    assert champion is not None and champion.model_version == "m1"
    assert champion.params == {"num_leaves": 31} and champion.feature_names == ("rsi_14", "ema_20")
    await repo.set_status("m2", "champion")
    assert (await repo.champion()).model_version == "m2"  # type: ignore[union-attr]
    assert (await repo.get("m1")).status == "retired"  # type: ignore[union-attr]
    await repo.insert(_model("m3", "champion"))
    assert [m.model_version for m in await repo.list(status="champion")] == ["m3"]
    assert len(await repo.list()) == 3


async def test_setting_the_status_of_an_unknown_model_is_a_model_error(clean_db: asyncpg.Pool) -> None:
    repo = TimescaleModelRepository(clean_db)
    with pytest.raises(ModelError, match="no model version 'nope'"):
        await repo.set_status("nope", "champion")
