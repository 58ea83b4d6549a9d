"""The historical pipeline on in-memory ports (tests/fakes.py): batch predict, model loading, and the
pure training rules of core.training."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_training_set

from fakes import InMemoryHistoricalContext, ModelSourceOf, RecordingTracker
from tickwise.core.fitting import FoldResult, TrainConfig
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.training import champion_decision, json_safe, trainable_features
from tickwise.domain.errors import ModelError
from tickwise.domain.instrument import Instrument
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.pipelines.historical.predict import predict_signals
from tickwise.pipelines.historical.tracking import TrainingRun, track
from tickwise.pipelines.models import load_model
from tickwise.ports.repositories import ModelRecord

INFY = Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1)
VERSION = "m20260105-000000-abcdef"


def _artifact() -> ModelArtifact:
    ts = synthetic_training_set(n_bars=800, n_instruments=2, seed=3)
    params = lgb_params({"num_leaves": 7, "min_data_in_leaf": 20, "learning_rate": 0.1}, seed=7)
    boosters = {
        side: fit_booster(ts.x, ts.y(side), params=params, num_boost_round=30, feature_names=ts.feature_names)
        for side in (1, -1)
    }
    return ModelArtifact(VERSION, boosters, tuple(ts.feature_names), "fs-test", label_spec={"k_pt": 2.0})


def _features(n: int, warmup: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "instrument_token": INFY.instrument_token,
            "timeframe": "1m",
            "time": pd.date_range("2026-01-05 03:45", periods=n, freq="1min", tz="UTC"),
            "signal": rng.normal(size=n),
            **{f"noise_{j}": rng.normal(size=n) for j in range(4)},
            "natr_14": np.full(n, 0.5),
        }
    )
    frame.loc[: warmup - 1, "signal"] = np.nan
    return frame


async def _context_with_champion() -> InMemoryHistoricalContext:
    ctx = InMemoryHistoricalContext(options=HistoricalOptions(symbols=("INFY",)))
    await ctx.instruments.upsert_many([INFY])
    artifact = _artifact()
    location = await ctx.store.save(VERSION, artifact.to_files())
    await ctx.models.insert(
        ModelRecord(VERSION, "fs-test", artifact.feature_names, status="champion", artifact_path=location)
    )
    return ctx


async def test_batch_predict_on_in_memory_ports_writes_one_signal_per_warm_bar_idempotently() -> None:
    ctx = await _context_with_champion()
    await ctx.features.add_frame(_features(60, warmup=5), "fs-test")
    outcome = await predict_signals(ctx)
    assert (outcome.model_version, outcome.rows, outcome.instruments) == (VERSION, 55, 1)
    signals = await ctx.signals.read_frame(mode="historical", model_version=VERSION)
    assert len(signals) == 55
    assert (
        pd.DatetimeIndex(signals["available_at"]) - pd.DatetimeIndex(signals["time"])
    ).unique().tolist() == [pd.Timedelta(minutes=1)]
    assert outcome.longs + outcome.shorts == int((signals["direction"] != 0).sum())
    again = await predict_signals(ctx)
    assert again.rows == 55 and len(await ctx.signals.read_frame()) == 55  # upserts, no duplicates


async def test_predict_without_stored_features_says_what_to_run() -> None:
    ctx = await _context_with_champion()
    with pytest.raises(ModelError, match="run `tickwise historical`"):
        await predict_signals(ctx)


async def test_loading_without_a_champion_or_an_unknown_version_is_a_model_error() -> None:
    ctx = InMemoryHistoricalContext()
    source = ModelSourceOf(ctx.models, ctx.store)
    with pytest.raises(ModelError, match="no champion model yet"):
        await load_model(source, None)
    with pytest.raises(ModelError, match="no model version 'm-nope'"):
        await load_model(source, "m-nope")


async def test_a_loaded_champion_is_the_saved_model() -> None:
    ctx = await _context_with_champion()
    loaded = await load_model(ModelSourceOf(ctx.models, ctx.store), None)
    assert loaded.version == VERSION and loaded.feature_set == "fs-test"
    assert loaded.to_files() == _artifact().to_files()


def test_a_new_model_is_champion_without_one_or_with_a_better_finite_holdout_auc() -> None:
    assert champion_decision({"holdout_auc": 0.5}, None) == "champion"
    assert champion_decision({"holdout_auc": 0.56}, {"holdout_auc": 0.55}) == "champion"
    assert champion_decision({"holdout_auc": 0.55}, {"holdout_auc": 0.55}) == "challenger"
    assert champion_decision({"holdout_auc": math.nan}, {"holdout_auc": 0.4}) == "challenger"
    assert champion_decision({}, {"holdout_auc": 0.4}) == "challenger"
    assert champion_decision({"holdout_auc": 0.51}, {"holdout_auc": None}) == "champion"


def test_training_reads_neither_price_levels_nor_live_only_features() -> None:
    assert trainable_features(["rsi_14", "ema_20", "obi_5", "natr_14"]) == ["rsi_14", "natr_14"]


def test_json_safe_metrics_have_no_nan_and_no_numpy_scalars() -> None:
    safe = json_safe({"a": np.float64("nan"), "b": np.int64(3), "c": {"d": float("inf")}, "e": "x"})
    assert safe == {"a": None, "b": 3, "c": {"d": None}, "e": "x"}
    assert type(safe["b"]) is int


async def test_a_training_run_is_tracked_with_fold_metrics_documents_and_the_bundle() -> None:
    fold = FoldResult(0, {"auc": 0.6}, np.zeros(1), {1: 10})
    run = TrainingRun(
        version="m1",
        params={"num_leaves": 7},
        config=TrainConfig(trials=3),
        rows=100,
        features=["rsi_14"],
        feature_set="fs",
        trained_from=datetime(2026, 1, 5, tzinfo=UTC),
        trained_to=datetime(2026, 1, 9, tzinfo=UTC),
        metrics={"holdout_auc": 0.61, "oos_auc": None},
        folds=[fold],
        label_spec={"k_pt": 2.0},
        info={"pruned_trials": 1},
    )
    tracker = RecordingTracker()
    assert await track(tracker, run, {"model.json": b"{}"}) == "run-1"
    (recorded,) = tracker.runs
    assert recorded.metrics == {
        "holdout_auc": 0.61,
        "fold0_auc": 0.6,
    }  # a non-finite (None) metric is left out
    assert (
        recorded.params["num_leaves"] == 7
        and recorded.params["trials"] == 3
        and recorded.params["rows"] == 100
    )
    assert recorded.documents["feature_list.json"] == {"feature_set": "fs", "names": ["rsi_14"]}
    assert recorded.documents["folds.json"] == [{"auc": 0.6}]
    assert recorded.files == {"model.json": b"{}"}
    assert recorded.tags == {"model_version": "m1", "feature_set": "fs", "mode": "historical"}
