"""The compiled tree evaluator scores exactly as ``Booster.predict``, or is not used."""

from __future__ import annotations

import dataclasses
import threading

import lightgbm as lgb
import numpy as np
import pytest

from tickwise.core.fitting import TUNED_DEFAULTS
from tickwise.core.model import SIDES, ModelArtifact, ParamValue, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.tree_eval import (
    K_ZERO_THRESHOLD,
    MIN_ROWS_PER_THREAD,
    CompiledForest,
    UnsupportedModel,
    _lgb_rows_t,
    compile_booster,
    lgb_rows,
    parse_model,
    probe_rows,
    verify,
)

N_FEATURES = 119  # the production feature count the live model sees


def _data(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, k))
    x[rng.random((n, k)) < 0.05] = np.nan
    x[:, 3] = np.round(x[:, 3])  # many exact zeros
    y = (x[:, 0] + np.nan_to_num(x[:, 1]) - np.nan_to_num(x[:, 3]) + rng.normal(size=n) > 0).astype(np.int8)
    return x, y


def _booster(
    rounds: int, k: int = N_FEATURES, seed: int = 7, extra: dict[str, ParamValue] | None = None
) -> lgb.Booster:
    x, y = _data(np.random.default_rng(seed), 4000, k)
    params = lgb_params(TUNED_DEFAULTS, seed)
    params.update(extra or {})
    return fit_booster(x, y, params=params, num_boost_round=rounds, feature_names=[f"f{i}" for i in range(k)])


def _hard_rows(model_booster: lgb.Booster, rng: np.random.Generator, n: int = 2000) -> np.ndarray:
    """Random rows, NaN, +-inf, +-0.0, values around kZeroThreshold, and rows exactly on thresholds."""
    k = model_booster.num_feature()
    x = rng.normal(size=(n, k)) * 2.0
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, K_ZERO_THRESHOLD, 1e-34])
    mask = rng.random((n, k)) < 0.2
    x[mask] = special[rng.integers(0, len(special), size=int(mask.sum()))]
    model = parse_model(model_booster.model_to_string())
    m = min(n, model.feature.shape[0])
    x[np.arange(m), model.feature[:m]] = model.threshold[:m]
    return x


def _categorical(seed: int) -> tuple[lgb.Booster, np.ndarray]:
    """A binary booster with a categorical split (features ``Column_0`` (categories), ``Column_1``)."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 6, 2000), rng.normal(size=2000)]).astype(np.float64)
    y = ((x[:, 0] == 2) | (x[:, 1] > 1)).astype(np.int8)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "min_data_per_group": 5, "cat_smooth": 1},
        lgb.Dataset(x, y, categorical_feature=[0]),
        num_boost_round=10,
    )
    return booster, x


@pytest.fixture(scope="module")
def production_pair() -> tuple[lgb.Booster, lgb.Booster]:
    """A long/short pair of production shape: 119 features, 200 trees each, the tuned defaults."""
    return _booster(200, seed=7), _booster(200, seed=11)


@pytest.fixture(scope="module")
def production_artifact(production_pair: tuple[lgb.Booster, lgb.Booster]) -> ModelArtifact:
    """The production pair as the live path loads it (long side first)."""
    return ModelArtifact(
        version="t",
        boosters=dict(zip(SIDES, production_pair, strict=True)),
        feature_names=tuple(f"f{i}" for i in range(N_FEATURES)),
        feature_set="fs",
        label_spec={},
    )


def test_the_production_shape_model_is_scored_bit_identical_to_lightgbm(
    production_pair: tuple[lgb.Booster, lgb.Booster],
) -> None:
    rng = np.random.default_rng(3)
    for booster in production_pair:
        model = compile_booster(booster)
        assert model.n_trees == 200
        x = _hard_rows(booster, rng)
        assert np.array_equal(model.predict(x), booster.predict(x, num_threads=1))


@pytest.mark.parametrize(
    ("extra", "missing_type"),
    [({}, 2), ({"zero_as_missing": True}, 1), ({"use_missing": False}, 0)],
    ids=["missing-nan", "missing-zero", "missing-none"],
)
def test_every_missing_value_rule_is_scored_bit_identical_to_lightgbm(
    extra: dict[str, ParamValue], missing_type: int
) -> None:
    booster = _booster(40, k=12, extra=extra)
    model = compile_booster(booster)
    assert set(model.missing.tolist()) == {missing_type}
    x = _hard_rows(booster, np.random.default_rng(4))
    assert np.array_equal(model.predict(x), booster.predict(x, num_threads=1))


def test_a_model_stopped_early_is_scored_with_its_best_iteration_as_predict_does() -> None:
    rng = np.random.default_rng(5)
    x, y = _data(rng, 3000, 8)
    xv, yv = _data(rng, 1000, 8)
    booster = fit_booster(
        x,
        y,
        params=lgb_params(TUNED_DEFAULTS, 1),
        num_boost_round=300,
        feature_names=[f"f{i}" for i in range(8)],
        valid=(xv, yv, None),
        early_stopping_rounds=5,
    )
    model = compile_booster(booster)
    assert 0 < booster.best_iteration < 300 and model.n_trees == booster.best_iteration
    rows = _hard_rows(booster, rng)
    assert np.array_equal(model.predict(rows), booster.predict(rows, num_threads=1))


def test_one_leaf_trees_add_their_single_value() -> None:
    rng = np.random.default_rng(6)
    x = np.ones((500, 4))  # nothing to split on: every tree is one leaf
    y = (rng.random(500) < 0.3).astype(np.int8)
    params = lgb_params(TUNED_DEFAULTS, 1)
    booster = fit_booster(x, y, params=params, num_boost_round=5, feature_names=["a", "b", "c", "d"])
    model = compile_booster(booster)
    assert model.n_trees >= 1 and np.all(model.node_start == 0)
    rows = rng.normal(size=(50, 4))
    assert np.array_equal(model.predict(rows), booster.predict(rows, num_threads=1))


def test_categorical_splits_and_other_objectives_are_refused() -> None:
    cat, x = _categorical(7)
    with pytest.raises(UnsupportedModel, match="categorical"):
        compile_booster(cat)
    reg = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(x, x[:, 1]), num_boost_round=3)
    with pytest.raises(UnsupportedModel, match="objective"):
        compile_booster(reg)


def test_a_compiled_model_that_differs_from_lightgbm_is_refused_by_the_probe() -> None:
    booster = _booster(20, k=6)
    model = parse_model(booster.model_to_string())
    verify(model, booster)  # the honest one passes
    nudged = model.threshold.copy()
    node = int(np.flatnonzero(np.abs(nudged) > 1e-3)[0])  # not a zero split (all tiny values read as 0.0)
    nudged[node] = np.nextafter(nudged[node], -np.inf)  # one ulp lower: a row exactly on it goes right
    with pytest.raises(UnsupportedModel, match="differ"):
        verify(dataclasses.replace(model, threshold=nudged), booster)


def test_probe_rows_put_a_row_exactly_on_every_split_threshold() -> None:
    booster = _booster(10, k=6)
    model = parse_model(booster.model_to_string())
    rows = probe_rows(model, n_random=8)
    on = rows[16 : 16 + model.feature.shape[0]]
    assert np.array_equal(on[np.arange(model.feature.shape[0]), model.feature], model.threshold)


def test_the_predictor_scores_compiled_exactly_as_with_lightgbm_alone(
    production_pair: tuple[lgb.Booster, lgb.Booster], production_artifact: ModelArtifact
) -> None:
    artifact = production_artifact
    fast, plain = Predictor(artifact), Predictor(artifact, compiled=False)
    assert fast.compiled and not plain.compiled
    x = _hard_rows(production_pair[0], np.random.default_rng(8), n=1000)
    assert np.array_equal(fast.predict_matrix(x), plain.predict_matrix(x))
    assert fast.predict_row(x[7]) == plain.predict_row(x[7])


def test_a_predictor_whose_model_cannot_be_compiled_falls_back_to_lightgbm() -> None:
    cat, x = _categorical(9)
    artifact = ModelArtifact(
        version="cat",
        boosters={1: cat, -1: cat},
        feature_names=("Column_0", "Column_1"),
        feature_set="fs",
        label_spec={},
    )
    predictor = Predictor(artifact)
    assert not predictor.compiled
    assert predictor.not_compiled_because is not None and "categorical" in predictor.not_compiled_because
    assert np.array_equal(predictor.predict_matrix(x)[:, 0], cat.predict(x, num_threads=1))


@pytest.mark.interpreted
def test_a_small_model_is_scored_bit_identical_by_the_kernel_source() -> None:
    booster = _booster(8, k=5, extra={"zero_as_missing": True})
    model = parse_model(booster.model_to_string())
    x = _hard_rows(booster, np.random.default_rng(10), n=60)
    assert np.array_equal(model.predict(x), booster.predict(x, num_threads=1))


def test_both_sides_in_one_pass_score_each_row_exactly_as_lightgbm_and_as_each_side_alone(
    production_pair: tuple[lgb.Booster, lgb.Booster],
) -> None:
    models = [compile_booster(b) for b in production_pair]
    forest = CompiledForest(models)
    x = _hard_rows(production_pair[0], np.random.default_rng(12), n=1500)
    both = forest.predict(x)
    for j, (booster, model) in enumerate(zip(production_pair, models, strict=True)):
        assert np.array_equal(both[:, j], booster.predict(x, num_threads=1))
        assert np.array_equal(both[:, j], model.predict(x))
    # A row's bits never depend on the batch it came in (the live minute scores any subset).
    assert np.array_equal(forest.predict(x[37:38]), both[37:38])
    assert np.array_equal(forest.predict(x[::7]), both[::7])


def test_deep_unbalanced_trees_are_walked_to_every_leaf_at_its_own_depth() -> None:
    # Many leaves, few rows per leaf: chains as deep as 20+ levels next to shallow leaves.
    booster = _booster(30, k=10, extra={"num_leaves": 63, "min_data_in_leaf": 2, "max_depth": -1})
    model = compile_booster(booster)
    walk = model.walk
    assert int(walk.depth.max()) > 8 and int(walk.depth.min()) < int(walk.depth.max())
    x = _hard_rows(booster, np.random.default_rng(13), n=3000)
    assert np.array_equal(model.predict(x), booster.predict(x, num_threads=1))


def test_a_forest_refuses_rows_of_the_wrong_width_and_models_of_different_widths() -> None:
    small, wide = compile_booster(_booster(5, k=6)), compile_booster(_booster(5, k=7))
    with pytest.raises(ValueError, match="different feature counts"):
        CompiledForest([small, wide])
    with pytest.raises(ValueError, match="expected rows of 6 features"):
        CompiledForest([small]).predict(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="no model"):
        CompiledForest([])
    assert CompiledForest([small, small]).predict(np.zeros((0, 6))).shape == (0, 2)


def test_row_blocks_scored_on_several_threads_give_the_same_bits_as_one_thread(
    production_pair: tuple[lgb.Booster, lgb.Booster],
) -> None:
    forest = CompiledForest([compile_booster(b) for b in production_pair])
    x = _hard_rows(production_pair[0], np.random.default_rng(14), n=3001)  # blocks of unequal sizes
    one = forest.predict(x)
    for threads in (2, 3, 4, 16):
        assert np.array_equal(forest.predict(x, threads), one)
    # The blocks really ran on the pool's threads (the kernel releases the GIL for them).
    assert any(t.name.startswith("tree-eval") for t in threading.enumerate())
    # Fewer rows than two blocks' worth stay on the calling thread, with the same bits.
    few = x[: 2 * MIN_ROWS_PER_THREAD - 1]
    assert np.array_equal(forest.predict(few, 4), one[: few.shape[0]])
    assert forest.predict(x[:0], 4).shape == (0, 2)


def test_a_thread_count_below_one_is_refused(
    production_pair: tuple[lgb.Booster, lgb.Booster], production_artifact: ModelArtifact
) -> None:
    forest = CompiledForest([compile_booster(production_pair[0])])
    with pytest.raises(ValueError, match="threads must be at least 1"):
        forest.predict(np.zeros((3, N_FEATURES)), 0)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        Predictor(production_artifact, threads=0)


def test_a_predictor_with_threads_scores_exactly_as_one_with_one_thread(
    production_pair: tuple[lgb.Booster, lgb.Booster], production_artifact: ModelArtifact
) -> None:
    x = _hard_rows(production_pair[0], np.random.default_rng(15), n=2000)
    threaded, single = Predictor(production_artifact, threads=2), Predictor(production_artifact)
    assert threaded.threads == 2 and single.threads == 1
    assert np.array_equal(threaded.predict_matrix(x), single.predict_matrix(x))


def test_a_deep_leaf_wise_pair_of_200_trees_is_scored_bit_identical_with_any_thread_count() -> None:
    # Leaf-wise trees whose leaves sit at many depths: rows leave the walk at their own leaf's depth.
    extra: dict[str, ParamValue] = {"num_leaves": 63, "min_data_in_leaf": 5, "max_depth": -1}
    pair = (_booster(200, k=30, seed=21, extra=extra), _booster(200, k=30, seed=22, extra=extra))
    models = [compile_booster(b) for b in pair]
    depths = np.concatenate([m.walk.depth for m in models])
    assert int(depths.max()) >= 12 and int(depths.min()) < int(depths.max())
    x = _hard_rows(pair[0], np.random.default_rng(23), n=3001)
    want = np.column_stack([b.predict(x, num_threads=1) for b in pair])
    forest = CompiledForest(models)
    for threads in (1, 2, 3):
        assert forest.predict(x, threads).tobytes() == want.tobytes()


def test_rows_are_read_as_lightgbm_reads_them_when_transposed_for_the_walk() -> None:
    rng = np.random.default_rng(24)
    x = rng.normal(size=(300, 17))
    special = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-36, -1e-36, K_ZERO_THRESHOLD, -K_ZERO_THRESHOLD]
    )
    mask = rng.random(x.shape) < 0.3
    x[mask] = special[rng.integers(0, len(special), size=int(mask.sum()))]
    for rows in (x, x[::3], np.asfortranarray(x)):
        xt = np.empty((rows.shape[1], rows.shape[0]))
        _lgb_rows_t(rows, xt)
        # Bytes, not values: a -0.0 or a tiny value read as anything but +0.0 would show here.
        assert xt.tobytes() == np.ascontiguousarray(lgb_rows(rows).T).tobytes()
