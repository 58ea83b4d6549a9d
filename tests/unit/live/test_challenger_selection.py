"""Which challengers `tickwise live` scores: same feature set, loadable, newest first, at most
``live.challengers``; a challenger that cannot be used is skipped, never fatal."""

from __future__ import annotations

from datetime import UTC, datetime

from fakes import InMemoryModelRepository, InMemoryModelStore, ModelSourceOf
from tickwise.bootstrap.live import challenger_steps
from tickwise.config import load_settings
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.ports.repositories import ModelRecord


def record(version: str, feature_set: str, status: str = "challenger") -> ModelRecord:
    return ModelRecord(
        model_version=version,
        feature_set=feature_set,
        feature_names=("rsi_14",),
        status=status,  # type: ignore[arg-type]
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


async def test_challengers_of_another_feature_set_or_without_a_bundle_are_skipped() -> None:
    calc = FeatureCalculator()
    models = InMemoryModelRepository()
    await models.insert(record("m-champion", calc.feature_set, "champion"))
    await models.insert(record("m-old-features", "fs-older"))
    await models.insert(record("m-no-bundle", calc.feature_set))  # its bundle is not in the store
    source = ModelSourceOf(models, InMemoryModelStore())
    settings = load_settings(environ={}, environment="test")
    assert await challenger_steps(settings, source, calc, "m-champion") == []


async def test_no_challenger_is_looked_at_when_live_challengers_is_zero() -> None:
    class Exploding(InMemoryModelRepository):
        async def list(self, *, status: object = None) -> list[ModelRecord]:
            raise AssertionError("the models table must not be read")

    settings = load_settings(environ={"TICKWISE__LIVE__CHALLENGERS": "0"}, environment="test")
    source = ModelSourceOf(Exploding(), InMemoryModelStore())
    assert await challenger_steps(settings, source, FeatureCalculator(), "m-champion") == []
