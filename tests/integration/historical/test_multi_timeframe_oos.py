"""Several signal timeframes and the ensemble on the simulator: features, labels and walk-forward fold
models per timeframe, out-of-sample signals with timeframe 5m, the ensemble's signals with their
members in ``signal_members``, and no member bar that was not closed at the ensemble bar's close."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pandas as pd
import pytest
from historical_support import derived_history, oos_settings

from tickwise.config import Settings

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _settings(tmp: Path) -> Settings:
    return oos_settings(
        tmp,
        TRADING__SIGNAL_TIMEFRAMES='["1m", "5m"]',
        WALK_FORWARD__MIN_TRAIN_SESSIONS="5",
        WALK_FORWARD__MIN_TRAIN_EVENTS="300",
        ENSEMBLE__MIN_TRAIN_SESSIONS="2",
        ENSEMBLE__REFIT_EVERY_SESSIONS="1",
        ENSEMBLE__MIN_TRAIN_EVENTS="100",
    )


async def test_every_signal_timeframe_gets_fold_models_and_the_ensemble_records_its_members(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.models import oos_options_of
    from tickwise.pipelines.historical.oos import write_oos_history

    settings = _settings(tmp_path)
    async with derived_history(settings, db_url) as ctx:
        outcome = await write_oos_history(ctx, oos_options_of(settings))
        again = await write_oos_history(ctx, oos_options_of(settings))

    async with clean_db.acquire() as conn:
        feature_sets = {
            r["timeframe"]: r["feature_set"]
            for r in await conn.fetch("SELECT DISTINCT timeframe, feature_set FROM features")
        }
        label_tfs = {r["timeframe"] for r in await conn.fetch("SELECT DISTINCT timeframe FROM labels")}
        signals = pd.DataFrame(
            [
                dict(r)
                for r in await conn.fetch(
                    "SELECT instrument_token, timeframe, time, available_at, model_version, sample "
                    "FROM signals WHERE mode = 'historical'"
                )
            ]
        )
        members = pd.DataFrame([dict(r) for r in await conn.fetch("SELECT * FROM signal_members")])
        folds = {
            r["model_version"]: (r["params"], r["trained_to"])
            for r in await conn.fetch(
                "SELECT model_version, params, trained_to FROM models WHERE status = 'fold'"
            )
        }

    # features and labels per timeframe; the 5m calculator has its own feature set (no context bars)
    assert set(feature_sets) == {"1m", "5m"} and feature_sets["1m"] != feature_sets["5m"]
    assert label_tfs == {"1m", "5m"}
    # fold models per timeframe, each writing only its own timeframe's rows, all out of sample
    five = outcome.timeframes["5m"]
    assert outcome.folds and five.folds and outcome.ensemble is not None and outcome.ensemble.folds
    assert (signals["sample"] == "oos").all()
    by_version = signals.groupby("model_version")["timeframe"].unique()
    for fold in five.folds:
        assert list(by_version[fold.model_version]) == ["5m"]
    for fold in outcome.folds:
        assert list(by_version[fold.model_version]) == ["1m"]
    # the ensemble: 5m rows named by its version, each with one member row per timeframe
    ens_versions = {f.model_version for f in outcome.ensemble.folds}
    ens = signals[signals["model_version"].isin(ens_versions)]
    assert len(ens) == outcome.ensemble.rows > 0 and set(ens["timeframe"]) == {"5m"}
    assert len(members) == 2 * len(ens)
    assert set(members["member_timeframe"]) == {"1m", "5m"}
    member_versions = {f.model_version for f in [*outcome.folds, *five.folds]}
    assert set(members["member_version"]) <= member_versions
    # no look-ahead: every member bar had closed by the ensemble bar's close, on the same session
    step = members["member_timeframe"].map({"1m": pd.Timedelta(minutes=1), "5m": pd.Timedelta(minutes=5)})
    member_close = pd.to_datetime(members["member_time"], utc=True) + step
    ens_close = pd.to_datetime(members["time"], utc=True) + pd.Timedelta(minutes=5)
    assert (member_close <= ens_close).all()
    assert (
        member_close.dt.tz_convert("Asia/Kolkata").dt.date == ens_close.dt.tz_convert("Asia/Kolkata").dt.date
    ).all()
    # the 1m member is its bar at close - 1m whenever that minute traded (the latest available)
    ones = members[members["member_timeframe"] == "1m"]
    assert (
        pd.to_datetime(ones["member_time"], utc=True)
        == pd.to_datetime(ones["time"], utc=True) + pd.Timedelta(minutes=4)
    ).mean() > 0.95
    # each ensemble fold scores only bars after its training labels plus the embargo
    embargo = pd.Timedelta(minutes=5) * settings.model_training.embargo_bars
    for version in ens_versions:
        params, trained_to = folds[version]
        assert params["kind"] == "ensemble"
        first = pd.to_datetime(ens.loc[ens["model_version"] == version, "time"], utc=True).min()
        assert first > pd.Timestamp(trained_to) + embargo
    # a re-run reuses every fold and ensemble fold
    assert again.ensemble is not None and again.ensemble.metrics == outcome.ensemble.metrics
    assert all(f.reused for f in [*again.folds, *again.timeframes["5m"].folds, *again.ensemble.folds])
