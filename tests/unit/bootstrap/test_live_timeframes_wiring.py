"""Live wiring of the longer timeframes and the ensemble: the newest fold model of each timeframe
scores it, the newest ensemble fold combines the newest member folds, and what is missing is skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fakes import InMemoryModelRepository, InMemoryModelStore, ModelSourceOf
from tickwise.bootstrap.timeframes import live_timeframes, newest_folds
from tickwise.config import Settings, load_settings
from tickwise.core.ensemble import StackedLogistic
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.timeframe import Timeframe
from tickwise.ports.repositories import ModelRecord

FEATURES = ("rsi_14", "ret_1", "bop")


def _settings(tmp: Path, **env: str) -> Settings:
    defaults = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__TRADING__SIGNAL_TIMEFRAMES": '["1m", "5m", "15m"]',
    }
    return load_settings(environ={**defaults, **env}, environment="test")


async def _fold(source: ModelSourceOf, version: str, tf: Timeframe, score_from: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(FEATURES)))
    params = lgb_params({"num_leaves": 4, "min_data_in_leaf": 10}, seed=1)
    boosters = {
        s: fit_booster(
            x,
            (x[:, 0] * s > 0).astype(np.int8),
            params=params,
            num_boost_round=5,
            feature_names=list(FEATURES),
        )
        for s in (1, -1)
    }
    calc = calculator_for(tf)
    artifact = ModelArtifact(version, boosters, FEATURES, calc.feature_set, timeframe=str(tf))
    path = await source.store.save(version, artifact.to_files())
    await source.models.insert(
        ModelRecord(
            version,
            calc.feature_set,
            FEATURES,
            params={"timeframe": str(tf), "score_from": score_from},
            status="fold",
            trained_to=datetime(2026, 1, 5, tzinfo=UTC),
            artifact_path=path,
        )
    )


async def _ensemble(source: ModelSourceOf, version: str, members: tuple[str, ...], score_from: str) -> None:
    n = 2 * len(members)
    layer = StackedLogistic(members, (0.1,) * n, 0.0, (0.2,) * n, 0.0)
    await source.models.insert(
        ModelRecord(
            version,
            "ensemble",
            layer.inputs,
            params={
                "kind": "ensemble",
                "timeframe": "5m",
                "stacked": layer.to_dict(),
                "score_from": score_from,
            },
            status="fold",
            label_spec={"k_pt": 2.0, "k_sl": 1.5},
        )
    )


async def test_each_longer_timeframe_is_scored_by_its_newest_fold_and_the_ensemble_by_the_newest_members(
    tmp_path: Path,
) -> None:
    source = ModelSourceOf(InMemoryModelRepository(), InMemoryModelStore())
    await _fold(source, "f1-old", Timeframe.M1, "2026-01-05T04:00:00+00:00")
    await _fold(source, "f1-new", Timeframe.M1, "2026-01-12T04:00:00+00:00")
    await _fold(source, "f5-new", Timeframe.M5, "2026-01-12T04:00:00+00:00")
    await _fold(source, "f5-old", Timeframe.M5, "2026-01-06T04:00:00+00:00")  # inserted later, older window
    await _fold(source, "f15", Timeframe.M15, "2026-01-13T04:00:00+00:00")
    await _ensemble(source, "e-new", ("1m", "5m", "15m"), "2026-01-14T04:00:00+00:00")
    await _ensemble(source, "e-old", ("1m", "5m", "15m"), "2026-01-07T04:00:00+00:00")
    folds = newest_folds(await source.models.list())
    assert {k: r.model_version for k, r in folds.items()} == {
        "1m": "f1-new",
        "5m": "f5-new",
        "15m": "f15",
        "ensemble:5m": "e-new",
    }
    wired = await live_timeframes(_settings(tmp_path), source)
    assert [(str(s.timeframe), s.step.predictor.version) for s in wired.scorers] == [  # type: ignore[union-attr]
        ("5m", "f5-new"),
        ("15m", "f15"),
    ]
    assert wired.ensemble is not None and wired.ensemble.version == "e-new"
    assert {m: model.predictor.version for m, model in wired.ensemble.members.items()} == {
        "1m": "f1-new",
        "5m": "f5-new",
        "15m": "f15",
    }
    assert wired.versions == ["f5-new", "f15", "e-new"]


async def test_without_fold_models_or_with_one_timeframe_live_scores_only_the_champion(
    tmp_path: Path,
) -> None:
    source = ModelSourceOf(InMemoryModelRepository(), InMemoryModelStore())
    empty = await live_timeframes(_settings(tmp_path), source)
    assert empty.scorers == [] and empty.ensemble is None
    await _fold(source, "f5", Timeframe.M5, "2026-01-12T04:00:00+00:00")
    await _ensemble(source, "e1", ("1m", "5m"), "2026-01-14T04:00:00+00:00")  # its 1m member is missing
    partial = await live_timeframes(_settings(tmp_path), source)
    assert [str(s.timeframe) for s in partial.scorers] == ["5m"] and partial.ensemble is None
    single = await live_timeframes(_settings(tmp_path, TICKWISE__TRADING__SIGNAL_TIMEFRAMES='["1m"]'), source)
    assert single.scorers == [] and single.ensemble is None


async def test_a_reload_gives_the_5m_15m_and_ensemble_steps_the_new_threshold(tmp_path: Path) -> None:
    source = ModelSourceOf(InMemoryModelRepository(), InMemoryModelStore())
    for version, tf in (("f1", Timeframe.M1), ("f5", Timeframe.M5), ("f15", Timeframe.M15)):
        await _fold(source, version, tf, "2026-01-12T04:00:00+00:00")
    await _ensemble(source, "e1", ("1m", "5m", "15m"), "2026-01-14T04:00:00+00:00")
    wired = await live_timeframes(_settings(tmp_path), source)
    assert wired.ensemble is not None and wired.ensemble.generator.threshold == 0.55
    generators = wired.generators(_settings(tmp_path, TICKWISE__MODEL_TRAINING__SIGNAL_THRESHOLD="0.7"))
    wired.set_generators(generators)
    assert [s.step.model.generator.threshold for s in wired.scorers] == [0.7, 0.7]  # type: ignore[union-attr]
    assert wired.ensemble.generator.threshold == 0.7 and wired.ensemble.generator.payoff == 2.0 / 1.5
