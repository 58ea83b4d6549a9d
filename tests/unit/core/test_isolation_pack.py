"""The compiled IsolationForest pack scores exactly as scikit-learn's ``score_samples``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from tickwise.core.isolation_pack import IsolationPack, compile_forest


def _forests(n: int, rng: np.random.Generator) -> dict[int, IsolationForest]:
    models = {}
    for k in range(n):
        rows = 150 + 400 * k  # small forests (max_samples < 256) and full ones
        x = np.clip(rng.standard_t(3, size=(rows, 5)) * (k + 1), -50.0, 50.0)
        models[k] = IsolationForest(n_estimators=20, max_samples=min(256, rows), random_state=k).fit(x)
    return models


def test_scores_of_many_models_in_one_pass_equal_score_samples_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    models = _forests(6, rng)
    pack = IsolationPack()
    for key, model in models.items():
        pack.add(key, model)
    # Random rows, rows on the clip bounds, and rows exactly at split thresholds (the <= edge).
    x = np.clip(rng.standard_normal((3000, 5)) * 8.0, -50.0, 50.0)
    x[:50] = 50.0
    tree = models[0].estimators_[0].tree_
    internal = np.flatnonzero(tree.children_left != -1)
    for i, node in enumerate(internal[:200]):
        x[100 + i, tree.feature[node]] = tree.threshold[node]
    keys = [int(k) for k in rng.integers(0, len(models), len(x))]
    keys[100:300] = [0] * 200
    got = pack.score(x, keys)
    want = np.empty(len(x))
    for key, model in models.items():
        mine = np.array(keys) == key
        want[mine] = model.score_samples(x[mine])
    assert np.array_equal(got, want)


def test_a_discarded_model_is_no_longer_scored_and_an_empty_request_is_empty() -> None:
    rng = np.random.default_rng(1)
    pack = IsolationPack()
    pack.add("a", _forests(1, rng)[0])
    assert "a" in pack and len(pack) == 1 and pack.nbytes > 0
    assert pack.score(np.zeros((0, 5)), []).shape == (0,)
    pack.discard(["a"])
    with pytest.raises(KeyError):
        pack.score(np.zeros((1, 5)), ["a"])
    with pytest.raises(ValueError, match="one model key per row"):
        pack.score(np.zeros((2, 5)), ["a"])


def test_a_forest_that_samples_features_is_refused_rather_than_scored_wrongly() -> None:
    x = np.random.default_rng(2).standard_normal((300, 5))
    model = IsolationForest(n_estimators=5, max_features=0.6, random_state=0).fit(x)
    with pytest.raises(ValueError, match="every feature"):
        compile_forest(model)
