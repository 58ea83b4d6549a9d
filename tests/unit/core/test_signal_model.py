"""SignalModel.score is the one scoring step: one bar at a time gives what the whole batch gives."""

from __future__ import annotations

import numpy as np
import pytest

from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import RegimeRule, SignalGenerator
from tickwise.domain.errors import ModelError


class _FixedPredictor:
    """A stand-in with the Predictor surface the scoring uses: a deterministic function of the row."""

    version = "m-test"
    feature_set = "fs-test"
    feature_names = ("a", "b")

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        p_long = 1.0 / (1.0 + np.exp(-x[:, 0]))
        p_short = 1.0 / (1.0 + np.exp(-x[:, 1]))
        return np.column_stack([p_long, p_short])


def _model() -> SignalModel:
    generator = SignalGenerator(threshold=0.55, regime=(RegimeRule("vol", low=0.5),))
    return SignalModel(_FixedPredictor(), generator)  # type: ignore[arg-type]


def test_scoring_bars_one_at_a_time_equals_scoring_them_together() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    x[::17, 1] = np.nan  # warm-up style gaps: never scored
    vol = rng.uniform(0, 1, size=200)
    model = _model()
    together = model.score(x, {"vol": vol})
    directions, confidences = [], []
    for i in range(len(x)):
        one = model.score(x[i], {"vol": vol[i : i + 1]})
        if one.ready[0]:
            directions.append(int(one.batch.direction[0]))
            confidences.append(float(one.batch.confidence[0]))
    assert together.ready.sum() == len(directions) == 200 - len(range(0, 200, 17))
    assert directions == together.batch.direction.tolist()
    assert confidences == together.batch.confidence.tolist()


def test_the_regime_filter_suppresses_signals_in_quiet_bars() -> None:
    scored = _model().score(np.array([[3.0, -3.0], [3.0, -3.0]]), {"vol": np.array([0.9, 0.1])})
    assert scored.batch.direction.tolist() == [1, 0]


def test_a_missing_feature_is_a_model_error_naming_it() -> None:
    with pytest.raises(ModelError, match="vol"):
        _model().column_indices(["a", "b"])


def _trained_predictor(n_features: int = 12, rounds: int = 200) -> tuple[Predictor, np.ndarray]:
    """A real LightGBM pair of production depth (200 rounds) on noisy data, and rows to score."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, n_features))
    names = [f"f{i}" for i in range(n_features)]
    params = lgb_params({"learning_rate": 0.05, "num_leaves": 31}, 7)
    boosters = {
        side: fit_booster(
            x,
            (x[:, k] + rng.normal(size=len(x)) > 0).astype(np.int8),
            params=params,
            num_boost_round=rounds,
            feature_names=names,
        )
        for side, k in ((1, 0), (-1, 1))
    }
    artifact = ModelArtifact("m-batch", boosters, tuple(names), "fs-test")
    rows = rng.normal(size=(500, n_features))
    rows[::7, 3] = np.nan  # LightGBM's missing-value branch is taken too
    return Predictor(artifact), rows


def test_one_batched_predict_is_bit_identical_to_one_predict_per_row_on_both_sides() -> None:
    predictor, rows = _trained_predictor()
    together = predictor.predict_matrix(rows)
    assert all(b.num_trees() == 200 for b in predictor.artifact.boosters.values())
    one_by_one = np.array([predictor.predict_row(r) for r in rows])
    assert together.shape == (500, 2)
    # Bitwise: the same float64 bits, long and short, not merely close.
    assert np.array_equal(together.view(np.int64), one_by_one.view(np.int64))
    assert len(np.unique(together[:, 0])) > 100 and len(np.unique(together[:, 1])) > 100
