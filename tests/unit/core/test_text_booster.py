"""A model loaded from its bundle is its text: compiled scoring without LightGBM, still LightGBM's bits."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

from tickwise.core.meta_model import META_INPUTS, MetaModel
from tickwise.core.model import METADATA_FILE, SIDES, ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.text_booster import TextBooster, lightgbm_probe_digest
from tickwise.core.tree_eval import UnsupportedModel

NAMES = [f"f{i}" for i in range(6)]


def _fit(names: list[str], seed: int, rounds: int = 25) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1500, len(names)))
    x[rng.random(x.shape) < 0.05] = np.nan
    y = (np.nan_to_num(x[:, 0]) - np.nan_to_num(x[:, 1]) + rng.normal(size=len(x)) > 0).astype(np.int8)
    params = lgb_params({"num_leaves": 15, "learning_rate": 0.1}, seed)
    return fit_booster(x, y, params=params, num_boost_round=rounds, feature_names=names)


def _artifact(with_meta: bool = True) -> ModelArtifact:
    meta = MetaModel(_fit([*NAMES, *META_INPUTS], 5), tuple(NAMES)) if with_meta else None
    return ModelArtifact(
        version="m-text",
        boosters={1: _fit(NAMES, 1), -1: _fit(NAMES, 2)},
        feature_names=tuple(NAMES),
        feature_set="fs-test",
        meta=meta,
    )


def _rows(n: int = 400, seed: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = 0.0
    return x


@pytest.fixture(scope="module")
def trained() -> ModelArtifact:
    return _artifact()


def test_the_bundle_records_lightgbms_probe_digest_for_both_sides_and_the_meta_model(
    trained: ModelArtifact,
) -> None:
    meta = json.loads(trained.to_files()[METADATA_FILE])
    assert set(meta["lightgbm_probe"]) == {"long", "short", "meta"}
    assert meta["lightgbm_probe"]["long"] == lightgbm_probe_digest(trained.boosters[1])
    assert meta["lightgbm_probe"]["long"] != meta["lightgbm_probe"]["short"]


def test_a_loaded_booster_reads_its_features_and_trees_as_lightgbm_does(trained: ModelArtifact) -> None:
    loaded = ModelArtifact.from_files(trained.to_files())
    for side in SIDES:
        text, booster = loaded.boosters[side], trained.boosters[side]
        assert isinstance(text, TextBooster)
        assert text.feature_name() == booster.feature_name()
        assert text.num_trees() == booster.num_trees()
        assert text.num_feature() == booster.num_feature()
        assert text.model_to_string() == booster.model_to_string()


def test_a_loaded_model_scores_compiled_with_lightgbms_bits_without_building_a_lightgbm_booster(
    trained: ModelArtifact,
) -> None:
    loaded = ModelArtifact.from_files(trained.to_files())
    predictor = Predictor(loaded)
    x = _rows()
    got = predictor.predict_matrix(x)
    assert predictor.compiled, predictor.not_compiled_because
    for j, side in enumerate(SIDES):
        assert np.array_equal(got[:, j], trained.boosters[side].predict(x, num_threads=1))
        text = loaded.boosters[side]
        assert isinstance(text, TextBooster) and text._booster is None  # LightGBM never asked


def test_a_loaded_meta_model_scores_compiled_with_lightgbms_bits(trained: ModelArtifact) -> None:
    loaded = ModelArtifact.from_files(trained.to_files())
    assert loaded.meta is not None and trained.meta is not None
    x = _rows(200)
    p = np.linspace(0.05, 0.95, len(x))
    side = np.where(np.arange(len(x)) % 2 == 0, 1.0, -1.0)
    assert np.array_equal(loaded.meta.predict(x, p, side), trained.meta.predict(x, p, side))
    assert isinstance(loaded.meta.booster, TextBooster) and loaded.meta.booster._booster is None


def test_a_bundle_saved_before_the_probe_record_is_checked_against_lightgbm_and_scores_the_same(
    trained: ModelArtifact,
) -> None:
    files = trained.to_files()
    meta = json.loads(files[METADATA_FILE])
    del meta["lightgbm_probe"]
    files[METADATA_FILE] = json.dumps(meta).encode()
    loaded = ModelArtifact.from_files(files)
    predictor = Predictor(loaded)
    x = _rows()
    got = predictor.predict_matrix(x)
    assert predictor.compiled
    assert np.array_equal(got[:, 0], trained.boosters[1].predict(x, num_threads=1))
    text = loaded.boosters[1]
    assert isinstance(text, TextBooster) and text._booster is not None  # verified by LightGBM itself


def test_a_probe_record_the_compiled_trees_do_not_match_is_not_trusted(trained: ModelArtifact) -> None:
    text = TextBooster(trained.boosters[1].model_to_string(), probe="0" * 64)
    model = text.compiled()  # falls back to the check against LightGBM, which the trees pass
    assert text._booster is not None
    x = _rows(50)
    assert np.array_equal(model.predict(x), trained.boosters[1].predict(x, num_threads=1))


def test_a_model_the_compiled_evaluator_cannot_read_has_no_probe_record_and_is_scored_by_lightgbm() -> None:
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.integers(0, 6, 1500), rng.normal(size=1500)]).astype(np.float64)
    y = ((x[:, 0] == 2) | (x[:, 1] > 1)).astype(np.int8)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "min_data_per_group": 5, "cat_smooth": 1},
        lgb.Dataset(x, y, categorical_feature=[0]),
        num_boost_round=5,
    )
    assert lightgbm_probe_digest(booster) is None
    text = TextBooster(booster.model_to_string())
    with pytest.raises(UnsupportedModel):
        text.compiled()
    assert np.array_equal(text.predict(x[:20]), booster.predict(x[:20], num_threads=1))
