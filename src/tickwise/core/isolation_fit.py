"""An ``IsolationForest`` fitted tree for tree as scikit-learn fits it, without its per-tree overhead.

The candle checks fit one small forest (50 trees on at most 256 of about 1,900 rows) per instrument and
ISO week. scikit-learn spends most of such a fit around the trees rather than in them: it clones the
template tree and reads its parameters through ``inspect`` for every tree, validates parameters again,
and goes through joblib. :func:`fit_isolation_forest` draws the same random numbers in the same order
(the forest's seeds, each tree's seed and its sample, ``BaseBagging._fit`` and
``_parallel_build_estimators`` of scikit-learn 1.9) and fits the same ``ExtraTreeRegressor`` on the same
rows and weights, so the returned model is the one ``IsolationForest(...).fit`` returns: the same trees,
node for node, and the same scores. ``tests/unit/core/test_isolation_fit.py`` checks every tree array
and ``score_samples`` with ``array_equal`` against scikit-learn's own fit.

Only the settings the candle checks use are supported (dense rows, no sample weights, every feature,
sampling without replacement, ``contamination="auto"``); anything else is refused.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn import config_context
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._bagging import _generate_bagging_indices
from sklearn.ensemble._iforest import _average_path_length
from sklearn.tree import ExtraTreeRegressor
from sklearn.utils.validation import validate_data

_MAX_INT = np.iinfo(np.int32).max  # scikit-learn's bagging seeds and tree seeds are drawn below it


def fit_isolation_forest(
    x: NDArray[np.float64], *, n_estimators: int, max_samples: int, random_state: int
) -> IsolationForest:
    """``IsolationForest(n_estimators=..., max_samples=..., random_state=...).fit(x)``, the same model."""
    model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, random_state=random_state)
    rows = validate_data(model, x, dtype=np.float32, ensure_all_finite=False)
    n_samples, n_features = rows.shape
    if not 1 <= max_samples <= n_samples:
        raise ValueError(f"max_samples must be in [1, {n_samples}], got {max_samples}")
    # IsolationForest.fit: the regression target the random trees split on, then the depth limit.
    y = np.random.RandomState(random_state).uniform(size=n_samples)
    max_depth = int(np.ceil(np.log2(max(max_samples, 2))))
    # BaseBagging._fit: a fresh generator from the same seed draws one seed per tree.
    seeds = np.random.RandomState(random_state).randint(_MAX_INT, size=n_estimators)
    template = ExtraTreeRegressor(max_features=1, splitter="random", random_state=random_state)
    template.max_depth = max_depth
    trees: list[ExtraTreeRegressor] = []
    features: list[NDArray[np.int64]] = []
    # scikit-learn builds three fresh generators per tree (its seed, its sample, its splits). A new
    # RandomState first seeds itself from the OS's entropy before the legacy seed replaces that state,
    # which costs about 50 times a re-seed; re-seeding one generator gives the same state, so the same
    # draws (``RandomState(s)`` and ``seed(s)`` both run the legacy integer seeding).
    generator = np.random.RandomState(random_state)
    # The trees are fitted inside IsolationForest.fit's context, which skips their parameter checks.
    with config_context(skip_parameter_validation=True):
        for seed in seeds:
            # _make_estimator -> _set_random_states: the tree's own seed from a generator of this seed.
            generator.seed(seed)
            tree_seed = int(generator.randint(_MAX_INT))
            tree = ExtraTreeRegressor(
                max_depth=max_depth, max_features=1, splitter="random", random_state=tree_seed
            )
            generator.seed(seed)  # _generate_bagging_indices: check_random_state(seed), a fresh one
            used, sample = _generate_bagging_indices(
                generator, False, False, n_features, n_samples, n_features, max_samples, None
            )
            # The tree takes sample weights, so the sample is passed as counts over every row. Its
            # splitter draws from ``check_random_state(tree_seed)``: handed the re-seeded generator for
            # the fit, then given its integer seed back, so the fitted tree's parameters are unchanged.
            generator.seed(tree_seed)
            tree.random_state = generator
            tree.fit(rows, y, sample_weight=np.bincount(sample, minlength=n_samples), check_input=False)
            tree.random_state = tree_seed
            trees.append(tree)
            features.append(used)
    model._n_samples = n_samples
    model.estimator_ = template
    model._max_samples = max_samples
    model._max_features = n_features
    model._sample_weight = None
    model._seeds = seeds
    model.estimators_ = trees
    model.estimators_features_ = features
    model.max_samples_ = max_samples
    model._average_path_length_per_tree, model._decision_path_lengths = zip(
        *[(_average_path_length(t.tree_.n_node_samples), t.tree_.compute_node_depths()) for t in trees],
        strict=True,
    )
    model.offset_ = -0.5
    return model
