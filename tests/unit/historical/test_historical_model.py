"""Model bundles and the predictor: round trips, determinism, refusing mismatched features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_training_set

from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.domain.errors import ModelError


def _artifact(version: str = "m20260105-000000-abcdef") -> ModelArtifact:
    ts = synthetic_training_set(n_bars=800, n_instruments=2, seed=3)
    params = lgb_params({"num_leaves": 7, "min_data_in_leaf": 20, "learning_rate": 0.1}, seed=7)
    boosters = {
        side: fit_booster(ts.x, ts.y(side), params=params, num_boost_round=30, feature_names=ts.feature_names)
        for side in (1, -1)
    }
    return ModelArtifact(
        version=version,
        boosters=boosters,
        feature_names=tuple(ts.feature_names),
        feature_set="fs-test",
        params=params,
        label_spec={"k_pt": 2.0},
    )


def _features(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = ["signal", *[f"noise_{j}" for j in range(4)]]
    frame = pd.DataFrame(rng.normal(size=(n, len(cols))), columns=cols)
    frame["feature_set"] = "fs-test"
    return frame


def test_a_saved_bundle_predicts_bit_identically_after_loading(tmp_path: Path) -> None:
    artifact = _artifact()
    loaded = ModelArtifact.load(artifact.save(tmp_path / "m"))
    frame = _features()
    before = Predictor(artifact).predict_frame(frame).to_numpy()
    after = Predictor(loaded).predict_frame(frame).to_numpy()
    assert np.array_equal(before, after)
    assert loaded.feature_names == artifact.feature_names
    assert loaded.label_spec == {"k_pt": 2.0}


def test_one_row_prediction_equals_the_batch_row_bit_for_bit() -> None:
    predictor = Predictor(_artifact())
    frame = _features(200)
    batch = predictor.predict_frame(frame).to_numpy()
    for i in (0, 17, 199):
        row = frame.loc[i, list(predictor.feature_names)].to_numpy()
        assert predictor.predict_row(row) == (batch[i, 0], batch[i, 1])
    again = predictor.predict_frame(frame.iloc[::-1]).to_numpy()[::-1]
    assert np.array_equal(batch, again)


def test_predictor_refuses_features_of_another_feature_set() -> None:
    predictor = Predictor(_artifact())
    frame = _features()
    frame["feature_set"] = "fs-other"
    with pytest.raises(ModelError, match="feature set"):
        predictor.predict_frame(frame)
    with pytest.raises(ModelError, match="feature set"):
        Predictor(_artifact(), feature_set="fs-other")


def test_predictor_names_the_missing_features() -> None:
    predictor = Predictor(_artifact())
    with pytest.raises(ModelError, match="noise_3"):
        predictor.predict_frame(_features().drop(columns=["noise_3"]))
    with pytest.raises(ModelError, match="expects 5 features"):
        predictor.predict_row(np.zeros(3))


def test_loading_an_interrupted_save_is_a_model_error(tmp_path: Path) -> None:
    path = _artifact().save(tmp_path / "m")
    (path / "model.json").unlink()
    with pytest.raises(ModelError, match=r"model\.json"):
        ModelArtifact.load(path)
