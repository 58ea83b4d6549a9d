"""The candle checks' IsolationForest fit is scikit-learn's, tree for tree and score for score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from tickwise.core.isolation_fit import fit_isolation_forest
from tickwise.core.isolation_pack import compile_forest

TREE_ARRAYS = (
    "children_left",
    "children_right",
    "feature",
    "threshold",
    "n_node_samples",
    "value",
    "impurity",
)


def _rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(n, 5))
    x[: n // 10, 4] = 0.0  # repeated values, as the candle inputs' NaN-filled zeros
    return np.clip(x, -50.0, 50.0)


@pytest.mark.parametrize(
    ("n", "max_samples", "seed"), [(1875, 256, 7), (2200, 256, 1_234_567), (300, 256, 3), (150, 150, 11)]
)
def test_the_lean_fit_is_scikit_learns_fit_tree_for_tree(n: int, max_samples: int, seed: int) -> None:
    x = _rows(n, seed)
    samples = min(max_samples, n)
    ours = fit_isolation_forest(x, n_estimators=50, max_samples=samples, random_state=seed)
    theirs = IsolationForest(n_estimators=50, max_samples=samples, random_state=seed).fit(x)
    assert np.array_equal(ours._seeds, theirs._seeds)
    assert len(ours.estimators_) == len(theirs.estimators_) == 50
    for a, b in zip(ours.estimators_, theirs.estimators_, strict=True):
        assert a.get_params() == b.get_params()
        for name in TREE_ARRAYS:
            assert np.array_equal(getattr(a.tree_, name), getattr(b.tree_, name)), name
    for a, b in zip(ours._decision_path_lengths, theirs._decision_path_lengths, strict=True):
        assert np.array_equal(a, b)
    probe = np.vstack([x, _rows(500, seed + 1) * 3.0])
    assert np.array_equal(ours.score_samples(probe), theirs.score_samples(probe))
    assert ours.offset_ == theirs.offset_
    compiled, expected = compile_forest(ours), compile_forest(theirs)
    for name in ("feature", "threshold", "right", "tree_start", "leaf_values"):
        assert np.array_equal(getattr(compiled, name), getattr(expected, name)), name


def test_a_sample_larger_than_the_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="max_samples"):
        fit_isolation_forest(_rows(100, 1), n_estimators=5, max_samples=256, random_state=1)
