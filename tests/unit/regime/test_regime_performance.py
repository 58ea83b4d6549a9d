"""Performance by regime at entry: the grouping, and each trade's state from its model's regime layer."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from regime_data import regime_rows

from fakes import InMemoryFeatureRepository, InMemoryModelRepository, InMemoryModelStore, ModelSourceOf
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.regime import RegimeSpec, fit_regime_layer
from tickwise.core.regime.performance import performance_by_regime
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.backtest.regimes import regime_at_entry
from tickwise.ports.repositories import ModelRecord


def test_trades_are_grouped_by_state_with_unknown_last() -> None:
    trades = pd.DataFrame({"net": [10.0, -5.0, 3.0, -1.0, 7.0, 2.0]})
    states = np.array([1.0, 1.0, 0.0, np.nan, 2.0, 1.0])
    table = performance_by_regime(trades, states)
    assert table["regime_state"].tolist() == ["0", "1", "2", "unknown"]
    assert table["trades"].tolist() == [1, 3, 1, 1]
    one = table.set_index("regime_state").loc["1"]
    assert one["net"] == 7.0
    assert one["hit_rate"] == pytest.approx(2 / 3)
    assert one["net_per_trade"] == pytest.approx(7.0 / 3)
    assert table["trades"].sum() == len(trades)
    with pytest.raises(ValueError, match="3 regime states for 6 trades"):
        performance_by_regime(trades, states[:3])


def _artifact(version: str, regime: dict[str, object] | None) -> ModelArtifact:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 1))
    params = lgb_params({"learning_rate": 0.1, "num_leaves": 4}, 1)
    boosters = {
        s: fit_booster(
            x, (x[:, 0] > 0).astype(np.int8), params=params, num_boost_round=3, feature_names=["ret_1"]
        )
        for s in (1, -1)
    }
    return ModelArtifact(version, boosters, ("ret_1",), "fs-test", regime=regime)


async def _register(source: ModelSourceOf, artifact: ModelArtifact) -> None:
    path = await source.store.save(artifact.version, artifact.to_files())
    await source.models.insert(
        ModelRecord(
            model_version=artifact.version,
            feature_set="fs-test",
            feature_names=artifact.feature_names,
            params={},
            metrics={},
            status="fold",
            trained_from=datetime(2026, 1, 1, tzinfo=UTC),
            trained_to=datetime(2026, 1, 2, tzinfo=UTC),
            mlflow_run_id=None,
            label_spec={},
            feature_spec={},
            artifact_path=path,
        )
    )


async def test_each_trade_gets_the_state_its_models_layer_gives_its_signal_bar() -> None:
    bars = regime_rows(tokens=(11, 12), sessions=3, seed=4)
    layer = fit_regime_layer(bars, RegimeSpec(n_states=3, n_iter=15))
    features = InMemoryFeatureRepository()
    await features.add_frame(bars.assign(timeframe="1m"), "fs-test")
    source = ModelSourceOf(InMemoryModelRepository(), InMemoryModelStore())
    await _register(source, _artifact("f-regime", layer.to_dict()))
    await _register(source, _artifact("f-plain", None))
    picks = bars.iloc[[100, 500, 700, 1000, 1300, 1600, 2000]]  # across sessions and both instruments
    trades = pd.DataFrame(
        {
            "instrument_token": picks["instrument_token"].to_numpy(),
            "signal_time": picks["time"].to_numpy(),
            "model_version": ["f-regime"] * 6 + ["f-plain"],
            "net": np.arange(7, dtype=float),
        },
        index=np.arange(7) * 3,  # not a RangeIndex: positions, not labels, tie states to trades
    )
    states = await regime_at_entry(trades, source=source, features=features, timeframe=Timeframe.M1)
    expected = layer.frame(bars).loc[picks.index, "regime_state"].to_numpy()
    np.testing.assert_array_equal(states[:6], expected[:6])
    assert np.isnan(states[6])  # a model without a regime layer
    assert len(set(states[:6].tolist())) > 1
    missing = trades.assign(model_version="f-deleted")
    assert np.isnan(
        await regime_at_entry(missing, source=source, features=features, timeframe=Timeframe.M1)
    ).all()
