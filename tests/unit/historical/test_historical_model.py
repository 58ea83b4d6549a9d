"""Model bundles and the predictor: round trips, determinism, refusing mismatched features."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from historical_synthetic import synthetic_training_set

from fakes import InMemoryModelRepository, ModelSourceOf
from tickwise.adapters.local.model_store import LocalModelStore
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.domain.errors import ModelError
from tickwise.pipelines.models import load_model
from tickwise.ports.repositories import ModelRecord


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


async def test_a_saved_bundle_predicts_bit_identically_after_loading(tmp_path: Path) -> None:
    artifact = _artifact()
    store = LocalModelStore(tmp_path)
    location = await store.save(artifact.version, artifact.to_files())
    loaded = ModelArtifact.from_files(await store.load(artifact.version, location))
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


def test_a_bundle_without_its_metadata_file_is_a_model_error() -> None:
    files = _artifact().to_files()
    del files["model.json"]
    with pytest.raises(ModelError, match=r"model\.json"):
        ModelArtifact.from_files(files)


async def test_the_local_store_has_no_bundle_until_a_save_completes(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path)
    assert not await store.exists("m1")
    with pytest.raises(ModelError, match="no bundle"):
        await store.load("m1")
    await store.save("m1", {"a.txt": b"1", "model.json": b"{}"})
    assert await store.exists("m1")
    assert await store.load("m1") == {"a.txt": b"1", "model.json": b"{}"}
    leftovers = [p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir()))]
    assert leftovers == ["m1"]  # the temporary directory was renamed into place


async def test_loading_a_bundle_that_holds_another_version_is_a_model_error(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path)
    artifact = _artifact("m-other")
    await store.save("m-wanted", artifact.to_files())
    models = InMemoryModelRepository()
    await models.insert(ModelRecord("m-wanted", "fs-test", artifact.feature_names, status="champion"))
    with pytest.raises(ModelError, match="holds model m-other"):
        await load_model(ModelSourceOf(models, store), None)
